"""What is made from a run's checkpoints: a generator to draw from (`generator`), image
grids and files (`sample`), an evaluation report (`evaluate`), exported generators
(`export`), and loss plots from its history (`plotting`)."""

# What `gan evaluate` and `gan.evaluate` (`evaluate.evaluate`) do unless told otherwise:
# the command's options and the function's keywords both read these (without torch).
NUM_SAMPLES, METRICS_TEXT, BATCH_SIZE, SEED = 10_000, "fid,kid,pr,dc", 250, 12345
