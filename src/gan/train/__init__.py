"""Training: the runtime builder, one step, the loop, and its components.

`runtime.build_runtime` readies G and D (device, precision, layout, compile, DDP);
`loop.Trainer` runs `step.train_step` and calls its components at their intervals:
`checkpointer.Checkpointer`, `reporter.Reporter` and `grids.GridWriter`.
"""
