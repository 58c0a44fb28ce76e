"""--classes: the images of some of a labelled dataset's classes, chosen by name.

Each loader (mnist, folder, bps) names every image's class before anything is decoded or
cut by --limit; `chosen` checks the names asked for against those the data has, and the
loader keeps the images of the classes it returns. The classes kept are then numbered
0..k-1 in the data's own order (`gan.data.label_images`), their names recorded with the
run, so a conditional model's `gan sample --label 7` still means the digit 7.
"""

from __future__ import annotations

from collections.abc import Iterable

from gan.errors import GanError


def _same_number(a: str, b: str) -> bool:
    try:
        return float(a) == float(b)
    except ValueError:
        return False


def chosen(wanted: tuple[str, ...], present: Iterable[str], source: str) -> set[str]:
    """The data's class names that `wanted` names (exactly, else ignoring case, else by
    numeric value: a dose of 0.1 is 0.10); one sentence for a name the data lacks."""
    names = sorted(set(present))
    found: set[str] = set()
    for text in wanted:
        for same in (str.__eq__, lambda a, b: a.lower() == b.lower(), _same_number):
            match = [name for name in names if same(text, name)]
            if match:
                found.update(match)
                break
        else:
            more = f" and {len(names) - 20} more" if len(names) > 20 else ""
            shown = ", ".join(names[:20]) + more
            raise GanError(
                f"--classes {','.join(wanted)}: {source} has no class {text!r} (its classes: "
                f"{shown or 'none'}); choose among those."
            )
    return found


def unlabelled(source: str, how: str) -> GanError:
    """The sentence for --classes on data without labels."""
    return GanError(
        f"--classes needs labelled data, and {source} has none ({how}); drop --classes."
    )
