"""The `[track]` section: which experiment trackers a run reports to (TensorBoard, W&B,
MLflow) and where. Declared like every other section (`gan.config.sections`); importing
this module does not load torch or any tracker.

Also the rules on where things go that every handed file obeys: which options only the
command line and the environment may set (`local_fields`), and MLflow URIs parsed, their
credentials never shown (`check_mlflow_uri`, `redact`)."""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gan.config.options import option
from gan.config.values import names_or_none
from gan.errors import GanError

if TYPE_CHECKING:
    from gan.config.options import Field

TRACK = "Experiment trackers (docs/tracking.md)"
MAX_TEXT = 500


def tracker_names(value: Any) -> str:
    """A comma-separated list of the catalog's trackers (e.g. tensorboard,wandb), or none."""
    from gan.config.catalog import TRACKERS

    return names_or_none(value, TRACKERS, "a list of")


def _optional_text(value: Any) -> str:
    # The value is not echoed: an address may carry a password.
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        raise ValueError(f"must be a name or address of 1 to {MAX_TEXT} characters")
    return value.strip()


@dataclass(kw_only=True)
class TrackConfig:
    tracker: str = option(
        "tensorboard",
        "Where the run's scalars, grids, config and summary go besides history.jsonl: a "
        "list of tensorboard, wandb, mlflow (wandb and mlflow: uv sync --extra trackers), "
        "or none.",
        convert=tracker_names,
        panel=TRACK,
        metavar="LIST",
    )
    tracker_artifacts: bool = option(
        False,
        "Also upload the final last.pt to W&B and MLflow (off: checkpoints can be large).",
        panel=TRACK,
    )
    wandb_project: str | None = option(
        None,
        "W&B project (default: WANDB_PROJECT, else gan). Without an API key the run is "
        "logged offline, for a later wandb sync.",
        convert=_optional_text,
        panel=TRACK,
    )
    wandb_entity: str | None = option(
        None,
        "W&B entity: team or user (default: WANDB_ENTITY).",
        convert=_optional_text,
        panel=TRACK,
    )
    mlflow_uri: str | None = option(
        None,
        "MLflow tracking server or store (default: MLFLOW_TRACKING_URI, else a SQLite store "
        "in <workdir>/mlruns).",
        convert=_optional_text,
        panel=TRACK,
        metavar="URI",
    )
    mlflow_experiment: str | None = option(
        None,
        "MLflow experiment (default: the dataset's name).",
        convert=_optional_text,
        panel=TRACK,
    )

    def names(self) -> list[str]:
        """The trackers asked for, in order ([] for none)."""
        return [] if self.tracker == "none" else self.tracker.split(",")


def local_fields() -> list[Field]:
    """The options only the command line and the environment set, never a handed file (a
    checkpoint resumed, a `--config` file): where the run writes (--workdir: the current
    folder unless given), where it is tracked (the whole `[track]` section) and where its
    data is cached and how it is fetched (S3 settings, --download)."""
    from gan.config import FIELDS
    from gan.config.sections import S3

    keys = ("data.download", "train.workdir")
    return [f for f in FIELDS.values() if f.opt.panel in (TRACK, S3) or f.key in keys]


# A URI's user information: everything between :// and its LAST '@' (a password may hold
# '/', '?', '#', ':' or a blank, which no parser of the rest can know). In running text a
# URI ends at a blank; a text that is one URI (a stored or shown option) is one whole.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_USERINFO = re.compile(r"(?<=://)(?!/)\S*@")
_SECRET = r"[^=&;#\s]*(?:token|key|secret|pass|pwd|auth|sig|cred|session)[^=&;#\s]*"
# ?access_token=...: the value of a query parameter whose name says it is a secret.
_SECRET_QUERY = re.compile(rf"(?i)([?&;]{_SECRET}=)[^&;#\s]*")
_KNOWN: set[str] = set()  # the credentials of URIs this process uses (`remember`)


def userinfo(uri: str) -> str | None:
    """The user information of one URI (None without): between `://` and the last '@'; a
    URI whose authority is empty (sqlite:////path) has none, whatever its path holds."""
    _, sep, rest = uri.strip().partition("://")
    if not sep or rest.startswith("/") or "@" not in rest:
        return None
    return rest.rpartition("@")[0]


def remember(uri: str) -> None:
    """Hide `uri`'s credentials from every later `redact` of this process (a tracker's
    message may quote them anywhere, cut where a parser of running text cannot know)."""
    _KNOWN.update(_secrets(uri, users=False))


def redact(text: str, uri: str | None = None) -> str:
    """`text` with the credentials of any URL in it hidden (user:password@ and query
    tokens), those of `uri` and of remembered URIs wherever they appear; a text that is one
    URI hides everything up to its last '@'."""
    for secret in sorted({*_KNOWN, *(_secrets(uri) if uri else ())}, key=len, reverse=True):
        text = text.replace(secret, "***")
    info = userinfo(text) if _SCHEME.match(text.strip()) else None
    if info:
        text = text.replace(f"://{info}@", "://***@", 1)
    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub("***@", text))


def _secrets(uri: str, users: bool = True) -> list[str]:
    """The credentials in `uri`, as written and decoded, longest first (`users`: the user
    name alone too; a name such as `admin` is no secret to hide in every message)."""
    info = userinfo(uri)
    pieces = [info, *(info.split(":", 1) if users else info.split(":", 1)[1:])] if info else []
    pieces += [m[0].split("=", 1)[1] for m in _SECRET_QUERY.finditer(uri)]
    pieces += [urllib.parse.unquote(p) for p in pieces]
    return sorted({p for p in pieces if len(p) >= 3}, key=len, reverse=True)


def check_mlflow_uri(uri: str, where: str = "--mlflow-uri", credentials: bool = False) -> None:
    """A URI that parses, and, unless `credentials` (the user's own environment), carries
    no user name, password or token: those would be stored with the run."""
    shown = redact(uri, uri)
    try:  # what MLflow makes of the rest (a store, `databricks`) it says itself
        parts = urllib.parse.urlsplit(uri)
        parts.port  # noqa: B018 - reading it checks it
        bad = not uri.isprintable() or (parts.scheme in ("http", "https") and not parts.hostname)
    except ValueError:
        bad = True
    if bad:
        raise GanError(
            f"{where} {shown!r} is not a valid URI (its host, its port from 0 to 65535 or a "
            "character cannot be read); give an http(s)://host:port server or a sqlite:/// "
            "store."
        )
    has = parts.username is not None or userinfo(uri) is not None or _SECRET_QUERY.search(uri)
    if not credentials and has:
        raise GanError(
            f"{where} {shown} carries a user name, password or token, which gan would store "
            "with the run; give the server alone and the credentials in "
            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN), "
            "or the whole URI in MLFLOW_TRACKING_URI, which gan never stores or prints."
        )
