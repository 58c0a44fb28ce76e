"""Screenshots of the MLflow UI for docs/tracking.md: a run's metrics charts and a sample
grid among its artifacts, into assets/tracking/.

    uv run mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db --port 5055 &
    uv run --with playwright python scripts/mlflow_screenshots.py http://127.0.0.1:5055 \\
        EXPERIMENT_ID RUN_ID grids/samples-0001200.png

MLflow's charts render only in real time, which Chromium's --screenshot does not wait
for, so this drives the system's Chromium (apt-get install chromium) with Playwright.
Not part of CI.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

OUT = Path(__file__).resolve().parents[1] / "assets" / "tracking"


def close_assistant(page) -> None:
    with contextlib.suppress(Exception):  # older UIs have no assistant panel
        page.get_by_role("button", name="Close").first.click(timeout=3000)
    time.sleep(2)


def save(page, name: str) -> None:
    path = OUT / name
    page.screenshot(path=str(path))
    with Image.open(path) as image:  # 256 colours: the UI stays legible at half the size
        paletted = image.convert("RGB").quantize(256, Image.Quantize.MEDIANCUT)
    paletted.save(path, optimize=True)
    print(path, path.stat().st_size)


def main() -> None:
    server, experiment, run, grid = sys.argv[1:5]
    base = f"{server.rstrip('/')}/#/experiments/{experiment}/runs/{run}"
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1300})
        page.goto(base + "/model-metrics")
        time.sleep(8)
        close_assistant(page)
        save(page, "mlflow-metrics.png")
        page.goto(f"{base}/artifacts/{grid}")
        time.sleep(6)
        close_assistant(page)
        page.set_viewport_size({"width": 1400, "height": 700})
        save(page, "mlflow-artifacts.png")
        browser.close()


if __name__ == "__main__":
    main()
