"""Where a run writes: checkpoints/<run>, logs/<run>, assets/<run> under the workdir."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gan.atomic import atomic_write
from gan.errors import GanError


@dataclass(frozen=True)
class RunPaths:
    workdir: Path
    name: str

    @property
    def checkpoints(self) -> Path:
        return self.workdir / "checkpoints" / self.name

    @property
    def last(self) -> Path:
        return self.workdir / "checkpoints" / "last.pt"

    @property
    def logs(self) -> Path:
        return self.workdir / "logs" / self.name

    @property
    def assets(self) -> Path:
        return self.workdir / "assets" / self.name

    def write_run_json(self, payload: dict[str, Any]) -> Path:
        return atomic_write(self.logs / "run.json", json.dumps(payload, indent=2) + "\n")

    def write_config_toml(self, text: str) -> Path:
        """The resolved options: `gan train --config` of this file trains the run again."""
        return atomic_write(self.logs / "config.toml", text)


def _has_outputs(paths: RunPaths) -> bool:
    return (paths.logs / "history.jsonl").exists() or any(paths.checkpoints.glob("step-*.pt"))


def default_run_name(dataset: str, model: str) -> str:
    return f"{dataset}-{model}-{time.strftime('%Y%m%d-%H%M%S')}"


def prepare_run(
    workdir: str, run_name: str | None, dataset: str, model: str, resume: bool = False
) -> RunPaths:
    """Create the run's folders; refuse to overwrite an earlier run's outputs unless resuming."""
    root = Path(os.path.expanduser(workdir))
    if root.exists() and not root.is_dir():
        raise GanError(f"--workdir {root} is a file; give a folder.")
    name = run_name or default_run_name(dataset, model)
    paths = RunPaths(root, name)
    if run_name is None:
        suffix = 1
        while paths.logs.exists() or paths.checkpoints.exists():
            suffix += 1
            paths = RunPaths(root, f"{name}-{suffix}")
    elif not resume and _has_outputs(paths):
        raise GanError(
            f"Run {name!r} already has outputs in {root}; choose another --run-name or "
            "continue it with --resume auto (nothing was overwritten)."
        )
    if resume:
        for stale in paths.checkpoints.glob(".*.tmp"):  # left by a process that was killed
            stale.unlink(missing_ok=True)
    try:
        for folder in (paths.checkpoints, paths.logs, paths.assets):
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".write-test-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
    except OSError as exc:
        raise GanError(
            f"Cannot write to {exc.filename or root} ({exc.strerror or exc}); "
            "choose a writable --workdir."
        ) from None
    return paths
