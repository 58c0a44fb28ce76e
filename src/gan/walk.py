"""Walking a user's folder tree without recursion: a folder nested thousands of levels deep
(a tarball, a mistake, a hostile dataset) ends no walk in a RecursionError.

`os.walk` (before Python 3.12) and `pathlib.Path.rglob` recurse once a level, so a tree
deeper than the interpreter's recursion limit (1,000) crashes them. `Walk` keeps its own
stack, visits folders in `os.walk`'s order (a folder's entries sorted by name, then each
subfolder's tree in turn), never enters a link to a folder, skips folders it cannot read
(a path past the system's length limit included), and may stop at a depth, counting the
folders it left out.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_DATA_DEPTH = 64  # folder levels below a dataset's root: class folders need one or two


@dataclass
class Walk:
    """The folders of `root`'s tree with their entries: `for folder, entries in Walk(root)`.

    `hidden`: whether names starting with '.' are listed and entered. `max_depth`: the
    deepest level entered (the root is 0); the subfolders below it are counted in
    `too_deep`, unread ones in `unreadable`."""

    root: Path
    hidden: bool = True
    max_depth: int | None = None
    too_deep: int = 0
    unreadable: int = 0

    def __iter__(self) -> Iterator[tuple[Path, list[os.DirEntry]]]:
        stack = [(Path(self.root), 0)]
        while stack:
            folder, depth = stack.pop()
            try:
                with os.scandir(folder) as found:
                    entries = sorted(found, key=lambda e: e.name)
            except OSError:  # gone, unreadable, or its path too long for the system
                self.unreadable += 1
                continue
            if not self.hidden:
                entries = [e for e in entries if not e.name.startswith(".")]
            yield folder, entries
            below = [e for e in entries if e.is_dir(follow_symlinks=False)]
            if below and self.max_depth is not None and depth >= self.max_depth:
                self.too_deep += len(below)
                continue
            stack.extend((Path(e.path), depth + 1) for e in reversed(below))


def tree_size(folders: list[Path]) -> int:
    """Bytes on disk of the regular files in the folders' trees, each file once (a run's
    last.pt is a hard link to a step file); links are not followed, any depth is walked."""
    seen, total = set(), 0
    for folder in folders:
        for _, entries in Walk(folder):
            for entry in entries:
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) not in seen:
                    seen.add((info.st_dev, info.st_ino))
                    total += info.st_size
    return total
