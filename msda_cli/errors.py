"""One exception type for bad user input.

`MsdaError` subclasses `ValueError` so library callers can catch the usual type; the
command line turns it into one line on stderr and exit status 2.
"""

import errno


class MsdaError(ValueError):
    """Bad input that the user can fix: unknown name, value out of range, missing file."""


class RunFailed(RuntimeError):
    """A run stopped by an error in training (not bad input): reported in one line, exit 1."""


def disk_full(error: BaseException | None) -> OSError | None:
    """The full-disk OSError (ENOSPC, EDQUOT) behind `error`: itself or one it was raised from or
    during (torch.save reports a full disk as a RuntimeError raised while handling it)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return error
        error = error.__cause__ or error.__context__
    return None
