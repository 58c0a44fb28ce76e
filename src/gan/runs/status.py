"""A run's life: the status its trainer records, and where a checkpoint's run keeps its
outputs. (The lock a trainer holds is in `gan.runs.folders`, beside the folders it guards.)

- **Status:** `logs/<run>/status.json`, written when training starts ("training") and
  when it ends ("finished", "interrupted" or "failed"). A status still saying "training"
  while nobody holds the lock means the process died without a word: "killed".
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from gan.atomic import atomic_write
from gan.runs.folders import RunPaths

STATUS = "status.json"
ENDED = ("finished", "interrupted", "failed")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def read_status(logs: Path) -> dict[str, Any]:
    try:
        status = json.loads((logs / STATUS).read_text())
    except (OSError, ValueError):
        return {}
    return status if isinstance(status, dict) else {}


class StatusRecorder:
    """Keeps `status.json` of the run a trainer is training (rank 0 only)."""

    def __init__(self, paths: RunPaths) -> None:
        self.paths = paths
        self.before = read_status(paths.logs)
        self.session_started = time.time()

    def _write(self, fields: dict[str, Any]) -> None:
        before = self.before
        seconds = float(before.get("seconds", 0.0)) + time.time() - self.session_started
        began = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.session_started))
        status = {
            "started": before.get("started", began),  # the run's first session
            "started_unix": before.get("started_unix", self.session_started),
            "session_started": began,
            "seconds_before": float(before.get("seconds", 0.0)),
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
