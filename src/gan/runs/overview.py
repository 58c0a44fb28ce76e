"""`gan runs`: one summary per run of a workdir, from the files the run left behind.

Nothing here loads a checkpoint: run.json, history.jsonl, status.json and the eval
reports say everything, so listing a folder of large runs stays instant.
"""

from __future__ import annotations

import re
import stat
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gan.checkpoint import step_files
from gan.runs.folders import RunPaths, is_locked
from gan.runs.history import iter_history
from gan.runs.origin import from_text, init_from
from gan.runs.status import ENDED, STATUS, number, read_json, read_status
from gan.walk import tree_size


@dataclass
class RunSummary:
    run: str
    status: str  # training, finished, interrupted, killed, failed (unknown: an older gan's)
    dataset: str | None
    model: str | None
    step: int
    planned: int | None
    last_fid: float | None
    best_fid: float | None
    fid_features: str | None  # the one feature space of last_fid and best_fid
    fid_setting: dict[str, Any] | None  # their features, num_samples and data ("training")
    started: str | None
    seconds: float | None  # training wall time, over all sessions
    seconds_left: float | None  # a run training now: its planned steps left at its last rate
    size_bytes: int
    checkpoint: str | None  # checkpoints/<run>/last.pt, or its newest step file
    reason: str | None  # why a failed run failed
    init_from: dict[str, Any] | None = None  # --init-from's checkpoint: path, sha256, run, step

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Seen:
    """What `gan runs` keeps of a history, read a line at a time: never its records."""

    step: int = 0  # the largest whole step
    last: dict[str, Any] | None = None  # the last record with a whole step
    last_fid: tuple[int, float] | None = None  # (step, FID) of the latest FID
    best_fid: float | None = None


def _history(path: Path) -> Seen:
    """A record counts only with a whole-number step: the files may be hand-edited or
    foreign. Lines cut short by a killed process are skipped, quietly: listing is no
    resume."""
    seen = Seen()
    try:
        for record in iter_history(path, warn=False):
            step = _whole(record.get("step"))
            if step is None:
                continue
            seen.step, seen.last = max(seen.step, step), record
            fid = number(record.get("fid"))
            if fid is not None:
                seen.last_fid = max(seen.last_fid or (step, fid), (step, fid))
                seen.best_fid = fid if seen.best_fid is None else min(seen.best_fid, fid)
    except OSError:  # missing, or not a regular file (a link, a FIFO), or unreadable
        pass
    return seen


def _whole(value: Any) -> int | None:
    return value if type(value) is int and 0 <= value < 2**63 else None  # a step, a count


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _name(table: Any) -> str | None:
    return _text(table.get("name")) if isinstance(table, dict) else None


_FEATURE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")  # mnist-lenet, inception-<digest>: printable


def _trained_space(info: dict[str, Any]) -> str | None:
    """The feature space of training's FIDs: --eval-features, else the default for the
    run's image size (which `gan evaluate` also takes without --features)."""
    from gan.metrics import default_features

    train, model = info.get("train"), info.get("model")
    chosen = train.get("eval_features") if isinstance(train, dict) else None
    if isinstance(chosen, str):
        return chosen if _FEATURE_ID.match(chosen) else None
    shape = model.get("image_shape") if isinstance(model, dict) else None
    if isinstance(shape, list) and len(shape) == 3 and all(_whole(v) for v in shape):
        return default_features(tuple(shape))
    return None


def _reports(logs: Path) -> list[tuple[int, str, int, str, float]]:
    """(step, feature space, sample count, data digest, FID) of the run's `gan evaluate`
    reports (0 and "" where an older report does not say)."""
    found = []
    for report in sorted(logs.glob("eval-*.json")) if _real(logs) else []:
        result = read_json(report)
        step, fid = _whole(result.get("step")), number(result.get("fid"))
        features, data = _text(result.get("features")), _text(result.get("data_sha256"))
        count = _whole(result.get("num_samples")) or 0
        if step is not None and fid is not None and features and _FEATURE_ID.match(features):
            data = data[:16] if data and _FEATURE_ID.match(data) else ""
            found.append((step, features, count, data, fid))
    return found


def _fids(
    paths: RunPaths, info: dict[str, Any], seen: Seen
) -> tuple[float | None, float | None, dict[str, Any] | None]:
    """Last and best FID of one setting (one feature space, one sample count, one data:
    FIDs of two settings are not comparable), and that setting. Training's evaluations
    (--eval-every: its feature space, --eval-samples, its own data) where the history has
    any; else the reports (logs/<run>/eval-*.json) of the newest report's setting. A
    report never joins training's FIDs: it names its data by a digest that training does
    not record, so one of other data of the same size could not be told apart."""
    if seen.last_fid is not None:
        train = info.get("train") if isinstance(info.get("train"), dict) else {}
        count = _whole(train.get("eval_samples"))
        setting = {"features": _trained_space(info), "num_samples": count, "data": "training"}
        return seen.last_fid[1], seen.best_fid, setting
    reports = _reports(paths.logs)
    if not reports:
        return None, None, None
    key = max(reports)[1:4]
    same = [r for r in reports if r[1:4] == key]
    setting = {"features": key[0], "num_samples": key[1] or None, "data": key[2] or None}
    return max(same)[4], min(r[4] for r in same), setting


def _status(paths: RunPaths, status: dict[str, Any], step: int, planned: int | None) -> str:
    if is_locked(paths.logs):
        return "training"
    recorded = status.get("status")
    if isinstance(recorded, str) and recorded in ENDED:
        return recorded
    if recorded == "training":
        return "killed"  # it said it was training, and no process holds the lock
    return "finished" if planned is not None and step >= planned > 0 else "unknown"


def _seconds(paths: RunPaths, status: dict[str, Any], state: str) -> float | None:
    if number(status.get("seconds")) is not None and state != "training":
        return number(status["seconds"])
    if "session_started" not in status:
        return None
    try:
        began = time.mktime(time.strptime(status["session_started"], "%Y-%m-%dT%H:%M:%S%z"))
    except (TypeError, ValueError):
        return None
    end = time.time()
    if state == "killed":  # it last showed life when it last wrote its history
        latest = [p for p in (paths.logs / "history.jsonl", paths.logs / STATUS) if p.exists()]
        end = max(p.stat().st_mtime for p in latest)
    return (number(status.get("seconds_before")) or 0.0) + max(end - began, 0.0)


def _left(last: dict[str, Any] | None, info: dict[str, Any], planned: int | None):
    """The planned steps not yet trained, at the images/s of the last record."""
    per_step = _whole(info.get("images_per_step"))
    if last is None or planned is None or not per_step:
        return None
    rate = number(last.get("images_per_s"))
    if rate is None or rate <= 0:
        return None
    return max(planned - last["step"], 0) * per_step / rate


def _real(folder: Path) -> bool:
    """A folder itself, not a link to one: a run's files are never read through a link."""
    try:
        return stat.S_ISDIR(folder.lstat().st_mode)
    except OSError:
        return False


def summarize(paths: RunPaths) -> RunSummary:
    logs = _real(paths.logs)
    info = read_json(paths.logs / "run.json") if logs else {}
    status = read_status(paths.logs) if logs else {}
    seen = _history(paths.logs / "history.jsonl") if logs else Seen()
    steps = step_files(paths.checkpoints) if _real(paths.checkpoints) else []
    step = max([seen.step] + [s for s, _ in steps])
    planned = _whole(status.get("planned", info.get("total_steps")))
    last_fid, best_fid, setting = _fids(paths, info, seen)
    state = _status(paths, status, step, planned)
    last = paths.checkpoints / "last.pt"
    checkpoint = last if last.exists() else (steps[-1][1] if steps else None)
    return RunSummary(
        run=paths.name,
        status=state,
        dataset=_name(info.get("dataset")),
        model=_name(info.get("model")),
        step=step,
        planned=planned,
        last_fid=last_fid,
        best_fid=best_fid,
        fid_features=setting["features"] if setting else None,
        fid_setting=setting,
        started=_text(status.get("started")) or _text(info.get("started")),
        seconds=_seconds(paths, status, state),
        seconds_left=_left(seen.last, info, planned) if state == "training" else None,
        size_bytes=tree_size(
            [f for f in (paths.checkpoints, paths.logs, paths.assets) if _real(f)]
        ),
        checkpoint=str(checkpoint) if checkpoint else None,
        reason=_text(status.get("reason")) if state == "failed" else None,
        init_from=init_from(info.get("init_from")),
    )


def list_runs(workdir: Path) -> list[RunSummary]:
    """Every run with a folder under logs/ or checkpoints/, oldest start first."""
    names = {
        d.name
        for parent in (workdir / "logs", workdir / "checkpoints")
        if _real(parent)
        for d in parent.iterdir()
        if _real(d) and not d.name.startswith(".")
    }
    paths = [RunPaths(workdir, name) for name in names]
    paths.sort(key=lambda p: (_started(p), p.name))
    return [summarize(p) for p in paths]


def _started(paths: RunPaths) -> float:
    """When the run first started (status.json), else when its folders were made."""
    started = number(read_status(paths.logs).get("started_unix")) if _real(paths.logs) else None
    if started is not None:
        return started
    made = [p.stat().st_mtime for p in (paths.logs, paths.checkpoints) if p.exists()]
    return min(made, default=0.0)


def _size_text(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"  # pragma: no cover - the loop returns at GB


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def table(runs: list[RunSummary]) -> str:
    """The runs as aligned text columns, one line each."""
    header = ("RUN", "STATUS", "DATASET", "MODEL", "STEPS", "LAST FID", "BEST FID")
    header += ("FEATURES", "STARTED", "TIME", "LEFT", "SIZE", "FROM")
    rows = [header]
    for r in runs:
        steps = f"{r.step}/{r.planned}" if r.planned else str(r.step)
        fid = [f"{v:.2f}" if v is not None else "-" for v in (r.last_fid, r.best_fid)]
        started = (r.started or "-")[:16].replace("T", " ")
        rows.append(
            (r.run, r.status, r.dataset or "-", r.model or "-", steps, *fid)
            + (r.fid_features or "-", started)
            + (_duration(r.seconds), _duration(r.seconds_left), _size_text(r.size_bytes))
            + (from_text(r.init_from),)
        )
    return "\n".join(text_columns(rows))


def text_columns(rows: list[tuple[str, ...]], right_from: int | None = None) -> list[str]:
    """Rows of cells as aligned lines, two spaces apart; columns from `right_from` on are
    right-aligned (numbers)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    right = len(widths) if right_from is None else right_from
    return [
        "  ".join(
            cell.rjust(w) if i >= right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
