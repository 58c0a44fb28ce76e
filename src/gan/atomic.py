"""Writing a file so that readers see the old content or the new, never a torn one; and
opening the files of a run's folders so that no link or FIFO planted there is followed.

A run's folders may come from a tarball or a shared workdir: a name there may be a link
to another run's checkpoint, a FIFO that blocks whoever opens it, or a folder. Files
written whole go through a temporary file created exclusively (never through something
already there) and renamed over the name, which replaces a link instead of following it.
Files written in place (the lock, history.jsonl, train.log) and files read back are
opened with `open_regular`: no link followed, no FIFO waited on, only a regular file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
READ_LIMIT = 16 << 20  # a run's JSON files (status, run.json, eval reports) are kilobytes
# `temp_name`'s shape: .<name>.<pid>.<thread>[-<token>].tmp
TEMP_FILE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.(?P<thread>\d+)(?:-[0-9a-f]+)?\.tmp$")


class NotRegular(OSError):
    """A link, FIFO, device, folder, or a file with other hard links, where a run's own
    regular file belongs."""


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (not every filesystem lets a folder be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def temp_name(path: Path, token: str = "") -> Path:
    """A hidden name beside `path`, unique to this process and thread (and `token`)."""
    tail = f"-{token}" if token else ""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}{tail}.tmp")


def _create_temp(path: Path) -> tuple[Path, int]:
    """A new temporary file beside `path`: O_EXCL never opens what is already there (a
    leftover of a killed process with the same pid, or a link planted at the name)."""
    for token in ("", *(secrets.token_hex(4) for _ in range(8))):
        tmp = temp_name(path, token)
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
            return tmp, os.open(tmp, flags, 0o644)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path))


def fresh_temp(path: Path) -> Path:
    """An empty temporary file beside `path`, created exclusively, for writers that open
    a file by name (torch.export, ONNX): what they open is ours, never a planted link."""
    tmp, fd = _create_temp(Path(path))
    os.close(fd)
    return tmp


@contextlib.contextmanager
def atomic_file(path: Path, durable: bool = True) -> Iterator[BinaryIO]:
    """Write through a temporary file beside `path` that replaces it once complete.

    An exception inside the block leaves `path` as it was and removes the temporary file.
    `durable` fsyncs the file and its folder (a cache that can be fetched again skips it).
    """
    path = Path(path)
    tmp, fd = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    if durable:
        fsync_dir(path.parent)


def atomic_write(path: Path, data: bytes | str) -> Path:
    """Replace `path` with `data` (text is written as UTF-8) atomically and durably."""
    with atomic_file(path) as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


def open_regular(path: Path | str, flags: int, mode: int = 0o644, alone: bool = False) -> int:
    """`os.open` of a regular file only: a link is not followed, a FIFO or device neither
    blocks nor is used (NotRegular). `alone`: refuse a file with other hard links too, for
    files written in place, where writing would change the other names' content."""
    try:
        fd = os.open(path, flags | _NOFOLLOW | _NONBLOCK | _CLOEXEC, mode)
    except OSError as exc:
        # ELOOP: a link (EMLINK on some BSDs); ENXIO: a FIFO nobody reads; EISDIR: a folder
        kinds = {errno.ELOOP: "a link", errno.EMLINK: "a link", errno.ENXIO: "a FIFO"}
        if exc.errno in (*kinds, errno.EISDIR):
            raise NotRegular(exc.errno, kinds.get(exc.errno, "a folder"), str(path)) from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a FIFO" if stat.S_ISFIFO(info.st_mode) else "not a regular file"
            raise NotRegular(
                errno.EINVAL, "a folder" if stat.S_ISDIR(info.st_mode) else kind, str(path)
            )
        if alone and info.st_nlink > 1:
            raise NotRegular(errno.EMLINK, "a file with other hard links", str(path))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def regular_opener(path: str, flags: int) -> int:
    """An `opener=` for `open()` (and loguru's file sink) of a file written in place."""
    return open_regular(path, flags, alone=True)


def read_regular(path: Path, limit: int = READ_LIMIT) -> bytes:
    """The bytes of a regular file of at most `limit` bytes (else NotRegular or OSError)."""
    fd = open_regular(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise NotRegular(errno.EFBIG, f"larger than {limit >> 20} MiB", str(path))
    return data


def is_regular(path: Path) -> bool:
    """Whether `path` itself is a regular file (a link to one is not)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False
