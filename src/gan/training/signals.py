"""Ctrl-C and SIGTERM: finish the current step, save, and stop; a second Ctrl-C aborts."""

from __future__ import annotations

import signal
import threading
from types import FrameType

from loguru import logger


class StopRequests:
    """While active, the first SIGINT/SIGTERM only sets `requested`; the loop checks it."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        logger.warning(
            "{} received: finishing this step and saving a checkpoint (Ctrl-C again aborts).",
            signal.Signals(signum).name,
        )

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
