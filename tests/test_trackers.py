"""Experiment trackers beside TensorBoard: W&B offline, read back with W&B's own reader of
its run files; MLflow against a real `mlflow server` on 127.0.0.1, read back with
MlflowClient; a tracker that fails mid-run; the one-sentence errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch
from loguru import logger

from gan.checkpoint import load_checkpoint
from gan.config import Config
from gan.training.records import hparam_values
from tests.conftest import MNIST_1K, error_lines, run_cli

TINY = dict(dataset="mnist", data=str(MNIST_1K), device="cpu", batch_size=32, log_every=5,
            checkpoint_every=10, sample_every=10, run_name="r")  # fmt: skip
EXTRAS = "install the trackers extra: uv sync --extra trackers"


def _installed(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


needs_wandb = pytest.mark.skipif(not _installed("wandb"), reason=f"wandb missing; {EXTRAS}")
needs_mlflow = pytest.mark.skipif(not _installed("mlflow"), reason=f"mlflow missing; {EXTRAS}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- a tracker that fails in the middle of a run ------------------------------------------


class Faulty:
    """A tracker that works until step 10, then raises on every call."""

    name = "faulty"
    calls: list[tuple[str, int]] = []

    def __init__(self, track, workdir, dataset) -> None:
        pass

    def open(self, start):
        return None

    def scalars(self, step, values):
        Faulty.calls.append(("scalars", step))
        if step >= 10:
            raise ConnectionError("the tracking server went away")

    def image(self, tag, image, step):
        Faulty.calls.append(("image", step))

    def text(self, tag, text, step):
        pass

    def close(self, end):
        Faulty.calls.append(("close", end.step))


def test_a_tracker_failing_mid_run_is_one_warning_and_the_run_finishes(tmp_path, monkeypatch):
    import gan
    from gan.config import catalog

    monkeypatch.setitem(catalog.TRACKERS, "faulty", catalog.Entry("test", f"{__name__}:Faulty"))
    Faulty.calls = []
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(str(m)), level="WARNING", format="{message}")
    try:
        result = gan.train(
            **TINY, max_steps=30, workdir=str(tmp_path), tracker="tensorboard,faulty"
        )
    finally:
        logger.remove(sink)
    assert result.step == 30 and not result.interrupted
    failed = [w for w in warnings if "Tracker faulty" in w]
    assert len(failed) == 1, warnings
    assert "failed at step 10" in failed[0] and "ConnectionError" in failed[0]
    # Dropped: called no more, but told at the end how the run ended.
    assert max(step for call, step in Faulty.calls if call != "close") == 10
    assert Faulty.calls[-1] == ("close", 30)
    for name in ("step-0000010.pt", "step-0000020.pt", "step-0000030.pt", "last.pt"):
        assert load_checkpoint(tmp_path / "checkpoints" / "r" / name)["step"] > 0
    logs = tmp_path / "logs" / "r"
    history = [json.loads(line)["step"] for line in (logs / "history.jsonl").open()]
    assert history == [5, 10, 15, 20, 25, 30]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(logs)).Reload()
    assert [e.step for e in events.Scalars("loss/d")] == history  # TensorBoard went on


def test_a_mangled_trackers_json_starts_new_tracker_runs(tmp_path):
    from gan.runs.tracking import RunLog, RunStart

    seen = []

    class Remembers(Faulty):
        name = "remembers"

        def open(self, start):
            seen.append(start.ids)
            return {"id": "new"}

    logs = tmp_path / "logs"
    logs.mkdir()
    own = json.dumps({"run": "r", "workdir": str(tmp_path.resolve())})[1:-1]
    for text in ('{"remembers": "x"}', "[1, 2]", "not json", '{"remembers": {"id": "old"}}',
                 f'{{{own}, "remembers": {{"id": "old"}}}}'):  # fmt: skip
        (logs / "trackers.json").write_text(text)
        start = RunStart("r", logs, tmp_path, 0, {}, {}, "", {})
        RunLog(logs, [Remembers(None, tmp_path, "mnist")]).open(start).close(None)
        assert json.loads((logs / "trackers.json").read_text())["remembers"] == {"id": "new"}
    # Only a file that names this run and workdir is continued (an older gan's does not).
    assert seen == [{}, {}, {}, {}, {"id": "old"}]


@pytest.mark.parametrize(
    ("run", "workdir", "why"),
    [
        ("a", None, "run 'a'"),  # cp -r logs/a logs/r
        ("r", "elsewhere", "elsewhere"),  # a workdir copied to another place
        (None, None, "does not name"),  # an older gan's file: it may be a copy too
    ],
    ids=["other-run", "other-workdir", "old-format"],
)
def test_trackers_json_of_another_run_starts_new_tracker_runs_and_says_so(
    tmp_path, run, workdir, why
):
    from gan.runs.tracking import RunLog, RunStart

    seen = []

    class Remembers(Faulty):
        name = "remembers"

        def open(self, start):
            seen.append(start.ids)
            return {"id": "new"}

    logs = tmp_path / "logs" / "r"
    logs.mkdir(parents=True)
    made_for = {} if run is None else {"run": run, "workdir": str(tmp_path / (workdir or ""))}
    (logs / "trackers.json").write_text(json.dumps({**made_for, "remembers": {"id": "old"}}))
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(str(m)), level="WARNING", format="{message}")
    try:
        start = RunStart("r", logs, tmp_path, 3, {}, {}, "", {})
        RunLog(logs, [Remembers(None, tmp_path, "mnist")]).open(start).close(None)
    finally:
        logger.remove(sink)
    assert seen == [{}]
    (line,) = warnings
    assert "new tracker runs start" in line and why in line and "remembers" in line
    written = json.loads((logs / "trackers.json").read_text())
    assert written == {"run": "r", "workdir": str(tmp_path.resolve()), "remembers": {"id": "new"}}


# ---- choosing trackers: the one-sentence errors ---------------------------------------------


def test_unknown_tracker_and_missing_package_are_one_sentence(tmp_path, monkeypatch):
    result = run_cli("train", "--dataset", "mnist", "--data", MNIST_1K, "--tracker",
                     "wandb,neptune", "--workdir", tmp_path, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2  # a usage error
    assert "is not none or a list of tensorboard, wandb, mlflow" in result.stderr

    import gan
    from gan.errors import GanError

    for package, extra in (("wandb", "wandb"), ("mlflow", "mlflow")):
        monkeypatch.setitem(sys.modules, package, None)  # as if not installed
        with pytest.raises(GanError, match=rf"uv sync --extra {extra}") as caught:
            gan.train(**TINY, max_steps=2, workdir=str(tmp_path), tracker=f"tensorboard,{package}")
        assert str(caught.value).count(". ") == 0  # one sentence
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "logs").exists()


def test_gan_help_imports_no_tracker():
    code = (
        "import sys\nfrom gan.cli import app\n"
        "bad = [m for m in ('wandb', 'mlflow', 'torch') if m in sys.modules]\nassert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_none_writes_no_events_but_keeps_history(tmp_path):
    import gan

    gan.train(**TINY, max_steps=10, workdir=str(tmp_path), tracker="none")
    logs = tmp_path / "logs" / "r"
    assert not list(logs.glob("events.out.tfevents.*"))
    assert [json.loads(line)["step"] for line in (logs / "history.jsonl").open()] == [5, 10]


# ---- W&B, offline --------------------------------------------------------------------------


def _wandb_records(run_dir: Path) -> list[dict]:
    """The records of an offline run's .wandb file, as W&B's own reader prints them."""
    out = subprocess.run(
        [sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(run_dir)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def _history(records: list[dict]) -> list[dict]:
    return [r["history"]["item"] for r in records if r["type"] == "history"]


@needs_wandb
def test_wandb_offline_run_resumes_the_same_run_after_sigint(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env |= {"HOME": str(tmp_path / "home"), "NETRC": str(tmp_path / "no-netrc"),
            "PYTHONUNBUFFERED": "1"}  # fmt: skip
    base = [sys.executable, "-m", "gan", "train", "--dataset", "mnist", "--data", str(MNIST_1K),
            "--device", "cpu", "--batch-size", "32", "--log-every", "5", "--checkpoint-every",
            "5", "--sample-every", "20", "--max-steps", "40", "--workdir", str(tmp_path),
            "--run-name", "r", "--tracker", "tensorboard,wandb"]  # fmt: skip
    proc = subprocess.Popen(base, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=tmp_path)  # fmt: skip
    history = tmp_path / "logs" / "r" / "history.jsonl"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        if history.exists() and len(history.read_text().splitlines()) >= 2:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0 and "Stopped run r" in out, err
    assert "logged offline" in err and "wandb sync" in err
    stopped = load_checkpoint(tmp_path / "checkpoints" / "r" / "last.pt")["step"]
    assert 10 <= stopped < 40

    resumed = subprocess.run([*base, "--resume", "auto"], capture_output=True, text=True,
                             env=env, cwd=tmp_path, timeout=300)  # fmt: skip
    assert resumed.returncode == 0 and "Finished run r at step 40" in resumed.stdout, resumed.stderr

    run_id = json.loads((tmp_path / "logs" / "r" / "trackers.json").read_text())["wandb"]["id"]
    assert run_id.startswith("r-")
    runs = sorted((tmp_path / "logs" / "r" / "wandb").glob("offline-run-*"))
    assert [p.name.endswith(f"-{run_id}") for p in runs] == [True, True]  # one W&B run, twice
    first, second = (_wandb_records(p) for p in runs)
    (run,) = [r["run"] for r in first if r["type"] == "run"]
    assert run["run_id"] == run_id and run["display_name"] == "r" and run["project"] == "gan"
    config = {k: v for k, v in run["config"]["update"].items() if not k.startswith("_")}
    assert set(config) == {"data", "model", "optim", "train", "track"}  # the resolved config

    def losses(records):
        return [row["_step"] for row in _history(records) if "loss/d" in row]

    assert losses(first)[-1] == stopped and max(losses(first)) == stopped
    assert losses(first) + losses(second) == sorted(set(losses(first) + losses(second)))
    assert sorted(set(losses(first) + losses(second)) - {stopped}) == [
        s for s in range(5, 41, 5) if s != stopped
    ]
    expected = json.loads(history.read_text().splitlines()[-1])
    (last,) = [row for row in _history(second) if row["_step"] == 40 and "loss/d" in row]
    assert last["loss/d"] == pytest.approx(expected["d_loss"])
    grids = {(k.split(".")[0], row["_step"]) for row in _history(first + second)
             for k in row if k.endswith("._type") and row[k] == "image-file"}  # fmt: skip
    assert ("reals", 0) in grids and ("samples", 40) in grids
    media = [row[k] for row in _history(second) for k in row if k == "samples.path"]
    assert media and all((runs[1] / "files" / p).is_file() for p in media)
    exits = [r["exit"]["exit_code"] for r in first + second if r["type"] == "exit"]
    assert exits == [255, 0]  # interrupted, then finished
    summary = {}
    for r in second:
        if r["type"] == "summary":
            summary |= r["summary"]["update"]
    assert summary["status"] == "finished" and summary["hparams/steps"] == 40


@needs_wandb
def test_wandb_server_that_does_not_answer_means_offline(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env |= {"HOME": str(tmp_path / "home"), "WANDB_API_KEY": "a" * 40,
            "WANDB_INIT_TIMEOUT": "3", "WANDB_BASE_URL": f"http://127.0.0.1:{_free_port()}",
            "PYTHONUNBUFFERED": "1"}  # fmt: skip
    cmd = [sys.executable, "-m", "gan", "train", "--dataset", "mnist", "--data", str(MNIST_1K),
           "--device", "cpu", "--batch-size", "32", "--max-steps", "10", "--log-every", "5",
           "--workdir", str(tmp_path), "--run-name", "r", "--tracker",
           "tensorboard,wandb"]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0 and "Finished run r at step 10" in result.stdout, result.stderr
    assert "the W&B server did not answer" in result.stderr and "wandb sync" in result.stderr
    (offline,) = (tmp_path / "logs" / "r" / "wandb").glob("offline-run-*")
    steps = [row["_step"] for row in _history(_wandb_records(offline)) if "loss/d" in row]
    assert steps == [5, 10]


@needs_wandb
def test_wandb_mode_disabled_sends_nothing_and_warns_nothing(tmp_path, monkeypatch):
    import gan

    monkeypatch.setenv("WANDB_MODE", "disabled")
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(str(m)), level="WARNING", format="{message}")
    try:
        result = gan.train(**TINY, max_steps=10, workdir=str(tmp_path), tracker="tensorboard,wandb")
    finally:
        logger.remove(sink)
    assert result.step == 10 and not [w for w in warnings if "Tracker" in w or "W&B" in w]
    assert not (tmp_path / "logs" / "r" / "wandb").exists()


# ---- what a workdir holds chooses nowhere a tracker writes -------------------------------------


def _plant(work: Path, case: str, target: Path) -> None:
    """What a tarball or a shared workdir could hold where a tracker writes."""
    if case == "wandb folder link":
        (work / "logs" / "r").mkdir(parents=True)
        (work / "logs" / "r" / "wandb").symlink_to(target, target_is_directory=True)
    elif case == "wandb run folder link":  # a resumed run's id is in its trackers.json
        (work / "logs" / "r" / "wandb").mkdir(parents=True)
        ours = work / "logs" / "r" / "wandb" / "latest-run"  # W&B's own: replaced, allowed
        ours.symlink_to("offline-run-20261207_120000-r-0a1b2c", target_is_directory=True)
        run = (
            work / "logs" / "r" / "wandb" / f"offline-run-{time.strftime('%Y%m%d_%H%M%S')}-r-0a1b2c"
        )
        run.symlink_to(target, target_is_directory=True)
    elif case == "mlruns link":
        (work / "mlruns").symlink_to(target, target_is_directory=True)
    elif case in ("mlflow.db link", "mlflow.db hard link", "artifacts link"):
        (work / "mlruns").mkdir()
        precious = target / "precious"
        precious.write_bytes(b"not a database")
        name = "artifacts" if case == "artifacts link" else "mlflow.db"
        link = os.link if case == "mlflow.db hard link" else os.symlink
        link(target if name == "artifacts" else precious, work / "mlruns" / name)
    else:  # a store whose experiment keeps its artifacts elsewhere
        from mlflow import MlflowClient

        (work / "mlruns").mkdir()
        client = MlflowClient(tracking_uri=f"sqlite:///{work / 'mlruns' / 'mlflow.db'}")
        client.create_experiment("mnist", artifact_location=target.as_uri())


@needs_mlflow
@needs_wandb
@pytest.mark.parametrize("case", ["wandb folder link", "wandb run folder link", "mlruns link",
                                  "mlflow.db link", "mlflow.db hard link", "artifacts link",
                                  "experiment artifacts elsewhere"])  # fmt: skip
def test_a_tracker_follows_nothing_a_workdir_holds_out_of_it(tmp_path, monkeypatch, case):
    """W&B's logs/<run>/wandb, the default MLflow store's mlruns/ (its database, written in
    place, and its artifacts) and the artifact location its experiments name: anything there
    that leads elsewhere is one sentence before training, and is written through nowhere."""
    for key in [k for k in os.environ if k.startswith("WANDB_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    work, target = tmp_path / "w", tmp_path / "elsewhere"
    work.mkdir()
    target.mkdir()
    _plant(work, case, target)
    before = sorted(p.name for p in target.iterdir())
    tracker = "wandb" if case.startswith("wandb") else "mlflow"
    done = run_cli("train", "--dataset", "mnist", "--data", MNIST_1K, "--max-steps", "2",
                   "--batch-size", "8", "--device", "cpu", "--run-name", "r", "--tracker",
                   tracker, "--workdir", work, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1 and len(error_lines(done)) == 1, done.stderr
    assert "so nothing was trained" in error_lines(done)[0]
    assert sorted(p.name for p in target.iterdir()) == before
    if (target / "precious").exists():
        assert (target / "precious").read_bytes() == b"not a database"


def test_tensorboard_event_files_have_names_no_one_can_plant_a_link_at(tmp_path):
    """SummaryWriter opens its event file by a name of time, host, pid and a counter,
    truncating whatever is there: a random tail makes it a name nobody could plant."""
    from tensorboard.summary.writer import event_file_writer

    precious = tmp_path / "precious"
    precious.write_bytes(b"another run's file")
    logs = tmp_path / "logs" / "r"
    logs.mkdir(parents=True)
    now, host, pid = int(time.time()), socket.gethostname(), os.getpid()
    uid = event_file_writer._global_uid._value  # the next writer's number in this process
    for second in range(now - 2, now + 60):
        for n in range(uid, uid + 4):
            (logs / f"events.out.tfevents.{second:010d}.{host}.{pid}.{n}").symlink_to(precious)
    done = run_cli("train", "--dataset", "mnist", "--data", MNIST_1K, "--max-steps", "2",
                   "--batch-size", "8", "--device", "cpu", "--run-name", "r", "--workdir",
                   tmp_path, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert precious.read_bytes() == b"another run's file"
    assert [p for p in logs.glob("events.out.tfevents.*") if not p.is_symlink()]


# ---- MLflow, a real server --------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """`mlflow server` on 127.0.0.1 with a SQLite backend and served artifacts."""
    root = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
           "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination",
           str(root / "artifacts"), "--workers", "1"]  # fmt: skip
    log = open(root / "server.log", "w")  # noqa: SIM115
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(uri + "/health", timeout=2).close()
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail(f"mlflow server did not start: {(root / 'server.log').read_text()}")
            time.sleep(0.5)
    yield uri
    server.terminate()
    server.wait(timeout=30)
    log.close()


@needs_mlflow
def test_mlflow_server_receives_the_run_and_a_resume_continues_it(tmp_path, mlflow_server):
    from mlflow import MlflowClient

    import gan

    work = str(tmp_path)
    opts = {
        **TINY,
        "tracker": "mlflow",
        "mlflow_uri": mlflow_server,
        "workdir": work,
        "mlflow_experiment": "gan-test",
    }  # given again on resume: never from the checkpoint
    gan.train(**opts, max_steps=20, stop_at=10)
    ids = json.loads((tmp_path / "logs" / "r" / "trackers.json").read_text())["mlflow"]
    client = MlflowClient(tracking_uri=mlflow_server)
    run = client.get_run(ids["run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["gan.status"] == "finished"
    first = Config.from_dict(load_checkpoint(tmp_path / "checkpoints/r/step-0000010.pt")["config"])
    assert run.data.params == {k: str(v) for k, v in hparam_values(first).items()}

    gan.train(**opts, max_steps=20, resume="auto", tracker_artifacts=True)
    assert json.loads((tmp_path / "logs/r/trackers.json").read_text())["mlflow"] == ids
    experiment = client.get_experiment_by_name("gan-test")
    (run,) = client.search_runs([experiment.experiment_id])  # the same run, continued
    assert run.info.run_id == ids["run_id"] and run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags["gan.dataset"] == "mnist" and tags["gan.model"] == "mlp" and tags["gan.run"] == "r"
    assert tags["changed.train.stop_at"] == "none"  # params stay; the change is a tag

    history = [json.loads(line) for line in (tmp_path / "logs/r/history.jsonl").open()]
    metric = client.get_metric_history(run.info.run_id, "loss/d")
    assert [m.step for m in metric] == [r["step"] for r in history] == [5, 10, 15, 20]
    assert [m.value for m in metric] == pytest.approx([r["d_loss"] for r in history])
    assert [m.step for m in client.get_metric_history(run.info.run_id, "hparams/steps")] == [10, 20]

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.toml", "grids", "checkpoints"} <= artifacts
    grids = {a.path for a in client.list_artifacts(run.info.run_id, "grids")}
    assert {"grids/reals-0000000.png", "grids/samples-0000010.png",
            "grids/samples-0000020.png"} <= grids  # fmt: skip
    got = Path(client.download_artifacts(run.info.run_id, "grids/samples-0000020.png", work))
    from PIL import Image

    assert Image.open(got).size == Image.open(tmp_path / "assets/r/samples-0000020.png").size
    ckpt = client.download_artifacts(run.info.run_id, "checkpoints/last.pt", work)
    assert torch.equal(
        load_checkpoint(Path(ckpt))["runtime"]["generator"]["generator.net.0.weight"],
        load_checkpoint(tmp_path / "checkpoints/r/last.pt")["runtime"]["generator"][
            "generator.net.0.weight"
        ],
    )


@needs_mlflow
def test_mlflow_server_down_is_one_sentence_and_no_checkpoint(tmp_path):
    uri = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    result = run_cli("train", "--dataset", "mnist", "--data", MNIST_1K, "--max-steps", "5",
                     "--tracker", "tensorboard,mlflow", "--mlflow-uri", uri, "--workdir", tmp_path,
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1 and len(error_lines(result)) == 1
    assert f"The MLflow server at {uri} did not answer" in result.stderr
    assert not list(tmp_path.rglob("*.pt")) and not (tmp_path / "logs").exists()
    for bad, said in ((f"file://{tmp_path}/store", "so nothing was trained"),
                      ("nosuchscheme://x", "so nothing was trained"),
                      ("http://[::1", "is not a valid URI")):  # fmt: skip
        result = run_cli("train", "--dataset", "mnist", "--data", MNIST_1K, "--max-steps", "5",
                         "--tracker", "mlflow", "--mlflow-uri", bad, "--workdir", tmp_path,
                         cwd=tmp_path)  # fmt: skip
        assert result.returncode == 1 and said in result.stderr, result.stderr
    assert not list(tmp_path.rglob("*.pt")) and not (tmp_path / "logs").exists()


# ---- a tracker run belongs to one run -----------------------------------------------------------


@needs_mlflow
@needs_wandb
def test_a_copied_run_starts_its_own_mlflow_and_wandb_runs(tmp_path, monkeypatch):
    """`cp -r` of a run's folders, or of a whole workdir, then a resume: the copy gets
    tracker runs of its own (one line says so), the original's are untouched, and the
    original still continues its own."""
    import shutil

    from mlflow import MlflowClient

    import gan

    for key in [k for k in os.environ if k.startswith("WANDB_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))  # no key: W&B offline
    monkeypatch.chdir(tmp_path)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"  # beside the workdirs: the same for all
    opts = {**TINY, "tracker": "mlflow,wandb", "mlflow_uri": store, "mlflow_experiment": "c"}
    work, moved = tmp_path / "work", tmp_path / "moved"

    def ids(workdir: Path, run: str) -> dict:
        return json.loads((workdir / "logs" / run / "trackers.json").read_text())

    gan.train(**opts, workdir=str(work), max_steps=10)
    first = ids(work, "r")
    for kind in ("checkpoints", "logs", "assets"):
        shutil.copytree(work / kind / "r", work / kind / "copy")
    shutil.copytree(work, moved)
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(str(m)), level="WARNING", format="{message}")
    try:
        gan.train(**(opts | {"run_name": "copy"}), workdir=str(work), max_steps=20, resume="auto")
        gan.train(**opts, workdir=str(moved), max_steps=15, resume="auto")
        gan.train(**opts, workdir=str(work), max_steps=20, resume="auto")
    finally:
        logger.remove(sink)
    copies = [ids(work, "copy"), ids(moved, "r")]
    for copy in copies:
        assert copy["mlflow"]["run_id"] != first["mlflow"]["run_id"]
        assert copy["wandb"]["id"] != first["wandb"]["id"]
    assert (first["run"], first["workdir"]) == ("r", str(work.resolve()))
    assert (copies[0]["run"], copies[1]["workdir"]) == ("copy", str(moved.resolve()))
    again = ids(work, "r")  # the original went on in its own tracker runs
    assert (again["mlflow"], again["wandb"]) == (first["mlflow"], first["wandb"])
    said = [w for w in warnings if "new tracker runs start" in w]
    assert len(said) == 2 and "of run 'r' in" in said[0], warnings
    client = MlflowClient(tracking_uri=store)

    def steps(run_id: str) -> list[int]:
        return [m.step for m in client.get_metric_history(run_id, "loss/d")]

    assert steps(first["mlflow"]["run_id"]) == [5, 10, 15, 20]  # its own steps only
    assert steps(copies[0]["mlflow"]["run_id"]) == [15, 20]
    assert steps(copies[1]["mlflow"]["run_id"]) == [15]
    assert (tmp_path / "artifacts").is_dir() and not (tmp_path / "mlruns").exists()  # by the db
    copy_id = copies[0]["wandb"]["id"]  # its offline W&B run lies in its own folder
    assert list((work / "logs" / "copy" / "wandb").glob(f"offline-run-*-{copy_id}"))


@needs_mlflow
def test_credentials_in_mlflow_tracking_uri_reach_the_server_and_nothing_else(
    tmp_path, mlflow_server, monkeypatch, capfd
):
    """The user's own MLFLOW_TRACKING_URI may carry credentials: they are used, and
    neither printed, logged nor stored (trackers.json, train.log, run.json, config.toml)."""
    import gan

    secret = "s3cret-Pa55"
    address = mlflow_server.replace("http://", f"http://user:{secret}@")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", address)
    gan.train(**TINY, max_steps=5, workdir=str(tmp_path), tracker="mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://user:{secret}@127.0.0.1:{_free_port()}")
    result = run_cli("train", "--data", MNIST_1K, "--max-steps", "5", "--tracker", "mlflow",
                     "--workdir", tmp_path / "dead", cwd=tmp_path)  # fmt: skip
    printed = capfd.readouterr()
    ids = json.loads((tmp_path / "logs" / "r" / "trackers.json").read_text())["mlflow"]
    assert ids["uri"] == mlflow_server.replace("http://", "http://***@")
    from mlflow import MlflowClient

    assert MlflowClient(tracking_uri=mlflow_server).get_run(ids["run_id"]).info.status == "FINISHED"
    assert result.returncode == 1 and "did not answer" in result.stderr
    written = [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()]
    assert not [b for b in written if secret.encode() in b]
    assert "View run r at: http://***@127.0.0.1:" in printed.out  # MLflow's own line
    assert secret not in printed.out + printed.err + result.stdout + result.stderr
