"""A real TensorBoard server on 127.0.0.1 reads a run back over its HTTP data API: the
scalars, the reals at step 0 and about ten sample grids, the configuration text, and the
HParams dashboard's options beside best and last FID."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import MNIST_1K, run_cli


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Board:
    def __init__(self, logdir: Path) -> None:
        self.port = free_port()
        command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host",
                   "127.0.0.1", "--port", str(self.port), "--reload_interval", "1"]  # fmt: skip
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def get(self, path: str):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
            return json.loads(r.read())

    def post(self, path: str, body: dict):
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as r:
            return json.loads(r.read())

    def wait_for(self, run: str, deadline: float = 90) -> None:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            assert self.proc.poll() is None, self.proc.stderr.read().decode()[-2000:]
            try:
                if run in self.get("/data/runs") and self.get("/data/plugin/text/tags"):
                    return
            except OSError:
                pass
            time.sleep(0.5)
        pytest.fail("TensorBoard did not list the run in time")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    work = tmp_path_factory.mktemp("board")
    result = run_cli("train", "--dataset", "mnist", "--data", MNIST_1K, "--model", "mlp",
                     "--device", "cpu", "--batch-size", "8", "--max-steps", "40", "--log-every",
                     "5", "--eval-every", "20", "--eval-samples", "64", "--run-name", "r",
                     "--lr-decay", "0.5", "--lr-g", "8e-4", cwd=work)  # fmt: skip
    assert result.returncode == 0, result.stderr
    server = Board(work / "logs")
    try:
        server.wait_for("r")
        yield server
    finally:
        server.stop()


def test_scalars_cover_losses_d_outputs_speed_rates_fid_and_augmentation(board):
    tags = set(board.get("/data/plugin/scalars/tags")["r"])
    assert {"loss/d", "loss/g", "prob/d_real", "prob/d_fake", "perf/images_per_s",
            "optim/lr_g", "optim/lr_d", "metrics/fid", "augment/p"} <= tags  # fmt: skip
    lr = board.get("/data/plugin/scalars/scalars?run=r&tag=optim/lr_g")
    steps = [step for _, step, _ in lr]
    assert steps == list(range(5, 45, 5))
    values = [value for _, _, value in lr]
    assert values[0] == pytest.approx(8e-4) and values[-1] < values[0] / 10  # --lr-decay
    fid = board.get("/data/plugin/scalars/scalars?run=r&tag=metrics/fid")
    assert [step for _, step, _ in fid] == [20, 40]


def test_images_show_the_reals_at_step_0_and_about_ten_grids(board):
    reals = board.get("/data/plugin/images/images?run=r&tag=reals")
    assert [entry["step"] for entry in reals] == [0]
    samples = board.get("/data/plugin/images/images?run=r&tag=samples")
    steps = [entry["step"] for entry in samples]  # --sample-every auto on a 40-step run
    # TensorBoard keeps a reservoir of grids per tag; a run this short keeps them all
    assert steps == list(range(4, 44, 4))
    blob = samples[-1]["query"]
    with urllib.request.urlopen(
        f"http://127.0.0.1:{board.port}/data/plugin/images/individualImage?{blob}", timeout=10
    ) as response:
        assert response.read()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_configuration_is_shown_as_text(board):
    text = board.get("/data/plugin/text/text?run=r&tag=config/text_summary")
    assert len(text) == 1 and text[0]["step"] == 0
    assert "[optim]" in text[0]["text"] and "lr_decay = 0.5" in text[0]["text"]


def test_hparams_show_the_options_beside_best_and_last_fid(board):
    experiment = board.post("/data/plugin/hparams/experiment", {"experimentName": ""})
    names = {info["name"] for info in experiment["hparamInfos"]}
    assert {"model.name", "optim.lr_g", "optim.batch_size", "train.seed"} <= names
    metrics = {m["name"]["tag"] for m in experiment["metricInfos"]}
    assert metrics == {"hparams/best_fid", "hparams/last_fid", "hparams/steps"}
    groups = board.post("/data/plugin/hparams/session_groups", {
        "experimentName": "", "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS",
        "STATUS_FAILURE", "STATUS_RUNNING"], "colParams": [], "startIndex": 0, "sliceSize": 10,
    })["sessionGroups"]  # fmt: skip
    assert len(groups) == 1
    group = groups[0]
    assert group["hparams"]["model.name"] == "mlp" and group["hparams"]["optim.lr_decay"] == 0.5
    values = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
    fids = board.get("/data/plugin/scalars/scalars?run=r&tag=metrics/fid")
    assert values["hparams/best_fid"] == pytest.approx(min(v for _, _, v in fids), rel=1e-6)
    assert values["hparams/last_fid"] == pytest.approx(fids[-1][2], rel=1e-6)
    assert values["hparams/steps"] == 40
