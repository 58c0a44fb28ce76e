"""`gan runs`: one summary per run of a workdir, from the files the run left behind.

Nothing here loads a checkpoint: run.json, history.jsonl, status.json and the eval
reports say everything, so listing a folder of large runs stays instant.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gan.checkpoint import step_files
from gan.outputs import RunPaths, is_locked
from gan.runs import ENDED, STATUS, read_status


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
    started: str | None
    seconds: float | None  # training wall time, over all sessions
    size_bytes: int
    checkpoint: str | None  # checkpoints/<run>/last.pt, or its newest step file
    reason: str | None  # why a failed run failed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _history(path: Path) -> list[dict[str, Any]]:
    records = []
    try:
        with path.open() as f:
            for line in f:
                try:
                    records.append(json.loads(line))
                except ValueError:  # a line cut short by a killed process
                    continue
    except OSError:
        pass
    return [r for r in records if isinstance(r, dict)]


def _size(*folders: Path) -> int:
    """Bytes on disk, each file once (a run's last.pt is a hard link to a step file)."""
    seen, total = set(), 0
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in folder.rglob("*"):
            try:
                info = path.lstat()
            except OSError:
                continue
            if path.is_file() and (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_size
    return total


def _fids(paths: RunPaths, history: list[dict[str, Any]]) -> tuple[float | None, float | None]:
    """Last and best FID: training's evaluations (--eval-every) and `gan evaluate`'s reports
    (logs/<run>/eval-<step>.json); at equal steps the report (more samples) counts as last."""
    found = [(int(r["step"]), 0, float(r["fid"])) for r in history if "fid" in r]
    for report in paths.logs.glob("eval-*.json"):
        result = _json(report)
        if isinstance(result.get("fid"), (int, float)) and isinstance(result.get("step"), int):
            found.append((result["step"], 1, float(result["fid"])))
    if not found:
        return None, None
    return max(found)[2], min(f for _, _, f in found)


def _status(paths: RunPaths, status: dict[str, Any], step: int, planned: int | None) -> str:
    if is_locked(paths.logs):
        return "training"
    recorded = status.get("status")
    if recorded in ENDED:
        return recorded
    if recorded == "training":
        return "killed"  # it said it was training, and no process holds the lock
    return "finished" if planned is not None and step >= planned > 0 else "unknown"


def _seconds(paths: RunPaths, status: dict[str, Any], state: str) -> float | None:
    if "seconds" in status and state != "training":
        return float(status["seconds"])
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
    return float(status.get("seconds_before", 0.0)) + max(end - began, 0.0)


def summarize(paths: RunPaths) -> RunSummary:
    info = _json(paths.logs / "run.json")
    status = read_status(paths.logs)
    history = _history(paths.logs / "history.jsonl")
    steps = step_files(paths.checkpoints)
    step = max([int(r.get("step", 0)) for r in history] + [s for s, _ in steps] + [0])
    planned = status.get("planned", info.get("total_steps"))
    last_fid, best_fid = _fids(paths, history)
    state = _status(paths, status, step, planned)
    last = paths.checkpoints / "last.pt"
    checkpoint = last if last.exists() else (steps[-1][1] if steps else None)
    return RunSummary(
        run=paths.name,
        status=state,
        dataset=(info.get("dataset") or {}).get("name"),
        model=(info.get("model") or {}).get("name"),
        step=step,
        planned=int(planned) if isinstance(planned, (int, float)) else None,
        last_fid=last_fid,
        best_fid=best_fid,
        started=status.get("started") or info.get("started"),
        seconds=_seconds(paths, status, state),
        size_bytes=_size(paths.checkpoints, paths.logs, paths.assets),
        checkpoint=str(checkpoint) if checkpoint else None,
        reason=status.get("reason") if state == "failed" else None,
    )


def list_runs(workdir: Path) -> list[RunSummary]:
    """Every run with a folder under logs/ or checkpoints/, oldest start first."""
    names = {
        d.name
        for parent in (workdir / "logs", workdir / "checkpoints")
        if parent.is_dir()
        for d in parent.iterdir()
        if d.is_dir() and not d.name.startswith(".")
    }
    paths = [RunPaths(workdir, name) for name in names]
    paths.sort(key=lambda p: (_started(p), p.name))
    return [summarize(p) for p in paths]


def _started(paths: RunPaths) -> float:
    """When the run first started (status.json), else when its folders were made."""
    started = read_status(paths.logs).get("started_unix")
    if isinstance(started, (int, float)):
        return float(started)
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
    header = ("RUN", "STATUS", "DATASET", "MODEL", "STEPS", "LAST FID", "BEST FID", "STARTED")
    header += ("TIME", "SIZE")
    rows = [header]
    for r in runs:
        steps = f"{r.step}/{r.planned}" if r.planned else str(r.step)
        fid = [f"{v:.2f}" if v is not None else "-" for v in (r.last_fid, r.best_fid)]
        started = (r.started or "-")[:16].replace("T", " ")
        rows.append(
            (r.run, r.status, r.dataset or "-", r.model or "-", steps, *fid, started)
            + (_duration(r.seconds), _size_text(r.size_bytes))
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
