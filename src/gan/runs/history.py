"""A run's history.jsonl: one JSON object a logged step, appended by `RunLog` and read
back by resume, `gan runs` and `plot-history`.

It is read from a regular file only (`gan.atomic.open_regular`: no link followed, no FIFO
waited on, bounded in size), a line at a time: no reader holds the whole file or all its
records, whose Python objects take far more memory than their text (a line `{}` is 3
bytes, its dict 64). Each reader keeps what it needs: `gan runs` a few numbers,
`plot-history` a bounded number of points, a resume streams the kept lines into a
temporary file. A line that is not a JSON object (cut short by a kill, edited by hand, in
another encoding, longer than any record) is skipped, and counted in one warning.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from loguru import logger

from gan.atomic import NotRegular, atomic_file, open_regular
from gan.errors import GanError

HISTORY_LIMIT = 1 << 30  # a line a logged step: millions of steps
LINE_LIMIT = 1 << 20  # one record is a few hundred bytes
_STEP = b'"step"'  # a line without it holds no step: not parsed (most of a hostile file)


def _open(path: Path) -> BinaryIO:
    """The history, opened for reading as a regular file within HISTORY_LIMIT (OSError
    else: missing, a link, a FIFO, too large)."""
    f = os.fdopen(open_regular(path, os.O_RDONLY), "rb", buffering=1 << 20)
    if os.fstat(f.fileno()).st_size > HISTORY_LIMIT:
        f.close()
        raise NotRegular(errno.EFBIG, f"larger than {HISTORY_LIMIT >> 20} MiB", str(path))
    return f


def _lines(f: BinaryIO) -> Iterator[tuple[bytes | None, int]]:
    """Each line (without its end; b"" for a blank one, None for one longer than
    LINE_LIMIT, read past and never held) with the bytes it took in the file."""
    while line := f.readline(LINE_LIMIT + 1):
        size = len(line)
        if size > LINE_LIMIT and not line.endswith(b"\n"):
            while (rest := f.readline(LINE_LIMIT)) and not rest.endswith(b"\n"):
                size += len(rest)
            yield None, size + len(rest)
        else:
            yield (line.rstrip(b"\r\n") if line.strip() else b""), size


def _record(line: bytes | None) -> dict[str, Any] | None:
    """The line's JSON object, None where it is none (or holds no step, not parsed)."""
    if line is None or _STEP not in line:
        return None
    try:
        value = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _broken(line: bytes | None) -> bool:
    """Whether a line `_record` gave nothing for is no JSON object at all (counted in the
    warning), rather than an object without a step (a line of another writer)."""
    if line is None or _STEP in line:
        return True
    text = line.strip()
    return not (text.startswith(b"{") and text.endswith(b"}"))


def _skipped(path: Path, count: int) -> None:
    if count:
        logger.warning("Skipped {} line(s) of {} that are not JSON records.", count, path)


def _blocks(f: BinaryIO) -> Iterator[bytes | None]:
    """The file in blocks of whole lines, a quarter of a MiB or so each, that a reader can
    pass over at once or split; None for a line longer than LINE_LIMIT (read past, never
    held whole)."""
    carry, long = b"", False
    while chunk := f.read(1 << 18):
        data = carry + chunk
        if long:  # the rest of a line too long: up to its end
            end = data.find(b"\n")
            carry = b""
            if end < 0:
                continue
            yield None
            data, long = data[end + 1 :], False
        cut = data.rfind(b"\n") + 1
        if cut:
            yield data[:cut]
        carry = data[cut:]
        if len(carry) > LINE_LIMIT:
            carry, long = b"", True
    if long or carry:
        yield None if long else carry


_OBJECT_LINE = re.compile(rb"^[ \t\r\f\v]*\{[^\n]*\}[ \t\r\f\v]*$", re.MULTILINE)
_BLANK_LINE = re.compile(rb"^[ \t\r\f\v]*$", re.MULTILINE)


def _broken_count(block: bytes) -> int:
    """`_broken` lines of a block without a step, counted by regular expressions rather
    than a line at a time (a block may hold 80,000 lines)."""
    text = block[:-1] if block.endswith(b"\n") else block
    lines = text.count(b"\n") + 1
    return lines - len(_OBJECT_LINE.findall(text)) - len(_BLANK_LINE.findall(text))


def iter_history(path: Path, warn: bool = True) -> Iterator[dict[str, Any]]:
    """The records of a history.jsonl that hold a "step", one at a time, read from a
    regular file only (OSError else); lines that are not JSON objects are skipped, with
    one warning for them all once the file is read. A block without a step is passed
    over whole (only counted, for the warning)."""
    skipped = 0
    with _open(path) as f:
        for block in _blocks(f):
            if block is None or _STEP not in block:
                skipped += 1 if block is None else _broken_count(block) if warn else 0
                continue
            for line in block.split(b"\n"):
                record = _record(line) if line.strip() else None
                if record is not None:
                    yield record
                elif line.strip() and _broken(line):
                    skipped += 1
    if warn:
        _skipped(path, skipped)


def read_history(path: Path, warn: bool = True) -> list[dict[str, Any]]:
    """All records at once: for small histories (tests, tools); readers of a run's own
    history stream it (`iter_history`)."""
    return list(iter_history(path, warn))


def _step(record: dict[str, Any]) -> float:
    """A record's step; infinite (after every step) where it has none."""
    step = record.get("step")
    return step if type(step) is int else math.inf


def _kept(line: bytes | None, step: int) -> bool:
    record = _record(line)
    return record is not None and _step(record) <= step


def truncate_history(path: Path, step: int) -> None:
    """Drop records after `step` (logged by a run that died before its next checkpoint)
    and lines that are not records, so that appending starts on a line of its own. Read
    a line at a time, twice: where the first line to drop is, then the file up to it as
    it is and the kept lines after it into a temporary file that replaces the history."""
    try:
        f = _open(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise GanError(
            f"Cannot read {path} ({exc.strerror}); move it away and resume (the checkpoints "
            "are untouched)."
        ) from None
    with f:
        first, offset, last, broken = None, 0, 0, 0
        for line, size in _lines(f):
            if line != b"" and not _kept(line, step):
                first = offset if first is None else first
                broken += _record(line) is None and _broken(line)
            last, offset = offset, offset + size
        if first is None:  # nothing to drop: the last line may still lack its end
            f.seek(max(offset - 1, 0))
            if offset == 0 or f.read(1) == b"\n":
                return
            first = last  # that line again, with its end
        _skipped(path, broken)
        f.seek(0)
        with atomic_file(path) as out:
            shutil.copyfileobj(_Head(f, first), out)
            for line, _ in _lines(f):
                if line != b"" and _kept(line, step):
                    out.write(line + b"\n")


class _Head:
    """The first `size` bytes of a file, read in chunks (for `shutil.copyfileobj`)."""

    def __init__(self, f: BinaryIO, size: int) -> None:
        self.f, self.left = f, size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.f.read(n)
        self.left -= len(data)
        return data
