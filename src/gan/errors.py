"""The one exception type users see: a sentence saying what is wrong and what to do."""


class GanError(Exception):
    """A user-facing error; the CLI prints its message and exits with code 1."""
