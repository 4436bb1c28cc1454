"""One exception type for bad user input.

`MsdaError` subclasses `ValueError` so library callers can catch the usual type; the
command line turns it into one line on stderr and exit status 2.
"""


class MsdaError(ValueError):
    """Bad input that the user can fix: unknown name, value out of range, missing file."""


class RunFailed(RuntimeError):
    """A run stopped by an error in training (not bad input): reported in one line, exit 1."""
