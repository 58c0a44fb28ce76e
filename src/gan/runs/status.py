"""A run's life: the status its trainer records, and where a checkpoint's run keeps its
outputs. (The lock a trainer holds is in `gan.runs.folders`, beside the folders it guards.)

- **Status:** `logs/<run>/status.json`, written when training starts ("training") and
  when it ends ("finished", "interrupted" or "failed"). A status still saying "training"
  while nobody holds the lock means the process died without a word: "killed".
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import time
from pathlib import Path
from typing import Any

from gan.atomic import atomic_write, read_regular
from gan.runs.folders import RunPaths

STATUS = "status.json"
ENDED = ("finished", "interrupted", "failed")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def read_json(path: Path) -> dict[str, Any]:
    """A run's JSON file as a table, {} when it is missing, not a regular file (a link, a
    FIFO: never followed or waited on), too large, or not a JSON object."""
    try:
        value = json.loads(read_regular(path).decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def number(value: Any) -> float | None:
    """A finite number read from a run's file, else None (text, a list, NaN, 1e999)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    try:
        return float(value) if ok and math.isfinite(value) else None
    except OverflowError:  # an integer beyond a float
        return None


def read_status(logs: Path) -> dict[str, Any]:
    return read_json(logs / STATUS)


class StatusRecorder:
    """Keeps `status.json` of the run a trainer is training (rank 0 only)."""

    def __init__(self, paths: RunPaths) -> None:
        self.paths = paths
        self.before = read_status(paths.logs)
        self.session_started = time.time()

    def _write(self, fields: dict[str, Any]) -> None:
        before = self.before  # numbers as `gan runs` reads them: a mangled one is none
        earlier = number(before.get("seconds")) or 0.0
        seconds = earlier + time.time() - self.session_started
        began = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.session_started))
        first = number(before.get("started_unix"))
        status = {
            "started": before["started"] if isinstance(before.get("started"), str) else began,
            "started_unix": first if first is not None else self.session_started,
            "session_started": began,
            "seconds_before": earlier,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            **fields,
        }
        if fields["status"] != "training":
            status |= {"ended": _now(), "seconds": round(seconds, 3)}
        with contextlib.suppress(OSError):  # the status must never break a run
            atomic_write(self.paths.logs / STATUS, json.dumps(status, indent=2) + "\n")

    def training(self, step: int, planned: int) -> None:
        self._write({"status": "training", "step": step, "planned": planned})

    def ended(self, status: str, step: int, planned: int, reason: str | None = None) -> None:
        self._write({"status": status, "step": step, "planned": planned, "reason": reason})
