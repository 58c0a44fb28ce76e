"""`gan plot-history`: history.jsonl -> a PNG of D and G loss against step."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gan.atomic import atomic_file, is_regular
from gan.errors import GanError
from gan.runs.guard import check_folders
from gan.runs.history import read_history

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


def _finite(value: object) -> bool:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return ok and math.isfinite(value)  # type: ignore[arg-type]


def history_figure(history: Path, smoothing: int = 1) -> Figure:
    """The figure `plot-history` saves: D and G loss against step (each also raw, faint,
    under its moving average when smoothing), and FID below where the history has it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        records = [r for r in read_history(history) if _finite(r.get("step"))]
    except OSError as exc:
        raise GanError(
            f"Cannot read {history} ({exc.strerror or exc}); give a run's history.jsonl."
        ) from None
    if not records:
        raise GanError(f"{history} holds no logged steps yet; train longer or check the path.")
    steps = np.array([r["step"] for r in records], dtype=float)
    series = {  # a value that is not a number (null for NaN, or foreign) is a gap
        label: np.array([r.get(key) if _finite(r.get(key)) else np.nan for r in records], float)
        for label, key in (("D loss", "d_loss"), ("G loss", "g_loss"))
    }
    fid = [(r["step"], r["fid"]) for r in records if _finite(r.get("fid"))]
    if fid:
        fig, (ax, ax_fid) = plt.subplots(
            2, 1, figsize=(8, 6.5), dpi=120, sharex=True, height_ratios=(2, 1)
        )
        ax_fid.plot(*zip(*fid, strict=True), marker="o", color="tab:green", label="FID")
        ax_fid.set_ylabel("FID")
        ax_fid.set_xlabel("step")
        ax_fid.grid(alpha=0.3)
        best = min(fid, key=lambda p: p[1])
        ax_fid.annotate(f"best {best[1]:.3g}", best, textcoords="offset points", xytext=(4, 6))
    else:
        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    for (label, values), color in zip(series.items(), ("tab:blue", "tab:orange"), strict=True):
        if smoothing > 1:  # a leading underscore keeps the raw curve out of the legend
            ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.8, label=f"_{label} raw")
        ax.plot(steps, smooth(values, smoothing), color=color, label=label, linewidth=1.6)
    ax.set_ylim(*steady_limits(*series.values()))
    ax.set_xlim(0, max(steps.max(), 1))
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    title = history.parent.name + (
        f" (moving average over {smoothing} logs)" if smoothing > 1 else ""
    )
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
