"""Every relative link and image in README.md and docs/*.md points at a file in git.

Markdown links and images (inline and reference-style) and HTML ``<img src>`` /
``<a href>`` count; URLs with a scheme (http, https, mailto, ...) and pure ``#anchor``
links do not, nor does anything inside fenced code blocks or inline code. A
``#fragment`` or ``?query`` is stripped; a path is taken relative to the file that holds
it (or to the repository root when it starts with ``/``, as GitHub does). A link to a
folder is fine when git tracks a file inside it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+[^)]*)?\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$")
HTML = re.compile(r"<(?:img|a)\b[^>]*?\s(?:src|href)\s*=\s*[\"']([^\"']+)[\"']", re.I)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def links(text: str) -> list[tuple[int, str]]:
    """(line number, target) of each link outside fenced code blocks and inline code."""
    found = []
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        if match := FENCE.match(line):
            marker = match.group(1)
            if fence is None:
                fence = marker
            elif marker[0] == fence[0] and len(marker) >= len(fence):
                fence = None
            continue
        if fence is not None:
            continue
        line = INLINE_CODE.sub("", line)
        targets = INLINE_LINK.findall(line) + HTML.findall(line)
        if match := REFERENCE.match(line):
            targets.append(match.group(1))
        found += [(number, target) for target in targets]
    return found


def local_path(target: str) -> str | None:
    """The path part of a relative link, or None for URLs and pure anchors."""
    if SCHEME.match(target) or target.startswith(("#", "//")):
        return None
    path = unquote(re.split(r"[#?]", target, maxsplit=1)[0])
    return path or None


def resolve(doc: str, path: str) -> str | None:
    """The repository-relative POSIX path a link in `doc` names; None if it leaves the repo."""
    base = PurePosixPath() if path.startswith("/") else PurePosixPath(doc).parent
    parts: list[str] = []
    for part in (base / path.lstrip("/")).parts:
        if part == "..":
            if not parts:
                return None
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def tracked_files() -> set[str]:
    if not (ROOT / ".git").exists():
        pytest.skip(f"{ROOT} is not a git checkout (no .git): cannot list tracked files")
    if shutil.which("git") is None:
        pytest.skip("git is not on the PATH: cannot list tracked files")
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    return {name for name in out.decode().split("\0") if name}


def test_parser_counts_links_outside_code_only():
    text = "\n".join(
        [
            "![shot](../assets/a.png) and [page](b.md#part) `[not](code.md)`",
            "[web](https://example.com) [mail](mailto:x@y.z) [anchor](#here)",
            '<img src="img/c.png" width="40"> [ref]: refs/d.md "title"',
            "[ref]: refs/d.md",
            "```",
            "[fenced](e.md)",
            "```",
            "[after](f.md 'title')",
        ]
    )
    targets = [target for _, target in links(text)]
    assert targets == [
        "../assets/a.png",
        "b.md#part",
        "https://example.com",
        "mailto:x@y.z",
        "#here",
        "img/c.png",
        "refs/d.md",
        "f.md",
    ]
    paths = [local_path(target) for target in targets]
    assert paths == ["../assets/a.png", "b.md", None, None, None, "img/c.png", "refs/d.md", "f.md"]
    assert resolve("docs/x.md", "../assets/a.png") == "assets/a.png"
    assert resolve("docs/x.md", "/README.md") == "README.md"
    assert resolve("README.md", "../outside.md") is None


def test_relative_links_resolve_to_tracked_files():
    tracked = tracked_files()
    folders = {str(parent) for name in tracked for parent in PurePosixPath(name).parents}
    docs = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("docs/*.md"))]
    broken = []
    checked = 0
    for doc in docs:
        if not (ROOT / doc).is_file():
            continue
        for number, target in links((ROOT / doc).read_text(encoding="utf-8")):
            if (path := local_path(target)) is None:
                continue
            checked += 1
            name = resolve(doc, path)
            if name is None or (name not in tracked and name not in folders):
                why = "outside the repository" if name is None else "not tracked by git"
                broken.append(f"{doc}:{number}: {target} ({why})")
    assert checked, "found no relative links at all: is the parser broken?"
    assert not broken, f"{len(broken)} broken relative link(s):\n" + "\n".join(broken)
