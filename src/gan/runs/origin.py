"""Where a run started from: run.json's `init_from` (a run made with `--init-from`), as
`gan runs` shows it."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def init_from(value: Any) -> dict[str, Any] | None:
    """run.json's --init-from record: its path, sha256, run and step, plain values only."""
    keys = ("path", "sha256", "run", "step")
    if not isinstance(value, dict) or not isinstance(value.get("path"), str):
        return None
    return {key: value[key] for key in keys if isinstance(value.get(key), str | int)}


def from_text(init: dict[str, Any] | None) -> str:
    """The FROM column: run@step (else the file's name) and the digest's first 8 digits."""
    if init is None:
        return "-"
    where = f"{init['run']}@{init['step']}" if {"run", "step"} <= set(init) else None
    return f"{where or Path(init['path']).name} ({str(init.get('sha256', ''))[:8]})"
