"""Handed files choose nothing silently: a step of the plan.

A checkpoint that is resumed and a `--config` file are files a user may have been handed.
Where the run writes, where it is tracked and how its data is cached and fetched
(`gan.config.tracking.local_fields`: --workdir, the `[track]` section, the S3 settings,
--download) come from the command line and the environment only; what such a file asks
for instead is ignored, in one warning that names the flags that would keep it.
"""

from __future__ import annotations

import shlex
from collections.abc import Collection
from typing import Any

from gan.config import Config
from gan.config.options import Field
from gan.config.tracking import check_mlflow_uri, local_fields, redact

CHECKPOINT, CONFIG_FILE = "the checkpoint", "the config file"


def from_here(
    given: Config, saved: Config | None, sources: dict[str, str], mine: Collection[str]
) -> dict[str, Any]:
    """The local options' values: the user's (a source in `mine`: a flag, an argument),
    else their declared default. Those a file set leave `sources`; what the file (or the
    resumed checkpoint, `saved`) asked for otherwise is said in one line."""
    changes: dict[str, Any] = {}
    ignored: dict[str, list[str]] = {CHECKPOINT: [], CONFIG_FILE: []}
    for f in local_fields():
        source = sources.get(f.key)
        value = given.get(f.key) if source in mine else f.default
        changes[f.key] = value
        asked = []
        if source is not None and source not in mine:  # the --config file's
            del sources[f.key]
            asked.append((CONFIG_FILE, given.get(f.key)))
        if saved is not None and source not in mine:
            asked.append((CHECKPOINT, saved.get(f.key)))
        for where, wanted in asked:
            if wanted != value:
                ignored[where].append(as_flag(f, wanted))
    if changes["track.mlflow_uri"] is not None:
        check_mlflow_uri(changes["track.mlflow_uri"])
    _warn(ignored)
    return changes


def as_flag(f: Field, value: Any) -> str:
    """The flag that sets `value` (credentials hidden): --download, --mlflow-uri URI; a
    value that is unset, as `--flag unset`."""
    if f.kind is bool:
        off = "--" + f.flag[5:] if f.flag.startswith("--no-") else f"--no-{f.flag[2:]}"
        return f.flag if value else off
    text = "unset" if value is None else redact(f.opt.show(value))[:200]
    return f"{f.flag} {shlex.quote(text) if text.isprintable() else repr(text)}"


def _warn(ignored: dict[str, list[str]]) -> None:
    parts = [f"{' '.join(flags)} from {where}" for where, flags in ignored.items() if flags]
    if not parts:
        return
    from loguru import logger  # here: gan --help does not load it

    logger.warning(
        "Ignored {}: where a run writes, where it is tracked and how its data is cached and "
        "fetched come only from the command line and the environment, never from a file "
        "(give those flags to keep them).",
        " and ".join(parts),
    )
