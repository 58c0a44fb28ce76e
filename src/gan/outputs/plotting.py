"""`gan plot-history`: history.jsonl -> a PNG of D and G loss against step."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gan.atomic import atomic_file, is_regular
from gan.errors import GanError
from gan.runs.guard import check_folders
from gan.runs.history import iter_history
from gan.runs.status import number

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def find_history(target: Path | None, workdir: Path) -> Path:
    """Accept a run folder, a history.jsonl, or nothing (the newest run under logs/)."""
    if target is None:
        logs = workdir / "logs"
        found = [p for p in logs.glob("*/history.jsonl") if is_regular(p)]  # no FIFO, no link
        runs = sorted(found, key=lambda p: p.stat().st_mtime)
        if not runs:
            raise GanError(
                f"No runs with a history.jsonl under {logs}; train first or give a path."
            )
        return runs[-1]
    if target.is_dir():
        target = target / "history.jsonl"
    if not target.exists():
        raise GanError(
            f"{target} does not exist; give a run folder under logs/ or a history.jsonl."
        )
    if not is_regular(target):
        raise GanError(
            f"{target} is not a regular file (a link, a FIFO or a folder); give a run folder "
            "under logs/ or a history.jsonl."
        )
    return target


def default_out(history: Path) -> Path:
    """The run's own assets/<run>/losses.png beside its logs/<run>/history.jsonl, wherever
    the command runs; ./assets/<run>/ for a history kept outside a workdir."""
    run = history.parent
    if run.parent.name == "logs":
        assets = run.parent.parent / "assets" / run.name
        check_folders(run.parent.parent, (assets,), "give --out")  # no link, nowhere else
        return assets / "losses.png"
    return Path("assets") / run.name / "losses.png"


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average that keeps the first points (shorter windows there)."""
    if window <= 1 or len(values) < 2:
        return values
    cumsum = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(0, idx - window)
    return (cumsum[idx] - cumsum[lo]) / (idx - lo)


def steady_limits(*series: np.ndarray) -> tuple[float, float]:
    """Y limits from the 1st-99th percentiles, so one early spike does not flatten the curve."""
    values = np.concatenate([s[np.isfinite(s)] for s in series])
    lo, hi = np.percentile(values, [1, 99]) if len(values) else (0.0, 1.0)
    pad = 0.1 * (hi - lo) or 0.1
    return max(0.0, lo - pad) if lo >= 0 else lo - pad, hi + pad


MAX_POINTS = 10_000  # points a curve keeps: a plot is ~1,000 pixels wide


class Points:
    """Rows of (step, values...) of at most 2 x MAX_POINTS points, whatever the count of
    records: past that, neighbouring points are averaged in pairs (a NaN is a gap, left
    out of its mean) and later records in buckets of as many as a point now holds."""

    def __init__(self, width: int) -> None:
        self.rows: list[tuple[float, ...]] = []
        self.size = 1  # records a point averages
        self.sums, self.counts, self.pending = [0.0] * width, [0] * width, 0

    def add(self, row: tuple[float, ...]) -> None:
        if self.size == 1:
            self.rows.append(row)
        else:
            for i, value in enumerate(row):
                if value == value:  # not NaN
                    self.sums[i] += value
                    self.counts[i] += 1
            self.pending += 1
            if self.pending == self.size:
                self.rows.append(self._flush())
        if len(self.rows) >= 2 * MAX_POINTS:
            pairs = np.array(self.rows, dtype=float).reshape(MAX_POINTS, 2, -1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: a gap, NaN
                self.rows = [tuple(row) for row in np.nanmean(pairs, axis=1)]
            self.size *= 2

    def _flush(self) -> tuple[float, ...]:
        row = tuple(s / c if c else math.nan for s, c in zip(self.sums, self.counts, strict=True))
        self.sums, self.counts = [0.0] * len(row), [0] * len(row)
        self.pending = 0
        return row

    def array(self) -> np.ndarray:
        """The points as an N x width array (the records not yet a whole bucket: one)."""
        rows = self.rows + ([self._flush()] if self.pending else [])
        return np.array(rows, dtype=float).reshape(-1, len(self.sums))


def _gap(value: object) -> float:
    """A value read back from a history as a float; NaN (a gap) where it is none: text,
    null, NaN, an integer beyond a float (`gan.runs.status.number`, as `gan runs` reads)."""
    found = number(value)
    return math.nan if found is None else found


def read_points(history: Path) -> tuple[np.ndarray, np.ndarray, tuple[float, float] | None, int]:
    """(step, D loss, G loss) rows, (step, FID) rows, the best (step, FID), and how many
    logged records a point averages; streamed, so a history of any length holds at most
    `MAX_POINTS`-ish points."""
    losses, fids, best = Points(3), Points(2), None
    try:
        for record in iter_history(history):
            step = number(record.get("step"))
            if step is None:
                continue
            losses.add((step, _gap(record.get("d_loss")), _gap(record.get("g_loss"))))
            fid = number(record.get("fid"))
            if fid is not None:
                fids.add((step, fid))
                best = (step, fid) if best is None or fid < best[1] else best
    except OSError as exc:
        raise GanError(
            f"Cannot read {history} ({exc.strerror or exc}); give a run's history.jsonl."
        ) from None
    return losses.array(), fids.array(), best, losses.size


def history_figure(history: Path, smoothing: int = 1) -> Figure:
    """The figure `plot-history` saves: D and G loss against step (each also raw, faint,
    under its moving average when smoothing), and FID below where the history has it. A
    history of more records than `MAX_POINTS` is plotted in averages of as many records."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    losses, fid, best, per_point = read_points(history)
    if not len(losses):
        raise GanError(f"{history} holds no logged steps yet; train longer or check the path.")
    steps = losses[:, 0]
    series = {"D loss": losses[:, 1], "G loss": losses[:, 2]}  # NaN: a gap
    window = max(1, round(smoothing / per_point))
    if best is not None:
        fig, (ax, ax_fid) = plt.subplots(
            2, 1, figsize=(8, 6.5), dpi=120, sharex=True, height_ratios=(2, 1)
        )
        marker = "o" if len(fid) <= 200 else None
        ax_fid.plot(fid[:, 0], fid[:, 1], marker=marker, color="tab:green", label="FID")
        ax_fid.set_ylabel("FID")
        ax_fid.set_xlabel("step")
        ax_fid.grid(alpha=0.3)
        ax_fid.annotate(f"best {best[1]:.3g}", best, textcoords="offset points", xytext=(4, 6))
    else:
        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    for (label, values), color in zip(series.items(), ("tab:blue", "tab:orange"), strict=True):
        if window > 1:  # a leading underscore keeps the raw curve out of the legend
            ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.8, label=f"_{label} raw")
        ax.plot(steps, smooth(values, window), color=color, label=label, linewidth=1.6)
    ax.set_ylim(*steady_limits(*series.values()))
    ax.set_xlim(0, max(steps.max(), 1))
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    title = history.parent.name + (
        f" (moving average over {smoothing} logs)" if smoothing > 1 else ""
    )
    title += f" (a point: the mean of {per_point} logs)" if per_point > 1 else ""
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
    fig.tight_layout()
    return fig


def plot_history(history: Path, out: Path, smoothing: int = 1) -> Path:
    fig = history_figure(history, smoothing)
    import matplotlib.pyplot as plt  # after history_figure chose the Agg backend

    try:  # written whole and renamed: a link or FIFO at `out` is replaced, not written into
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(out, durable=False) as f:
            fig.savefig(f, format=out.suffix[1:].lower() or "png")
    except OSError as exc:
        raise GanError(
            f"Could not write {out} ({exc.strerror or exc}); choose another --out."
        ) from None
    except ValueError:  # a format matplotlib does not write
        raise GanError(
            f"Cannot write a plot as {out.name}; give --out a .png, .pdf or .svg name."
        ) from None
    finally:
        plt.close(fig)
    return out
