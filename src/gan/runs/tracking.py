"""Where a run's numbers go: history.jsonl and train.log, always, and the experiment
trackers it asked for (`--tracker`: TensorBoard, W&B, MLflow), all behind one interface.

The loop's components (reporter, grids) call a `RunLog`; it hands every call to each
tracker and knows none of them by name. A tracker that fails in the middle of a run is
dropped with one warning: training, checkpoints and the other trackers go on.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from loguru import logger

from gan.atomic import NotRegular, atomic_write, read_regular, regular_opener
from gan.errors import GanError
from gan.runs.history import truncate_history

IDS_FILE = "trackers.json"  # each tracker's own id of the run, so a resume continues it


@dataclass
class RunStart:
    """What every tracker is told when a session of a run (new or resumed) begins."""

    name: str  # the run's name (logs/<name>/)
    logs: Path  # the run's log folder
    workdir: Path
    step: int  # 0 for a new run, else the step it resumes from
    config: dict[str, Any]  # the resolved config, by section
    params: dict[str, bool | int | float | str]  # flattened `section.field` options
    config_text: str  # config.toml
    tags: dict[str, str]  # dataset, model, run
    ids: dict[str, Any] = field(default_factory=dict)  # what this tracker stored last time


@dataclass
class RunEnd:
    """How a session ended: finished, interrupted or failed, at which step."""

    status: str
    step: int
    planned: int
    best_fid: float | None
    last_fid: float | None
    seconds: float  # of this session
    checkpoint: Path | None  # last.pt, when there is one

    def summary(self) -> dict[str, float]:
        values = {"hparams/steps": float(self.step), "summary/seconds": self.seconds}
        if self.best_fid is not None:
            values["hparams/best_fid"] = self.best_fid
        if self.last_fid is not None:
            values["hparams/last_fid"] = self.last_fid
        return values


class Tracker(Protocol):
    """One experiment tracker. `open` may return ids to store for a resume (trackers.json);
    a `GanError` from `open` stops the run before it trains, anything later is a warning."""

    name: str

    def open(self, start: RunStart) -> dict[str, Any] | None: ...
    def scalars(self, step: int, values: dict[str, float]) -> None: ...
    def image(self, tag: str, image: torch.Tensor, step: int) -> None: ...
    def text(self, tag: str, text: str, step: int) -> None: ...
    def close(self, end: RunEnd) -> None: ...


class Log(Protocol):
    """What the loop's components call (a `RunLog`, or a `NullLog`)."""

    def scalars(self, step: int, values: dict[str, float]) -> None: ...
    def image(self, tag: str, image: torch.Tensor, step: int) -> None: ...
    def text(self, tag: str, text: str, step: int) -> None: ...
    def history(self, record: dict[str, Any]) -> None: ...


class NullLog:
    """Does nothing: for tests and for ranks that do not write."""

    def scalars(self, step: int, values: dict[str, float]) -> None:
        pass

    def image(self, tag: str, image: torch.Tensor, step: int) -> None:
        pass

    def text(self, tag: str, text: str, step: int) -> None:
        pass

    def history(self, record: dict[str, Any]) -> None:
        pass


class RunLog:
    """history.jsonl (one JSON line per logged step), train.log, and the trackers.

    Made before the run's state is known to be good, it touches nothing until `open`."""

    def __init__(self, log_dir: Path, trackers: list[Tracker] | None = None) -> None:
        self.log_dir = log_dir
        self.trackers = list(trackers or [])
        self.dropped: list[Tracker] = []  # failed mid-run: told how the run ended, if they can
        self.opened = False
        self._step = 0
        self._started = time.perf_counter()

    def open(self, start: RunStart) -> RunLog:
        log_dir = self.log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        truncate_history(log_dir / "history.jsonl", start.step)
        try:  # appended in place: never through a link, into a FIFO or a shared inode
            self._history = open(  # noqa: SIM115
                log_dir / "history.jsonl", "a", encoding="utf-8", opener=regular_opener
            )
            try:
                self._log_sink = logger.add(
                    log_dir / "train.log",
                    level="DEBUG",
                    format="{time:YYYY-MM-DD HH:mm:ss} {level} {message}",
                    opener=regular_opener,
                )
            except BaseException:
                self._history.close()
                raise
        except NotRegular as exc:
            raise GanError(
                f"{exc.filename} is not a regular file of this run alone ({exc.strerror}); "
                "move it away and resume (the checkpoints are untouched)."
            ) from None
        self.opened, self._step, self._started = True, start.step, time.perf_counter()
        try:
            self._open_trackers(start)
        except BaseException:
            self.close(None)
            raise
        return self

    def _open_trackers(self, start: RunStart) -> None:
        stored = read_ids(self.log_dir / IDS_FILE, start)
        opened: list[Tracker] = []
        try:
            for tracker in self.trackers:
                ids = stored.get(tracker.name)
                start.ids = dict(ids) if isinstance(ids, dict) else {}  # a mangled file: none
                try:
                    ids = tracker.open(start)
                except GanError:
                    raise
                except Exception as exc:  # noqa: BLE001 - a tracker never stops a run
                    _warn(tracker, "could not start", exc, start.step)
                    continue
                opened.append(tracker)
                if ids:
                    stored[tracker.name] = ids
        finally:
            self.trackers = opened  # only those opened are closed with the log
        if stored:
            text = json.dumps({**owner(start), **stored}, indent=2) + "\n"
            atomic_write(self.log_dir / IDS_FILE, text)

    def _each(self, call: str, step: int, *args: Any) -> None:
        for tracker in list(self.trackers):
            try:
                getattr(tracker, call)(*args)
            except Exception as exc:  # noqa: BLE001 - a tracker never stops a run
                self.trackers.remove(tracker)
                self.dropped.append(tracker)
                _warn(tracker, "failed", exc, step)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        self._step = step
        self._each("scalars", step, step, values)

    def image(self, tag: str, image: torch.Tensor, step: int) -> None:
        self._each("image", step, tag, image, step)

    def text(self, tag: str, text: str, step: int) -> None:
        self._each("text", step, tag, text, step)

    def history(self, record: dict[str, Any]) -> None:
        # json writes floats with repr(), i.e. full precision; NaN/inf become null.
        clean = {
            k: None if isinstance(v, float) and not math.isfinite(v) else v
            for k, v in record.items()
        }
        self._history.write(json.dumps(clean) + "\n")
        self._history.flush()

    def seconds(self) -> float:
        """Since this session's log was opened."""
        return time.perf_counter() - self._started

    def close(self, end: RunEnd | None) -> None:
        """Tell each tracker how the session ended (when known) and close everything."""
        if not self.opened:
            return
        self.opened = False
        end = end or RunEnd("failed", self._step, 0, None, None, 0.0, None)
        try:
            for tracker in self.trackers:
                try:
                    tracker.close(end)
                except Exception as exc:  # noqa: BLE001 - the run's own files are safe
                    _warn(tracker, "could not finish", exc, self._step)
            for tracker in self.dropped:  # once more, quietly: its run may still be marked
                with contextlib.suppress(Exception):
                    tracker.close(end)
        finally:
            self.trackers, self.dropped = [], []
            self._history.close()
            logger.remove(self._log_sink)


def _warn(tracker: Tracker, what: str, exc: Exception, step: int) -> None:
    from gan.config.tracking import redact  # a server's message may quote its address

    text = redact(str(exc).strip())
    reason = text.splitlines()[0][:200] if text else type(exc).__name__
    logger.warning(
        "Tracker {} {} at step {} ({}: {}); the run goes on without it, its checkpoints and "
        "history are unaffected.",
        tracker.name,
        what,
        step,
        type(exc).__name__,
        reason,
    )


def make_trackers(names: list[str], track: Any, workdir: Path, dataset: str) -> list[Tracker]:
    """The trackers by name, each checked now (installed, reachable): before any training."""
    from gan.config.catalog import TRACKERS

    return [TRACKERS[name].load()(track, workdir, dataset) for name in names]


def owner(start: RunStart) -> dict[str, str]:
    """Which run a trackers.json belongs to: its name and the workdir it was made in."""
    try:
        workdir = start.workdir.expanduser().resolve()
    except (OSError, RuntimeError):  # RuntimeError: a loop of links
        workdir = start.workdir.expanduser().absolute()
    return {"run": start.name, "workdir": str(workdir)}


def read_ids(path: Path, start: RunStart | None = None) -> dict[str, Any]:
    """trackers.json: each tracker's ids of this run ({} when missing or unreadable). With
    `start`, only when the file says it was made for that run in that workdir: a copy of a
    run (`cp -r`), or a file of an older gan that does not say, starts new tracker runs."""
    try:
        loaded = json.loads(read_regular(path).decode("utf-8"))  # no link, no FIFO
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(loaded, dict):
        return {}
    ids = {k: v for k, v in loaded.items() if isinstance(v, dict)}
    made_for = {k: loaded.get(k) for k in ("run", "workdir")}
    if start is None or not ids or made_for == owner(start):
        return ids
    if isinstance(made_for["run"], str) and isinstance(made_for["workdir"], str):
        whose = f"run {made_for['run'][:100]!r} in {made_for['workdir'][:300]!r}"
    else:
        whose = "a run it does not name (an older gan wrote it)"
    logger.warning(
        "{} holds the {} ids of {}, not of run {!r} in {}, so new tracker runs start (those "
        "of the other run are left as they were).",
        path,
        ", ".join(ids),
        whose,
        start.name,
        owner(start)["workdir"],
    )
    return {}


def picture(image: torch.Tensor) -> Any:
    """A C x H x W tensor in [0, 1] as a PIL image (grey for one channel)."""
    from PIL import Image

    array = image.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0)
    array = array.cpu().numpy()
    return Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)
