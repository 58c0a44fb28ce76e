"""What a run leaves on disk and how it is found again: its folders and lock (`folders`),
its status (`status`), `gan runs` (`overview`), the checkpoint to resume from (`resume`),
files of another timeline set aside (`aside`), history and TensorBoard (`tracking`)."""
