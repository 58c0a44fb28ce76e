"""The console: log lines through rich, and progress bars for training and downloads."""

from __future__ import annotations

import time
from typing import Any

from loguru import logger
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

CONSOLE = Console(stderr=True)
_LOG_FORMAT = "<green>{time:HH:mm:ss}</green> <level>{level: <7}</level> {message}"


def setup_console_logging(level: str = "INFO", prefix: str = "") -> None:
    """Send loguru through rich's console so log lines print above the progress bar."""
    logger.remove()
    logger.add(
        lambda message: CONSOLE.file.write(str(message)) and CONSOLE.file.flush(),
        level=level,
        format=prefix.replace("{", "{{").replace("}", "}}") + _LOG_FORMAT,
        colorize=CONSOLE.is_terminal,
    )


class TrainingProgress:
    """Advances once per step (no device sync); numbers refresh on logging steps."""

    def __init__(self, total: int, start: int = 0, enabled: bool = True) -> None:
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
            disable=not (enabled and CONSOLE.is_terminal),
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


class ByteProgress:
    """Objects done (of total, when known), megabytes and rate, for S3 listing and download."""

    def __init__(self, what: str, total: int | None) -> None:
        self._progress = Progress(
            TextColumn(f"[bold]{what}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("objects  {task.fields[volume]}"),
            TimeElapsedColumn(),
            console=CONSOLE,
            transient=True,
            disable=not CONSOLE.is_terminal,
        )
        self._task = self._progress.add_task(what, total=total, volume="")
        self._bytes = 0
        self._start = time.perf_counter()

    def __enter__(self) -> ByteProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def advance(self, objects: int, size: int) -> None:
        self._bytes += size
        rate = self._bytes / max(time.perf_counter() - self._start, 1e-6)
        volume = f"{self._bytes / 1e6:.1f} MB  {rate / 1e6:.1f} MB/s" if self._bytes else ""
        self._progress.update(self._task, advance=objects, volume=volume)
