"""Headless-Chromium screenshots of TensorBoard's Scalars, Images and HParams dashboards
for docs/ (not part of CI).

    uv run python scripts/tensorboard_screenshots.py [LOGDIR] [--out assets/tensorboard]

LOGDIR defaults to ./logs (run `gan train` first; a run with --eval-every shows FID in
the HParams table). Chromium comes from Debian's packages: when no `chromium` is on the
PATH, the script runs `apt-get install -y chromium` (as root, or through sudo).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image

DASHBOARDS = {  # file name -> TensorBoard's URL fragment, window WIDTH,HEIGHT
    "scalars": ("#scalars&_smoothingWeight=0&tagFilter=loss%7Cmetrics%7Coptim", "1400,1060"),
    "images": ("#images", "1400,1400"),  # reals and the last sample grids
    "hparams": ("#hparams", "1900,600"),  # wide enough for the metric columns
}


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    print("Installing chromium from the Debian packages...", file=sys.stderr)
    subprocess.run([*sudo, "apt-get", "update", "-q"], check=True)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-q", "chromium"], check=True)
    return shutil.which("chromium") or sys.exit("apt-get installed no chromium binary.")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_tensorboard(logdir: Path, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host",
               "127.0.0.1", "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs", timeout=5) as r:
                if r.read() not in (b"[]", b""):
                    return proc
        except OSError:
            pass
        time.sleep(0.5)
    proc.kill()
    sys.exit(f"TensorBoard found no runs under {logdir} within 60 s.")


def screenshot(browser: str, url: str, out: Path, size: str) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                browser,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--window-size={size}",
                "--virtual-time-budget=15000",
                f"--screenshot={out}",
                url,
            ],  # fmt: skip
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )
    # A 256-colour palette keeps the UI legible at about half the size of Chromium's PNG.
    with Image.open(out) as image:
        paletted = image.convert("RGB").quantize(
            256, Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
    paletted.save(out, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logdir", nargs="?", type=Path, default=Path("logs"))
    parser.add_argument("--out", type=Path, default=Path("assets/tensorboard"))
    parser.add_argument("--size", help="window size WIDTH,HEIGHT (default: per dashboard)")
    args = parser.parse_args()
    browser = chromium()
    port = free_port()
    board = start_tensorboard(args.logdir, port)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        for name, (fragment, size) in DASHBOARDS.items():
            out = args.out / f"{name}.png"
            url = f"http://127.0.0.1:{port}/{fragment}"
            screenshot(browser, url, out.resolve(), args.size or size)
            print(out)
    finally:
        board.terminate()
        board.wait(timeout=20)


if __name__ == "__main__":
    main()
