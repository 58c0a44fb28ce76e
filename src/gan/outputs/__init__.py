"""What is made from a run's checkpoints: a generator to draw from (`generator`), image
grids and files (`sample`), an evaluation report (`evaluate`), exported generators
(`export`), and loss plots from its history (`plotting`)."""
