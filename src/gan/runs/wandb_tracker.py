"""The Weights & Biases tracker (`--tracker wandb`, `uv sync --extra wandb`).

The W&B run's id is the gan run's name with a short random tail, kept in
logs/<run>/trackers.json, so a resumed run continues the same W&B run. Without an API key
(or with WANDB_MODE=offline) the run is written offline under logs/<run>/wandb/ for a
later `wandb sync`; a server that does not answer at start-up also means offline.
"""

from __future__ import annotations

import netrc
import os
import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from loguru import logger

from gan.atomic import atomic_write
from gan.errors import GanError
from gan.runs.guard import check_tree
from gan.runs.tracking import RunEnd, RunStart, picture

INIT_TIMEOUT_S = 30  # an online start that takes longer falls back to offline (W&B: 90)
_EXIT_CODES = {"finished": 0, "interrupted": 255, "failed": 1}


def _import_wandb() -> Any:
    try:
        import wandb
    except ImportError:
        raise GanError(
            "--tracker wandb needs the wandb package, which is not installed; install it with "
            "`uv sync --extra wandb` (or --extra trackers), or drop wandb from --tracker."
        ) from None
    return wandb


def has_api_key() -> bool:
    """A key in WANDB_API_KEY or in ~/.netrc for the W&B host (what `wandb login` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or ""
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


class WandbTracker:
    name = "wandb"

    def __init__(self, track: Any, workdir: Path, dataset: str) -> None:
        self.wandb = _import_wandb()
        self.project = track.wandb_project or os.environ.get("WANDB_PROJECT") or "gan"
        self.entity = track.wandb_entity or os.environ.get("WANDB_ENTITY")
        self.artifacts = track.tracker_artifacts
        self.run: Any = None

    def _mode(self) -> tuple[str, str | None]:
        """online or offline, and why offline."""
        mode = os.environ.get("WANDB_MODE", "").strip().lower()
        if mode in ("offline", "dryrun"):
            return "offline", "WANDB_MODE is offline"
        if mode == "disabled":
            return "disabled", None
        if not has_api_key():
            return "offline", "no API key (wandb login or WANDB_API_KEY)"
        return "online", None

    def open(self, start: RunStart) -> dict[str, Any]:
        # W&B writes the run's files under logs/<run>/wandb/: a link or file planted there
        # (a tarball, a shared workdir) would take them anywhere; its own links it replaces
        check_tree(start.workdir, start.logs / "wandb", f"the W&B folder of run {start.name!r}",
                   ("latest-run", "debug.log", "debug-internal.log"))  # fmt: skip
        run_id = start.ids.get("id") or _new_id(start.name)
        mode, why = self._mode()
        if mode == "disabled":  # W&B's own off switch: this tracker does nothing
            logger.info("W&B: WANDB_MODE is disabled, so nothing of this run goes to W&B.")
            return {"id": run_id, "project": self.project}
        try:
            self.run = self._init(start, run_id, mode)
        except Exception as exc:  # noqa: BLE001 - no network, server down: go offline
            if mode != "online":
                raise
            why = f"the W&B server did not answer ({type(exc).__name__})"
            self.wandb.teardown()  # the failed attempt holds the run's id in this process
            mode, self.run = "offline", self._init(start, run_id, "offline")
        self.files = Path(self.run.dir)
        if mode == "offline":
            logger.warning(
                "W&B: {}, so this run is logged offline in {}; upload it later with "
                "`wandb sync {}`.",
                why,
                self.files.parent,
                self.files.parent.parent / f"offline-run-*-{run_id}",
            )
        atomic_write(self.files / "config.toml", start.config_text)
        return {"id": run_id, "project": self.project}

    def _init(self, start: RunStart, run_id: str, mode: str) -> Any:
        timeout = float(os.environ.get("WANDB_INIT_TIMEOUT") or INIT_TIMEOUT_S)
        settings = self.wandb.Settings(
            console="off", silent=True, init_timeout=timeout, save_code=False
        )
        return self.wandb.init(
            project=self.project,
            entity=self.entity,
            id=run_id,
            name=start.name,
            dir=str(start.logs),
            mode=mode,
            resume="allow",
            config=start.config,
            tags=[start.tags["dataset"], start.tags["model"]],
            settings=settings,
        )

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if self.run is not None:
            self.run.log(dict(values), step=step)

    def image(self, tag: str, image: torch.Tensor, step: int) -> None:
        if self.run is not None:
            self.run.log({tag: self.wandb.Image(picture(image))}, step=step)

    def text(self, tag: str, text: str, step: int) -> None:
        if self.run is not None:  # a file of the run's, uploaded with it
            atomic_write(self.files / f"{tag}.md", text)

    def close(self, end: RunEnd) -> None:
        if self.run is None:
            return
        summary = {"status": end.status, "planned_steps": end.planned, **end.summary()}
        self.run.summary.update(summary)
        if self.artifacts and end.checkpoint is not None:
            artifact = self.wandb.Artifact(f"{self.run.id}-checkpoint", type="model")
            artifact.add_file(str(end.checkpoint), name="last.pt")
            self.run.log_artifact(artifact, aliases=[f"step-{end.step}"])
        self.run.finish(exit_code=_EXIT_CODES.get(end.status, 1))


def _new_id(name: str) -> str:
    """W&B run ids: letters, digits, '-' and '_', at most 64 characters; unique."""
    return f"{re.sub(r'[^A-Za-z0-9_-]', '-', name)[:56]}-{secrets.token_hex(3)}"
