"""The TensorBoard tracker: event files in logs/<run>/, with the resolved config as text
and the HParams dashboard's record (options beside best and last FID), whose metrics are
written again whenever a session ends, however it ends."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import torch

from gan.runs.tracking import RunEnd, RunStart

METRICS = ("hparams/best_fid", "hparams/last_fid", "hparams/steps")


class TensorBoardTracker:
    name = "tensorboard"

    def __init__(self, track: Any = None, workdir: Path | None = None, dataset: str = "") -> None:
        self.writer: Any = None

    def open(self, start: RunStart) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # On resume, TensorBoard hides what an interrupted run logged after its checkpoint.
        purge = start.step + 1 if start.step > 0 else None
        # Its event file is opened by a name of time, host, pid and a counter, truncating
        # whatever is there: a random tail makes a name no one could plant a link at.
        tail = f".{secrets.token_hex(8)}"
        self.writer = SummaryWriter(log_dir=str(start.logs), purge_step=purge, filename_suffix=tail)
        self.writer.add_text("config", "```toml\n" + start.config_text + "```", start.step)
        self._hparams(start.params)

    def _hparams(self, params: dict[str, Any]) -> None:
        """The HParams dashboard's record of this run: its options, and the names of the
        scalar tags that hold its metrics (written as scalars, by `scalars`)."""
        from torch.utils.tensorboard.summary import hparams

        declared = dict.fromkeys(METRICS, 0.0)  # only the names are used
        writer = self.writer._get_file_writer()
        for summary in hparams(params, declared):
            writer.add_summary(summary)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def image(self, tag: str, image: torch.Tensor, step: int) -> None:
        self.writer.add_image(tag, image, step)

    def text(self, tag: str, text: str, step: int) -> None:
        self.writer.add_text(tag, text, step)

    def close(self, end: RunEnd) -> None:
        """The HParams metrics as they stand now (FIDs only once measured)."""
        values = {k: v for k, v in end.summary().items() if k.startswith("hparams/")}
        self.scalars(end.step, values)
        self.writer.flush()
        self.writer.close()
