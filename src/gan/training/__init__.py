"""Training: the plan, the build, the loop and its components (docs/architecture.md).

`gan.train(...)` (in `gan/__init__.py`) is the Python API's way in; `gan train` calls
`gan.training.run.train`. The flow is one way: `run.train` resolves the config and the
schedule in the plan (`plan`, `schedule`, `checks`, and `budget`'s warm-up for a
--time-budget), builds the run's parts (`build`), runs the loop (`loop.Trainer` calling
`step.train_step`, then the checkpointer, reporter and grids at the schedule's steps)
and writes the run's records (`records`).
"""
