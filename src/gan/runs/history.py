"""A run's history.jsonl: one JSON object a logged step, appended by `RunLog` and read
back by resume, `gan runs` and `plot-history`.

It is read as bytes from a regular file only (`gan.atomic.read_regular`: no link
followed, no FIFO waited on, bounded in size). A line that is not a JSON object (cut
short by a kill, edited by hand, in another encoding) is skipped, and counted in one
warning.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from loguru import logger

from gan.atomic import atomic_write, read_regular
from gan.errors import GanError

HISTORY_LIMIT = 1 << 30  # a line a logged step: millions of steps


def _parse(data: bytes) -> list[tuple[bytes, dict[str, Any] | None]]:
    """Each non-blank line with its record, None where it is not a JSON object (cut short
    by a kill, edited, in another encoding)."""
    parsed = []
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            value = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            value = None
        parsed.append((line, value if isinstance(value, dict) else None))
    return parsed


def _skipped(path: Path, count: int) -> None:
    if count:
        logger.warning("Skipped {} line(s) of {} that are not JSON records.", count, path)


def truncate_history(path: Path, step: int) -> None:
    """Drop records after `step` (logged by a run that died before its next checkpoint)
    and lines that are not records, so that appending starts on a line of its own."""
    try:
        data = read_regular(path, HISTORY_LIMIT)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise GanError(
            f"Cannot read {path} ({exc.strerror}); move it away and resume (the checkpoints "
            "are untouched)."
        ) from None
    parsed = _parse(data)
    keep = [line for line, r in parsed if r is not None and _step(r) <= step]
    if not data or (len(keep) == len(parsed) and data.endswith(b"\n")):
        return
    _skipped(path, sum(r is None for _, r in parsed))
    atomic_write(path, b"".join(line + b"\n" for line in keep))


def _step(record: dict[str, Any]) -> float:
    """A record's step; infinite (after every step) where it has none."""
    step = record.get("step")
    return step if type(step) is int else math.inf


def read_history(path: Path, warn: bool = True) -> list[dict[str, Any]]:
    """The records of a history.jsonl, read as bytes from a regular file only (OSError
    else); lines that are not JSON objects are skipped, with one warning for them all."""
    parsed = _parse(read_regular(path, HISTORY_LIMIT))
    records = [r for _, r in parsed if r is not None]
    if warn:
        _skipped(path, len(parsed) - len(records))
    return records
