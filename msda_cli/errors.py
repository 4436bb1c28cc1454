"""One exception type for bad user input.

`MsdaError` subclasses `ValueError` so library callers can catch the usual type; the
command line turns it into one line on stderr and exit status 2.
"""


class MsdaError(ValueError):
    """Bad input that the user can fix: unknown name, value out of range, missing file."""


class RunFailed(RuntimeError):
    """A run stopped by an error in training (not bad input): reported in one line, exit 1."""


def at_least(flag: str, value: int, minimum: int) -> None:
    """Raise MsdaError("FLAG must be at least MINIMUM, got VALUE") for a count that is too small."""
    if value < minimum:
        raise MsdaError(f"{flag} must be at least {minimum}, got {value}")
