"""Datasets read in place from archives: a ZIP (StyleGAN2-ADA's `dataset_tool.py` layout,
labels in its `dataset.json`) or tar shards (WebDataset's layout, `0001.png` beside
`0001.cls`), plain or gzip-compressed. Nothing is extracted: each member is a `Member`
that decoders open like a path (`.open("rb")`, `.name`), its bytes read from the archive.

A member is skipped (one warning) when its name is absolute, climbs out (`..`) or holds a
backslash, or when it is a link, a device, a FIFO or a sparse file; member names are
never made into paths. Sizes are bounded before anything is read: a member may declare
at most `member_limit()` bytes (2 GB, or one core's share of a dataset's memory), and is
read no further than it declares; a compressed tar, whose members are inflated as it is
listed, at most a dataset's share of the memory in all (`limits.memory_budget`).
"""

from __future__ import annotations

import gzip
import io
import stat
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from gan.data.limits import MAX_OBJECT_BYTES, memory_budget, size_text, usable_cores
from gan.data.s3_cache import safe_key
from gan.errors import GanError

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
LABELS = "dataset.json"  # StyleGAN2-ADA: {"labels": [["00000/img00000000.png", 6], ...]}
MAX_LABELS_BYTES = 256 << 20  # dataset.json: one short entry per image
MAX_CLS_BYTES = 64  # a WebDataset .cls member: one integer as text


def member_limit() -> int:
    """The bytes one member may declare: each decoding thread holds one."""
    budget = memory_budget()
    return MAX_OBJECT_BYTES if budget is None else min(MAX_OBJECT_BYTES, budget // usable_cores())


def inflate_limit() -> int:
    """The bytes a compressed tar may inflate to in all (it is inflated while listed)."""
    return memory_budget() or MAX_OBJECT_BYTES


class Member:
    """One file inside an archive, opened like a path by the same decoders as a file or an
    s3 object; `label` is its class from the archive's labels, if any."""

    def __init__(self, archive: Archive, name: str, size: int, where: Any = None) -> None:
        self.archive, self.path, self.size, self.where = archive, name, size, where
        self.name = name.rsplit("/", 1)[-1]
        self.label: int | None = None

    def open(self, mode: str = "rb") -> BinaryIO:
        """The member's bytes (at most what it declared); any failure is an OSError."""
        try:
            return io.BytesIO(self.archive.read(self))
        except OSError:
            raise
        except Exception as exc:  # BadZipFile, an encrypted member, a zlib error, ...
            raise OSError(f"{type(exc).__name__}: {exc}") from None

    def __str__(self) -> str:  # for warnings: a name's control characters escaped
        shown = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in self.path)
        return f"{self.archive.path}/{shown}"


@dataclass
class Archive:
    """One archive file and what listing it found."""

    path: Path
    members: list[Member] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (member name, why)
    classes: dict[str, str] = field(default_factory=dict)  # member key -> .cls text
    labels_json: bytes | None = None
    problem: str | None = None  # why listing stopped early

    def read(self, member: Member) -> bytes:
        raise NotImplementedError


class ZipArchive(Archive):
    """A ZIP, kept open while its members are decoded; reads take turns (zipfile's
    shared file handle is not safe to open from several threads at once)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.zip = zipfile.ZipFile(path)
        self.lock = threading.Lock()

    def read(self, member: Member) -> bytes:
        with self.lock, self.zip.open(member.where) as stream:
            data = stream.read(member.size + 1)  # zipfile stops at the declared size
        if len(data) != member.size:
            raise OSError(f"the member holds {len(data):,} bytes, not the {member.size:,} declared")
        return data


class TarArchive(Archive):
    """A plain tar: members are read from their offsets, the file opened for each read."""

    def read(self, member: Member) -> bytes:
        with open(self.path, "rb") as f:
            f.seek(member.where)
            data = f.read(member.size)
        if len(data) != member.size:
            raise OSError("the archive ends inside the member")
        return data


class HeldArchive(Archive):
    """A compressed tar, read once as a stream: the members kept are held in memory."""

    def read(self, member: Member) -> bytes:
        return member.where


class _Capped(io.RawIOBase):
    """A stream that fails once more than `limit` bytes have been read from it."""

    def __init__(self, stream: BinaryIO, limit: int, what: str) -> None:
        self.stream, self.left, self.what = stream, limit, what

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.stream.read(min(len(buffer), self.left + 1))
        self.left -= len(data)
        if self.left < 0:
            raise GanError(self.what)
        buffer[: len(data)] = data
        return len(data)


def kind_of(path: Path) -> str:
    name = path.name.lower()
    return "zip" if name.endswith(".zip") else "tar" if name.endswith(".tar") else "tar.gz"


def _clean(name: str) -> str:
    """A member's name without the './' that `tar -C dir .` puts in front."""
    while name.startswith("./"):
        name = name[2:]
    return name


def _take(archive: Archive, name: str, size: int, suffixes: tuple[str, ...], limit: int) -> bool:
    """Whether the member `name` (a regular file) is an image to read; refusals recorded."""
    if not safe_key(name):
        archive.refused.append((name, "its name leaves the archive"))
    elif not name.lower().endswith(suffixes):
        return False
    elif size > limit:
        archive.refused.append((name, f"it declares {size_text(size)}, over {size_text(limit)}"))
    else:
        return True
    return False


def _zip_special(info: zipfile.ZipInfo) -> bool:
    """Whether a ZIP entry made on Unix is a link, a device or a FIFO (its mode says so)."""
    mode = info.external_attr >> 16
    return info.create_system == 3 and stat.S_IFMT(mode) not in (0, stat.S_IFREG)


def list_zip(path: Path, suffixes: tuple[str, ...]) -> Archive:
    archive, limit = ZipArchive(path), member_limit()
    for info in archive.zip.infolist():
        name = _clean(info.filename)
        if info.is_dir():
            continue
        if _zip_special(info):
            archive.refused.append((name, "it is a link or a special file"))
        elif name == LABELS:
            archive.labels_json = _small(archive, info, MAX_LABELS_BYTES)
        elif name.lower().endswith(".cls") and safe_key(name):
            text = _small(archive, info, MAX_CLS_BYTES) or b""
            archive.classes[sample_key(name)] = text.decode("utf-8", "replace")
        elif _take(archive, name, info.file_size, suffixes, limit):
            archive.members.append(Member(archive, name, info.file_size, info))
    return archive


def _small(archive: ZipArchive, info: zipfile.ZipInfo, limit: int) -> bytes | None:
    """A label member's bytes, or None when it is larger than `limit`."""
    if info.file_size > limit:
        return None
    with archive.zip.open(info) as stream:
        return stream.read(limit + 1)[:limit]


def _tar_entries(path: Path, held: bool) -> Iterator[tuple[tarfile.TarFile, tarfile.TarInfo]]:
    """Every entry of a tar, read once front to back (a compressed one inflated within
    `inflate_limit()` bytes)."""
    if not held:
        with tarfile.open(path, "r:") as tar:
            for info in tar:
                yield tar, info
        return
    limit = inflate_limit()
    too_much = (
        f"{path} inflates to more than {size_text(limit)}, the most a compressed tar may; "
        "unpack it into an uncompressed .tar or give fewer shards."
    )
    with (
        gzip.open(path, "rb") as raw,
        io.BufferedReader(_Capped(raw, limit, too_much)) as capped,
        tarfile.open(fileobj=capped, mode="r|") as tar,
    ):
        for info in tar:
            yield tar, info


def list_tar(path: Path, suffixes: tuple[str, ...]) -> Archive:
    held = kind_of(path) != "tar"
    archive = HeldArchive(path) if held else TarArchive(path)
    limit, total = member_limit(), 0
    try:
        for tar, info in _tar_entries(path, held):
            name = _clean(info.name)
            if info.isdir():
                continue
            if not info.isreg() or info.sparse is not None:
                archive.refused.append((name, "it is a link or a special file"))
            elif name.lower().endswith(".cls") and safe_key(name) and info.size <= MAX_CLS_BYTES:
                text = tar.extractfile(info).read(MAX_CLS_BYTES)
                archive.classes[sample_key(name)] = text.decode("utf-8", "replace")
            elif name == LABELS and info.size <= MAX_LABELS_BYTES:
                archive.labels_json = tar.extractfile(info).read(MAX_LABELS_BYTES)
            elif _take(archive, name, info.size, suffixes, limit):
                where: Any = info.offset_data
                if held:
                    where = tar.extractfile(info).read(info.size)
                    total += len(where)
                    if total > inflate_limit():
                        raise GanError(f"The images in {path} take more than "
                                       f"{size_text(inflate_limit())} inflated; unpack it into "
                                       "an uncompressed .tar or give fewer shards.")  # fmt: skip
                archive.members.append(Member(archive, name, info.size, where))
    except GanError:
        raise
    except (tarfile.TarError, OSError, EOFError, ValueError, MemoryError) as exc:
        archive.problem = f"{type(exc).__name__}: {exc}"[:200]
    return archive


def sample_key(name: str) -> str:
    """WebDataset's key: the path up to the first dot of the file's name."""
    folder, _, base = name.rpartition("/")
    return f"{folder}/{base.split('.', 1)[0]}" if folder else base.split(".", 1)[0]
