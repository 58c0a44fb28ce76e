"""Datasets read in place from archives: a ZIP (StyleGAN2-ADA's `dataset_tool.py` layout,
labels in its `dataset.json`) or tar shards (WebDataset's layout, `0001.png` beside
`0001.cls`), uncompressed. Nothing is extracted: each member is a `Member`
that decoders open like a path (`.open("rb")`, `.name`), its bytes read from the archive.

A member is skipped (one warning) when its name is absolute, climbs out (`..`) or holds a
backslash, or when it is a link, a device, a FIFO or a sparse file; member names are
never made into paths. Sizes are bounded before anything is read: a member may declare
at most `member_limit()` bytes (2 GB, or one core's share of a dataset's memory), and is
read no further than it declares. A tar's extended headers (pax records, GNU long names)
are checked before `tarfile` parses them: Python before 3.11.10 and 3.12.6 parses some in
quadratic time (CVE-2024-6232), so that a few hundred kilobytes would take hours.

Compressed tars (.tar.gz) are not read: their members cannot be reached without inflating
everything before them, and the header checks need to look back. Unpack them into .tar.
"""

from __future__ import annotations

import io
import re
import stat
import tarfile
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from gan.data.limits import MAX_OBJECT_BYTES, memory_budget, size_text, usable_cores
from gan.data.s3_cache import safe_key

ARCHIVE_SUFFIXES = (".zip", ".tar")
LABELS = "dataset.json"  # StyleGAN2-ADA: {"labels": [["00000/img00000000.png", 6], ...]}
MAX_LABELS_BYTES = 256 << 20  # dataset.json: one short entry per image
MAX_CLS_BYTES = 64  # a WebDataset .cls member: one integer as text
MAX_EXTENDED_BYTES = 64 << 10  # one pax header or GNU long name: a path and a few fields
_PAX_RECORD = re.compile(rb"(\d{1,19}) ")
_DIGIT_RUN = re.compile(rb"\d{65}")


def member_limit() -> int:
    """The bytes one member may declare: each decoding thread holds one."""
    budget = memory_budget()
    return MAX_OBJECT_BYTES if budget is None else min(MAX_OBJECT_BYTES, budget // usable_cores())


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
    labels_json: bytes | None = None  # dataset.json, b"" when it declares too much
    labels_size: int = 0  # the bytes dataset.json declares
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


def kind_of(path: Path) -> str:
    return "zip" if path.name.lower().endswith(".zip") else "tar"


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
            archive.labels_size = info.file_size
            archive.labels_json = _small(archive, info, MAX_LABELS_BYTES) or b""
        elif name.lower().endswith(".cls") and safe_key(name):
            text = _small(archive, info, MAX_CLS_BYTES) or b""
            archive.classes[sample_key(name)] = text.decode("utf-8", "replace")
        elif _take(archive, name, info.file_size, suffixes, limit):
            archive.members.append(Member(archive, name, info.file_size, info))
    return archive


def _small(archive: ZipArchive, info: zipfile.ZipInfo, limit: int) -> bytes | None:
    """A label member's bytes, or None when it is larger than `limit` or unreadable."""
    if info.file_size > limit:
        return None
    try:
        with archive.zip.open(info) as stream:
            return stream.read(limit + 1)[:limit]
    except Exception:  # damaged, encrypted, an unknown compression: as if it held nothing
        return None


class _CheckedInfo(tarfile.TarInfo):
    """A tar header whose extended headers are checked before `tarfile` parses them."""

    def _proc_pax(self, tar: tarfile.TarFile) -> tarfile.TarInfo:
        _check_extended(tar, self.size, pax=True)
        return super()._proc_pax(tar)

    def _proc_gnulong(self, tar: tarfile.TarFile) -> tarfile.TarInfo:
        _check_extended(tar, self.size, pax=False)
        return super()._proc_gnulong(tar)


def _check_extended(tar: tarfile.TarFile, size: int, pax: bool) -> None:
    """Raise ReadError unless the extended header at the file's position is small and, for
    pax, a run of well-formed records ('<length> <keyword>=<value>' and a newline) without
    the long digit runs or repeated hdrcharset fields Python's own parser is slow on."""
    if size > MAX_EXTENDED_BYTES:
        raise tarfile.ReadError(f"an extended header declares {size:,} bytes")
    if not pax:
        return
    at = tar.fileobj.tell()
    data = tar.fileobj.read(size)
    tar.fileobj.seek(at)
    position = 0
    while position < len(data):
        match = _PAX_RECORD.match(data, position)
        length = int(match.group(1)) if match else 0
        record = data[position : position + length]
        if (
            not match
            or length <= match.end() - position
            or record[-1:] != b"\n"
            or (b"=" not in record)
        ):
            raise tarfile.ReadError("a pax header holds a malformed record")
        position += length
    if _DIGIT_RUN.search(data) or data.count(b"hdrcharset") > 1:
        raise tarfile.ReadError("a pax header holds a field tar readers are slow on")


def list_tar(path: Path, suffixes: tuple[str, ...]) -> Archive:
    """A plain tar's members, read once front to back (headers only: member data is skipped
    by seeking); what was listed before a damaged header is kept."""
    archive, limit = TarArchive(path), member_limit()
    try:
        with tarfile.open(path, "r:", tarinfo=_CheckedInfo) as tar:
            for info in tar:
                _add_tar_entry(archive, tar, info, suffixes, limit)
    except (tarfile.TarError, OSError, EOFError, ValueError, MemoryError) as exc:
        archive.problem = f"{type(exc).__name__}: {exc}"[:200]
    return archive


def _add_tar_entry(
    archive: TarArchive,
    tar: tarfile.TarFile,
    info: tarfile.TarInfo,
    suffixes: tuple[str, ...],
    limit: int,
) -> None:
    name = _clean(info.name)
    if info.isdir():
        return
    if not info.isreg() or info.sparse is not None:
        archive.refused.append((name, "it is a link or a special file"))
    elif name.lower().endswith(".cls") and safe_key(name) and info.size <= MAX_CLS_BYTES:
        text = tar.extractfile(info).read(MAX_CLS_BYTES)
        archive.classes[sample_key(name)] = text.decode("utf-8", "replace")
    elif name == LABELS:
        archive.labels_size = info.size
        archive.labels_json = b""
        if info.size <= MAX_LABELS_BYTES:
            archive.labels_json = tar.extractfile(info).read(MAX_LABELS_BYTES)
    elif _take(archive, name, info.size, suffixes, limit):
        archive.members.append(Member(archive, name, info.size, info.offset_data))


def sample_key(name: str) -> str:
    """WebDataset's key: the path up to the first dot of the file's name."""
    folder, _, base = name.rpartition("/")
    return f"{folder}/{base.split('.', 1)[0]}" if folder else base.split(".", 1)[0]
