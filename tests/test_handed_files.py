"""Handed files choose nothing silently (issue 42, point 5): a resumed checkpoint and a
`--config` file choose neither where a run is tracked nor how its data is cached or
fetched, `gan evaluate` reads no place a checkpoint names, and an MLflow URI's credentials
are never printed or stored. Also `gan evaluate`'s reports, named by what they measured
(point 8): one of other data, features or sample count is never replaced."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from gan.checkpoint import load_checkpoint, save_atomic
from tests.conftest import MNIST_1K, error_lines, run_cli

SECRET = "s3cret-Pa55"
TINY = ("--data", MNIST_1K, "--batch-size", "8", "--device", "cpu")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A 2-step MNIST run `r` with no trackers: its step checkpoint."""
    work = tmp_path_factory.mktemp("handed")
    done = run_cli("train", *TINY, "--max-steps", "2", "--tracker", "none", "--run-name", "r",
                   "--workdir", work, cwd=work)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return work / "checkpoints" / "r" / "step-0000002.pt"


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP port on 127.0.0.1 that a handed file names as its server: the kernel queues
    any connection made to it, so `_connected` tells whether anything tried."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        sock.setblocking(False)
        yield sock


def _connected(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def _asks(sock: socket.socket, planted: Path) -> dict[str, dict]:
    """What a hostile file asks for: its own trackers and servers, its cache and downloads."""
    port = sock.getsockname()[1]
    track = {"tracker": "tensorboard,mlflow,wandb", "mlflow_uri": f"http://127.0.0.1:{port}",
             "wandb_project": "theirs", "wandb_entity": "them", "tracker_artifacts": True,
             "mlflow_experiment": "theirs"}  # fmt: skip
    data = {"cache_dir": str(planted), "download": True, "no_sign_request": True,
            "s3_workers": 256, "no_cache": True}  # fmt: skip
    return {"track": track, "data": data}


def _ignored_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if "Ignored " in line]
    assert len(lines) == 1, stderr  # one line says what was ignored
    return lines[0]


def _settings(run_json: Path) -> tuple[dict, dict]:
    recorded = json.loads(run_json.read_text())
    return recorded["track"], {k: recorded["data"][k] for k in _asks_keys()}


def _asks_keys() -> tuple[str, ...]:
    return ("cache_dir", "download", "no_sign_request", "s3_workers", "no_cache")


DEFAULT_TRACK = {"tracker": "tensorboard", "tracker_artifacts": False, "wandb_project": None,
                 "wandb_entity": None, "mlflow_uri": None, "mlflow_experiment": None}  # fmt: skip
DEFAULT_DATA = {"cache_dir": None, "download": False, "no_sign_request": False,
                "s3_workers": 32, "no_cache": False}  # fmt: skip


# ---- point 5: a resumed checkpoint, a --config file ---------------------------------------


def test_a_resumed_checkpoint_chooses_no_tracker_server_cache_or_download(
    trained, tmp_path, listener
):
    planted = tmp_path / "planted-cache"
    state = load_checkpoint(trained)
    for section, values in _asks(listener, planted).items():
        state["config"][section] |= values
    handed = save_atomic(state, tmp_path / "handed.pt")
    done = run_cli("train", "--resume", handed, "--run-name", "mine", "--max-steps", "3",
                   "--workdir", tmp_path, "--data", MNIST_1K, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not _connected(listener)  # no request to the server the file names
    line = _ignored_line(done.stderr)
    for flag in ("--tracker tensorboard,mlflow,wandb", "--mlflow-uri http://127.0.0.1:",
                 "--wandb-entity them", "--tracker-artifacts", f"--cache-dir {planted}",
                 "--download", "--s3-workers 256", "from the checkpoint"):  # fmt: skip
        assert flag in line, line
    assert _settings(tmp_path / "logs" / "mine" / "run.json") == (DEFAULT_TRACK, DEFAULT_DATA)
    assert not planted.exists() and not (tmp_path / "mlruns").exists()
    assert not (tmp_path / "logs" / "mine" / "wandb").exists()
    # The user's own flags still choose: given again, they are kept, and not warned about.
    again = run_cli("train", "--resume", "auto", "--run-name", "mine", "--max-steps", "4",
                    "--workdir", tmp_path, "--tracker", "none", "--s3-workers", "8",
                    cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0, again.stderr
    track, data = _settings(tmp_path / "logs" / "mine" / "run.json")
    assert track["tracker"] == "none" and data["s3_workers"] == 8
    assert "Ignored" not in again.stderr  # the run's own checkpoint now asks for nothing


def test_a_config_file_chooses_no_tracker_server_cache_or_download(tmp_path, listener):
    import tomli_w

    planted = tmp_path / "planted-cache"
    toml = tmp_path / "handed.toml"
    toml.write_text(tomli_w.dumps(_asks(listener, planted)))
    done = run_cli("train", "--config", toml, *TINY, "--max-steps", "2", "--run-name", "r",
                   "--wandb-project", "mine", "--workdir", tmp_path, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not _connected(listener)
    line = _ignored_line(done.stderr)
    assert "--mlflow-uri http://127.0.0.1:" in line and "from the config file" in line
    assert "--wandb-project" not in line  # given as a flag: the flag's value, no warning
    track, data = _settings(tmp_path / "logs" / "r" / "run.json")
    assert track == DEFAULT_TRACK | {"wandb_project": "mine"} and data == DEFAULT_DATA
    written = (tmp_path / "logs" / "r" / "config.toml").read_text()
    assert "127.0.0.1" not in written and str(planted) not in written
    assert not planted.exists() and not (tmp_path / "mlruns").exists()


def test_a_config_file_chooses_no_workdir(tmp_path):
    """A config.toml records the workdir it ran in, and its header says to replay it with
    `gan train --config FILE --run-name NEW`: the run goes into the current folder (or
    --workdir), never into the file's, whose last.pt it would replace."""
    theirs, mine = tmp_path / "theirs", tmp_path / "mine"
    mine.mkdir()
    done = run_cli("train", *TINY, "--max-steps", "1", "--tracker", "none", "--run-name", "a",
                   "--workdir", theirs, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    last = (theirs / "checkpoints" / "last.pt").read_bytes()
    replay = run_cli("train", "--config", theirs / "logs" / "a" / "config.toml", "--run-name",
                     "new", cwd=mine)  # fmt: skip
    assert replay.returncode == 0, replay.stderr
    line = _ignored_line(replay.stderr)
    assert f"--workdir {theirs}" in line and "from the config file" in line
    assert (mine / "checkpoints" / "new" / "last.pt").is_file()
    assert not (theirs / "checkpoints" / "new").exists()
    assert (theirs / "checkpoints" / "last.pt").read_bytes() == last


def test_a_checkpoint_from_elsewhere_chooses_no_data_to_read(trained, tmp_path, listener):
    """Resumed from outside the workdir's run folders (handed over, copied), a checkpoint
    whose data was a path or an address needs --data: it never makes gan read (or sign
    requests for) a place it names. The workdir's own runs resume from where they trained."""
    state = load_checkpoint(trained)
    host, port = listener.getsockname()
    state["config"]["data"]["source"] = "s3://their-bucket/prefix"
    handed = tmp_path / "handed.pt"
    save_atomic(state, handed)
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "AKIAMINE",
           "AWS_SECRET_ACCESS_KEY": "mine"}  # fmt: skip
    args = ("train", "--resume", handed, "--workdir", tmp_path / "w", "--max-steps", "3")
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        refused = run_cli(*args, cwd=tmp_path)
    assert refused.returncode == 1 and len(error_lines(refused)) == 1, refused.stderr
    assert "give --data" in error_lines(refused)[0] and not _connected(listener)
    assert not (tmp_path / "w").exists()
    done = run_cli(*args, "--data", MNIST_1K, "--batch-size", "8", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "w" / "checkpoints" / "r" / "step-0000003.pt").is_file()


# ---- point 5: MLflow URIs --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "phrase"),
    [
        (f"http://user:{SECRET}@127.0.0.1:{{port}}", "MLFLOW_TRACKING_PASSWORD"),
        (f"https://{SECRET}@127.0.0.1:{{port}}/", "MLFLOW_TRACKING_PASSWORD"),
        (f"http://127.0.0.1:{{port}}/?access_token={SECRET}", "MLFLOW_TRACKING_TOKEN"),
        (f"http://user:{SECRET}@127.0.0.1:port", "is not a valid URI"),
        ("http://[::1", "is not a valid URI"),
        (f"http://user:x/{SECRET}@127.0.0.1:{{port}}", "is not a valid URI"),
        (f"http://user:{SECRET} x@127.0.0.1:{{port}}", "MLFLOW_TRACKING_PASSWORD"),
    ],
    ids=[
        "user-password",
        "token-as-user",
        "query-token",
        "bad-port",
        "bad-host",
        "slash",
        "blank",
    ],  # fmt: skip
)
@pytest.mark.parametrize("tracker", ["mlflow", "tensorboard"])
def test_an_mlflow_uri_with_credentials_or_malformed_is_one_sentence_that_hides_them(
    tmp_path, listener, uri, phrase, tracker
):
    uri = uri.replace("{port}", str(listener.getsockname()[1]))
    done = run_cli("train", *TINY, "--max-steps", "2", "--tracker", tracker, "--mlflow-uri",
                   uri, "--workdir", tmp_path, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and phrase in errors[0], done.stderr
    assert SECRET not in done.stdout + done.stderr
    assert not _connected(listener)
    assert not list(tmp_path.iterdir())  # nothing written, the URI stored nowhere


@pytest.mark.parametrize("cut", [" ", "/", "#", "?", "@", ":", "\t", "%20"])
def test_a_password_holding_any_character_is_hidden_wherever_the_uri_is_shown(cut):
    """Everything between :// and the URI's last '@' is the user's: hidden in the stored
    URI (trackers.json, the export sidecar), the ignored-options line of a handed file,
    the refusals of a malformed or credentialed URI, and MLflow's own printed lines."""
    from gan.config import FIELDS
    from gan.config.tracking import check_mlflow_uri, redact, remember
    from gan.errors import GanError
    from gan.outputs.export import _without_credentials
    from gan.training.handed import as_flag

    uri = f"http://user:{SECRET}{cut}{SECRET}@127.0.0.1:5000/api"
    shown = [redact(uri), as_flag(FIELDS["track.mlflow_uri"], uri),
             _without_credentials({"track": {"mlflow_uri": uri}})["track"]["mlflow_uri"],
             redact(f"View run r at: {uri}/#/experiments/1", uri)]  # fmt: skip
    for credentials in (False, True):
        try:
            check_mlflow_uri(uri, credentials=credentials)
        except GanError as exc:
            shown.append(str(exc))
    remember(uri)  # a tracker's later message may cut the URI anywhere
    shown.append(redact(f"connection to {uri} failed"))
    assert shown[0] == "http://***@127.0.0.1:5000/api"
    assert not [text for text in shown if SECRET in text or "user:" in text], shown


# ---- point 5: gan evaluate reads no place a checkpoint names ---------------------------------


def test_evaluate_reads_the_data_a_checkpoint_names_only_at_a_datasets_own_place(
    trained, tmp_path, monkeypatch
):
    import gan.outputs.evaluate as evaluating

    read = []
    real = evaluating.load_dataset
    monkeypatch.setattr(evaluating, "load_dataset", lambda c: read.append(c) or real(c))
    state = load_checkpoint(trained)
    state["config"]["data"] |= {"name": "folder", "source": "/"}  # it would walk the disk
    handed = save_atomic(state, tmp_path / "handed.pt")
    done = run_cli("evaluate", handed, "--num-samples", "8", "--metrics", "fid", "--device",
                   "cpu", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1 and not read, done.stderr
    (error,) = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert "give --data" in error and "'/'" in error
    # MNIST at its own place (./data) is the dataset's, not the file's: it is read.
    state["config"]["data"] |= {"name": "mnist", "source": None}
    named = save_atomic(state, tmp_path / "named.pt")
    (tmp_path / "data").symlink_to(MNIST_1K)
    done = run_cli("evaluate", named, "--num-samples", "8", "--metrics", "fid", "--device",
                   "cpu", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [c.source for c in read] == [None]


# ---- point 8: reports named by what they measured --------------------------------------------


def test_evaluate_keeps_reports_of_other_features_sample_counts_and_data(trained, tmp_path):
    logs = trained.parents[2] / "logs" / "r"
    before = set(logs.glob("eval-*.json"))
    small = _mnist_subset(tmp_path / "small", 300)

    def evaluate(*args) -> dict:
        done = run_cli("evaluate", trained, "--device", "cpu", "--metrics", "fid", *args,
                       cwd=tmp_path)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    first = evaluate("--data", MNIST_1K, "--num-samples", "16")
    evaluate("--data", MNIST_1K, "--num-samples", "24")
    evaluate("--data", MNIST_1K, "--num-samples", "16", "--features", "random-conv")
    other = evaluate("--data", small, "--num-samples", "16")
    kid = evaluate("--data", MNIST_1K, "--num-samples", "16", "--metrics", "kid")
    seeded = evaluate("--data", MNIST_1K, "--num-samples", "16", "--seed", "7")  # other samples
    reports = {p.name: json.loads(p.read_text()) for p in set(logs.glob("eval-*.json")) - before}
    assert len(reports) == 5, sorted(reports)  # none replaced another
    assert {(r["features"], r["num_samples"], r["num_real"]) for r in reports.values()} == {
        ("mnist-lenet", 16, 1000), ("mnist-lenet", 24, 1000), ("random-conv", 16, 1000),
        ("mnist-lenet", 16, 300)}  # fmt: skip
    assert other["data_sha256"] != first["data_sha256"]
    mine = reports[f"eval-0000002-mnist-lenet-16-{first['data_sha256'][:8]}.json"]
    assert mine["fid"] == first["fid"] and mine["kid"] == kid["kid"]  # one measurement, both
    other_seed = reports[f"eval-0000002-mnist-lenet-16-{first['data_sha256'][:8]}-s7.json"]
    assert other_seed["fid"] == seeded["fid"] != first["fid"] and "kid" not in other_seed


def _mnist_subset(folder: Path, count: int) -> Path:
    """The first `count` digits of the bundled slice as MNIST IDX files of their own."""
    import gzip

    folder.mkdir()
    for name, header in (("t10k-images-idx3-ubyte.gz", 16), ("t10k-labels-idx1-ubyte.gz", 8)):
        raw = gzip.decompress((MNIST_1K / name).read_bytes())
        size = 28 * 28 if header == 16 else 1
        head = raw[:4] + count.to_bytes(4, "big") + raw[8:header]
        (folder / name).write_bytes(gzip.compress(head + raw[header : header + count * size]))
    return folder
