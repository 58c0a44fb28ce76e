"""What a user gave, and where from: the labels of the plan's sources, `Chosen`, and the one
merge of the defaults, a config file and the flags (or `gan.train` keywords).

The plan records, for every option, the step that set it (run.json's "sources"): the
user's `flag`, `config file` or `argument`; or the `checkpoint`, the `dataset default`, a
rule, the `data`, the `time budget` or the `run folder`.
"""

from __future__ import annotations

from typing import Any

from gan.config.core import FIELDS, Config

FLAG, FILE, ARGUMENT = "flag", "config file", "argument"
USER = (FLAG, FILE, ARGUMENT)  # what the user gave, in one way or another
RESUMED, DATASET, DATA = "checkpoint", "dataset default", "data"
SMALL_DATA, LABELS = "small-data rule", "labels rule"
BUDGET_SET, RUN_FOLDER = "time budget", "run folder"
INIT_FROM = "init-from checkpoint"  # a new run's model options, from --init-from's
# The forms a run's length takes: a length given replaces one from below (a file's, a
# checkpoint's, a dataset's), whichever form either takes.
LENGTH = frozenset({"train.epochs", "train.max_steps", "train.time_budget", "train.planned_steps"})


class Chosen(frozenset):
    """The options a user set (`section.field` keys), each with where it came from:
    `sources[key]` is "flag", "config file", ... (the plan records it in run.json)."""

    sources: dict[str, str]

    def __new__(cls, sources: dict[str, str]) -> Chosen:
        chosen = super().__new__(cls, sources)
        chosen.sources = dict(sources)
        return chosen


def over(below: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """`given` over `below`; where `given` changes the run's length, in any form, the
    length `below` held goes (a file's --time-budget and its planned steps under a flag's
    --max-steps)."""
    changes_length = any(below.get(key) != given[key] for key in LENGTH & set(given))
    if changes_length:
        below = {key: value for key, value in below.items() if key not in LENGTH}
    return {**below, **given}


def merge(
    below: dict[str, Any], given: dict[str, Any], source: str, below_source: str = FILE
) -> tuple[Config, Chosen]:
    """The defaults, then the options `below` (a config file's), then those `given` (by
    flags or keywords: `source`), with where each came from."""
    values = over(below, given)
    sources = {key: below_source for key in values if key not in given}
    return Config.from_values(values), Chosen(sources | dict.fromkeys(given, source))


def differing(config: Config) -> frozenset[str]:
    """The options not at their declared defaults: what a library caller chose, unless it
    says."""
    return frozenset(key for key, f in FIELDS.items() if config.get(key) != f.default)


def sources_of(config: Config, chosen: frozenset[str] | None) -> dict[str, str]:
    """Where each chosen option came from: a `Chosen` says; other options a library
    caller chose (by default those that differ from their defaults) are its `argument`s."""
    if isinstance(chosen, Chosen):
        return dict(chosen.sources)
    return dict.fromkeys(differing(config) if chosen is None else chosen, ARGUMENT)
