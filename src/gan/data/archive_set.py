"""Which archives a `--data` names (a ZIP or tar file, a quoted glob such as
'shards/*.tar', or a folder holding archives and no images), their members, and the
labels they carry: StyleGAN2-ADA's `dataset.json` or WebDataset's `.cls` members.

Labels are class integers; the class names are those integers as text, sorted by value.
A label file that cannot be used (malformed, too large, labels that are not integers)
leaves the dataset unlabelled, said in one warning: `--conditional` then says it has no
labels, and training without it goes on.
"""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path
from typing import Any

import torch
from loguru import logger

from gan.data import label_images
from gan.data.archive import (
    ARCHIVE_SUFFIXES,
    LABELS,
    MAX_LABELS_BYTES,
    Archive,
    Member,
    kind_of,
    list_tar,
    list_zip,
    sample_key,
)
from gan.errors import GanError

_GLOB = set("*?[")
_COMPRESSED = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar.zst")


def archives_named(source: str) -> list[Path] | None:
    """The archives `source` names, or None when it names no archives (a folder of images,
    or a file of another kind). A pattern that matches no archive is one sentence."""
    path = Path(os.path.expanduser(source))
    if not path.exists() and _GLOB & set(source):
        found = sorted(Path(p) for p in glob.glob(str(path)))
        archives = [p for p in found if p.is_file() and p.name.lower().endswith(ARCHIVE_SUFFIXES)]
        if not archives:
            raise GanError(f"--data {source} matches no .zip or .tar files; check the pattern.")
        return archives
    if path.is_file() and path.name.lower().endswith(_COMPRESSED):
        raise GanError(
            f"--data {source} is a compressed tar, which cannot be read in place; unpack it "
            "into a .tar (gunzip, unxz, ...) or a folder and give that."
        )
    if path.is_file():
        return [path] if path.name.lower().endswith(ARCHIVE_SUFFIXES) else None
    return None


def open_archives(
    archives: list[Path], suffixes: tuple[str, ...], root: str
) -> tuple[list[Member], list[str]]:
    """Every member with a suffix, in archive order, and its name below `root` (the archive's
    own name first when there are several); links, escaping names and oversized members
    skipped with one warning, as are archives that cannot be read."""
    members: list[Member] = []
    relative: list[str] = []
    refused: list[tuple[str, str]] = []
    broken: list[tuple[Path, str]] = []
    opened = 0
    for path in archives:
        archive = _listed(path, suffixes, broken)
        if archive is None:
            continue
        opened += 1
        refused += [(f"{path.name}: {name!r}", why) for name, why in archive.refused]
        if archive.problem:
            broken.append((path, archive.problem))
        _attach_labels(archive)
        members += archive.members
        prefix = f"{path.name}/" if len(archives) > 1 else ""
        relative += [prefix + m.path for m in archive.members]
    if not opened:  # no archive could be read at all: that is the one thing to say
        raise GanError(
            f"No images could be listed from {root}: {len(broken)} archive(s) could not be "
            f"read (first: {broken[0][0]}: {broken[0][1]}); check that they are whole .zip "
            "or plain .tar files (a download cut short?)."
        )
    if refused:
        logger.warning(
            "Skipped {} archive member(s) under {} (first: {}: {}).",
            len(refused),
            root,
            *refused[0],
        )
    if broken:
        logger.warning(
            "Could not read {} archive(s) under {} to the end (first: {}: {}).",
            len(broken),
            root,
            *broken[0],
        )
    return members, relative


def _listed(path: Path, suffixes: tuple[str, ...], broken: list) -> Archive | None:
    if not path.is_file():
        broken.append((path, "not a regular file"))
        return None
    try:
        return list_zip(path, suffixes) if kind_of(path) == "zip" else list_tar(path, suffixes)
    except GanError:
        raise
    except Exception as exc:  # not a ZIP, damaged beyond its first entries, unreadable
        broken.append((path, f"{type(exc).__name__}: {exc}"[:200]))
        return None


def _attach_labels(archive: Archive) -> None:
    """Each member's label from dataset.json, else from its key's .cls member."""
    if archive.labels_json is not None:
        table = _label_table(archive)
        for member in archive.members:
            member.label = table.get(member.path)
        return
    for member in archive.members:
        text = archive.classes.get(sample_key(member.path))
        if text is not None:
            member.label = _integer(text.strip())  # not an integer: unlabelled


def _label_table(archive: Archive) -> dict[str, int]:
    """{member name: class} from dataset.json; {} with a warning when it cannot be used."""
    data = archive.labels_json or b""
    try:
        if archive.labels_size > MAX_LABELS_BYTES:
            raise ValueError(f"it is larger than {MAX_LABELS_BYTES >> 20} MiB")
        labels = json.loads(data).get("labels")
        if labels is None:  # StyleGAN2-ADA writes null for an unlabelled dataset
            return {}
        table = {}
        for name, label in labels:
            if not isinstance(name, str) or _integer(label) is None:
                raise ValueError(f"{str(label)[:20]!r} is not a class integer")
            table[name.replace("\\", "/")] = int(label)
        return table
    except (ValueError, TypeError, AttributeError, RecursionError) as exc:
        logger.warning(
            "Ignored the labels in {} ({}: {}); reading it unlabelled.",
            archive.path,
            LABELS,
            str(exc)[:200],
        )
        return {}


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit() and len(value) <= 18:
        return int(value)
    return None


def member_labels(
    files: list[Any], counts: list[int], root: Any
) -> tuple[torch.Tensor, tuple[str, ...]] | None:
    """(labels, classes) when every image read from the archives has a label; None when
    none has, or (with a warning) when only some have."""
    read = [f for f, count in zip(files, counts, strict=True) if count]
    have = sum(getattr(f, "label", None) is not None for f in read)
    if not have:
        return None
    if have < len(read):
        logger.warning(
            "{} of {} images under {} have no label in the archive; reading them unlabelled.",
            len(read) - have,
            len(read),
            root,
        )
        return None
    names = [str(getattr(f, "label", None)) for f in files]
    return label_images(names, counts, key=int)
