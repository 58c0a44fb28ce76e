"""Training. `gan.train(...)` trains a run: this package is callable (see `api.train`).

The flow is one way: `run.train` resolves the config in the plan (`plan`, with its
`checks`), builds the run (`build`: runtime, batches, recipe and the loop's components),
runs the loop (`loop.Trainer` calling `step.train_step`, then `checkpointer`, `reporter`
and `grids` at their intervals) and writes the run's records (`records`).
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallableModule(types.ModuleType):
    """`gan.train` is this package and the Python API's train function at once: importing
    the package (as anything under it does) must not hide the function."""

    def __call__(self, config: Any = None, *, resume: str | None = None, **options: Any) -> Any:
        from gan.train.api import train

        return train(config, resume=resume, **options)


sys.modules[__name__].__class__ = _CallableModule
