"""A rich progress bar for training: step, images/s, losses, ETA."""

from __future__ import annotations

from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from gan.tracking import CONSOLE


class TrainingProgress:
    """Advances once per step (no device sync); numbers refresh on logging steps."""

    def __init__(self, total: int, start: int = 0) -> None:
        self._progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[numbers]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=CONSOLE,
            transient=not CONSOLE.is_terminal,
            disable=not CONSOLE.is_terminal,
        )
        self._task = self._progress.add_task("train", total=total, completed=start, numbers="")

    def __enter__(self) -> TrainingProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def advance(self) -> None:
        self._progress.advance(self._task)

    def show(self, record: dict[str, Any]) -> None:
        numbers = (
            f"{record['images_per_s']:.0f} img/s  "
            f"D {record['d_loss']:.3f}  G {record['g_loss']:.3f}"
        )
        self._progress.update(self._task, numbers=numbers)
