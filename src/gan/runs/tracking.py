"""Where a run's numbers go: TensorBoard events, history.jsonl, and the console/file log."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any, Protocol

import torch
from loguru import logger

from gan.atomic import atomic_write


class Tracker(Protocol):
    def scalars(self, step: int, values: dict[str, float]) -> None: ...
    def image(self, tag: str, image: torch.Tensor, step: int) -> None: ...
    def text(self, tag: str, text: str, step: int) -> None: ...
    def history(self, record: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


class NullTracker:
    """Does nothing: for tests and for ranks that do not write."""

    def scalars(self, step: int, values: dict[str, float]) -> None:
        pass

    def image(self, tag: str, image: torch.Tensor, step: int) -> None:
        pass

    def text(self, tag: str, text: str, step: int) -> None:
        pass

    def history(self, record: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


class RunTracker:
    """TensorBoard event files plus one JSON line per logged step in history.jsonl.

    Made before the run's state is known to be good, it touches nothing until `open`."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.opened = False

    def open(self, resume_step: int = 0) -> RunTracker:
        from torch.utils.tensorboard import SummaryWriter

        log_dir = self.log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        # On resume, TensorBoard hides what an interrupted run logged after its checkpoint.
        purge = resume_step + 1 if resume_step > 0 else None
        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge)
        truncate_history(log_dir / "history.jsonl", resume_step)
        self._history = open(log_dir / "history.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        self._log_sink = logger.add(
            log_dir / "train.log",
            level="DEBUG",
            format="{time:YYYY-MM-DD HH:mm:ss} {level} {message}",
        )
        self.opened = True
        return self

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def image(self, tag: str, image: torch.Tensor, step: int) -> None:
        self.writer.add_image(tag, image, step)

    def text(self, tag: str, text: str, step: int) -> None:
        self.writer.add_text(tag, text, step)

    def hparams(self, params: dict[str, Any], metrics: tuple[str, ...]) -> None:
        """The HParams dashboard's record of this run: its options, and the names of the
        scalar tags that hold its metrics (written as scalars, by `scalars`)."""
        from torch.utils.tensorboard.summary import hparams

        declared = dict.fromkeys(metrics, 0.0)  # only the names are used
        writer = self.writer._get_file_writer()
        for summary in hparams(params, declared):
            writer.add_summary(summary)

    def history(self, record: dict[str, Any]) -> None:
        # json writes floats with repr(), i.e. full precision; NaN/inf become null.
        clean = {
            k: None if isinstance(v, float) and not math.isfinite(v) else v
            for k, v in record.items()
        }
        self._history.write(json.dumps(clean) + "\n")
        self._history.flush()

    def close(self) -> None:
        if not self.opened:
            return
        self.opened = False
        self.writer.flush()
        self.writer.close()
        self._history.close()
        logger.remove(self._log_sink)


def truncate_history(path: Path, step: int) -> None:
    """Drop records after `step` (logged by a run that died before its next checkpoint)."""
    if not path.exists():
        return
    records = read_history(path)
    keep = [r for r in records if isinstance(r.get("step"), int) and r["step"] <= step]
    if len(keep) == len(records):
        return
    atomic_write(path, "".join(json.dumps(r) + "\n" for r in keep))


def read_history(path: Path) -> list[dict[str, Any]]:
    """Records of a history.jsonl; a torn last line (crash mid-write) is ignored."""
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                print(f"warning: ignoring a malformed line in {path}", file=sys.stderr)
    return records
