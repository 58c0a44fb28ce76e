"""The MLflow tracker (`--tracker mlflow`, `uv sync --extra mlflow`).

Params are the run's options, metrics the logged scalars with their steps, grids and the
config artifacts; the run id is kept in logs/<run>/trackers.json, so a resumed run
continues the same MLflow run. The default store is SQLite in <workdir>/mlruns/ (MLflow's
file store is retired); a server that does not answer is one sentence before training.
A URI's credentials (from MLFLOW_TRACKING_URI: --mlflow-uri refuses them) reach MLflow's
client only: every message and trackers.json show it redacted.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from loguru import logger

from gan.config.tracking import check_mlflow_uri, redact, remember
from gan.errors import GanError
from gan.runs.guard import check_tree
from gan.runs.tracking import RunEnd, RunStart, picture

PROBE_TIMEOUT_S = 10
_STATUS = {"finished": "FINISHED", "interrupted": "KILLED", "failed": "FAILED"}
# A server lost mid-run costs one short wait, not MLflow's minutes of retries; the user's
# own settings win.
_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
BATCH = 100  # MLflow's limit on params per log_batch call


def default_uri(workdir: Path) -> str:
    return f"sqlite:///{(workdir / 'mlruns' / 'mlflow.db').resolve()}"


def probe(uri: str) -> None:
    """One sentence, now, when an http(s) tracking server does not answer. The request
    carries no credentials: any answer, a refusal included, means it is there."""
    if not uri.startswith(("http://", "https://")):
        return
    parts = urllib.parse.urlsplit(uri)
    bare = parts._replace(netloc=parts.netloc.rpartition("@")[2], query="", fragment="")
    url = bare.geturl().rstrip("/") + "/health"
    try:
        urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S).close()
    except urllib.error.HTTPError:
        return  # it answered (a server without /health, or behind a login)
    except (OSError, ValueError) as exc:
        reason = redact(str(getattr(exc, "reason", exc)), uri)
        raise GanError(
            f"The MLflow server at {redact(uri)} did not answer ({reason}); start it (e.g. mlflow "
            "server --host 127.0.0.1 --port 5000) or point --mlflow-uri or MLFLOW_TRACKING_URI "
            "at one, so nothing was trained."
        ) from None


def _artifacts_root(uri: str) -> str | None:
    """Beside a SQLite store's database, as in the default store (MLflow's own default is
    ./mlruns of wherever gan runs); a server's or another store's: theirs (None)."""
    if not uri.startswith("sqlite:///"):
        return None
    # sqlite:///x.db is x.db of the current folder, sqlite:////tmp/x.db is /tmp/x.db
    database = Path(urllib.parse.unquote(uri[len("sqlite:///") :].split("?")[0]))
    return (database.parent / "artifacts").resolve().as_uri()


def _within(path: Path, root: Path) -> bool:
    try:
        return path.is_absolute() and path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # RuntimeError: a loop of links
        return False


def _first(exc: Exception, uri: str) -> str:
    """The first sentence of an exception's message, for one sentence of ours; the URI's
    credentials hidden (MLflow's messages quote the address they failed at)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return re.split(r"(?<=[.;])\s", redact(text, uri), maxsplit=1)[0].rstrip(".;")[:200]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    names = ("alembic", "mlflow.store.db.utils", "mlflow.store.tracking.sqlalchemy_store")
    loggers = [logging.getLogger(name) for name in names]
    levels = [log.level for log in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for log in loggers:
            log.setLevel(logging.WARNING)
        try:
            yield
        finally:
            for log, level in zip(loggers, levels, strict=True):
                log.setLevel(level)


class MlflowTracker:
    name = "mlflow"

    def __init__(self, track: Any, workdir: Path, dataset: str) -> None:
        try:
            from mlflow import MlflowClient
        except ImportError:
            raise GanError(
                "--tracker mlflow needs the mlflow package, which is not installed; install "
                "it with `uv sync --extra mlflow` (or --extra trackers), or drop mlflow from "
                "--tracker."
            ) from None
        for key, value in _HTTP.items():
            os.environ.setdefault(key, value)
        self.uri = track.mlflow_uri or os.environ.get("MLFLOW_TRACKING_URI") or None
        self.local = self.uri is None
        if self.local:  # its database is written in place, its artifacts copied in
            check_tree(workdir, workdir / "mlruns", "the workdir's MLflow store")
            (workdir / "mlruns").mkdir(parents=True, exist_ok=True)
            self.uri = default_uri(workdir)
        elif not track.mlflow_uri:  # the user's own environment may hold credentials
            check_mlflow_uri(self.uri, "MLFLOW_TRACKING_URI", credentials=True)
        remember(self.uri)  # every later message of this process hides its credentials
        self.shown = redact(self.uri)  # what messages and trackers.json show
        probe(self.uri)
        self.client = self._open_store(MlflowClient)
        self.experiment = track.mlflow_experiment or dataset
        self.artifacts_root = _artifacts_root(self.uri)
        self.artifacts = track.tracker_artifacts
        self.run_id = ""

    def _open_store(self, client_class: Any) -> Any:
        """The client, its store opened now: a URI MLflow cannot use is one sentence."""
        from mlflow.exceptions import MlflowException

        try:
            with _quiet():  # a new SQLite store's migrations log and warn at length
                client = client_class(tracking_uri=self.uri)
                client.search_experiments(max_results=1)
        except (MlflowException, OSError, ValueError) as exc:
            raise GanError(
                f"MLflow could not use the tracking URI {self.shown} ({_first(exc, self.uri)}); "
                "give --mlflow-uri an http(s) server or a sqlite:/// store, so nothing was "
                "trained."
            ) from None
        return client

    def open(self, start: RunStart) -> dict[str, Any]:
        from mlflow.exceptions import MlflowException

        try:
            self.run_id = self._resume(start) or self._create(start)
        except MlflowException as exc:
            raise GanError(
                f"MLflow at {self.shown} refused the run ({_first(exc, self.uri)}); check the "
                "server and --mlflow-uri, so nothing was trained."
            ) from None
        self._params(start.params)
        self.client.log_text(self.run_id, start.config_text, "config.toml")
        return {"run_id": self.run_id, "uri": self.shown, "experiment": self.experiment}

    def _resume(self, start: RunStart) -> str | None:
        """The stored run, when it is on this server: set running again."""
        run_id = start.ids.get("run_id")
        if not run_id:
            return None
        if redact(str(start.ids.get("uri"))) != self.shown:
            logger.warning(
                "MLflow: this run was tracked at {} and now goes to {}, so a new MLflow run "
                "starts there (--mlflow-uri as before continues the first).",
                redact(str(start.ids.get("uri"))),
                self.shown,
            )
            return None
        from mlflow.exceptions import MlflowException

        try:
            stored = self.client.get_run(run_id)
        except MlflowException as exc:
            if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise  # the server failed: one sentence, not a new run in its place
            return None
        self._check_artifacts(stored.info.artifact_uri, f"run {run_id!r}")
        self.client.update_run(run_id, status="RUNNING")
        return run_id

    def _check_artifacts(self, where: str, whose: str) -> None:
        """In the workdir's own store, an experiment's or run's artifacts stay in its
        artifacts folder: a store that came with the workdir (a tarball, a copy) may name
        any place, a folder elsewhere or another server, and the grids, the config and
        --tracker-artifacts' checkpoint would go there."""
        if not self.local or self.artifacts_root is None:
            return
        root = Path(urllib.parse.urlsplit(self.artifacts_root).path)
        parts = urllib.parse.urlsplit(str(where))
        path = Path(urllib.parse.unquote(parts.path))
        if parts.scheme not in ("", "file") or parts.netloc or not _within(path, root):
            raise GanError(
                f"The workdir's MLflow store keeps the artifacts of {whose} at "
                f"{redact(str(where))[:200]}, outside {root}; move mlruns/ away (or give "
                "--mlflow-experiment another name), so nothing was trained."
            )

    def _create(self, start: RunStart) -> str:
        found = self.client.get_experiment_by_name(self.experiment)
        if found is not None:
            self._check_artifacts(found.artifact_location, f"experiment {self.experiment!r}")
            experiment_id = found.experiment_id
        else:  # in the local store, its artifacts beside the database
            where = self.artifacts_root
            experiment_id = self.client.create_experiment(self.experiment, where)
        tags = {f"gan.{key}": value for key, value in start.tags.items()}
        run = self.client.create_run(experiment_id, run_name=start.name, tags=tags)
        return run.info.run_id

    def _params(self, params: dict[str, Any]) -> None:
        """Params cannot change in MLflow: a resumed run logs only the new ones, and any
        option changed on resume as a tag `changed.<option>`."""
        from mlflow.entities import Param, RunTag

        logged = self.client.get_run(self.run_id).data.params
        new = [Param(k, str(v)) for k, v in params.items() if k not in logged]
        changed = [
            RunTag(f"changed.{k}", str(v))
            for k, v in params.items()
            if k in logged and logged[k] != str(v)
        ]
        for i in range(0, len(new), BATCH):
            self.client.log_batch(self.run_id, params=new[i : i + BATCH])
        if changed:
            self.client.log_batch(self.run_id, tags=changed)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, step) for k, v in values.items() if math.isfinite(v)]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    def image(self, tag: str, image: torch.Tensor, step: int) -> None:
        self.client.log_image(self.run_id, picture(image), f"grids/{tag}-{step:07d}.png")

    def text(self, tag: str, text: str, step: int) -> None:
        self.client.log_text(self.run_id, text, f"{tag}.md")

    def close(self, end: RunEnd) -> None:
        from mlflow.entities import RunTag

        self.scalars(end.step, end.summary())
        tags = [RunTag("gan.status", end.status), RunTag("gan.planned_steps", str(end.planned))]
        self.client.log_batch(self.run_id, tags=tags)
        if self.artifacts and end.checkpoint is not None:
            self.client.log_artifact(self.run_id, str(end.checkpoint), "checkpoints")
        printed = io.StringIO()  # MLflow prints the run's address: credentials and all
        with contextlib.redirect_stdout(printed):
            self.client.set_terminated(self.run_id, _STATUS.get(end.status, "FAILED"))
        sys.stdout.write(redact(printed.getvalue(), self.uri))
