"""The errors the command line reports as one clear message (no traceback).

Each carries a message that says what is wrong and what to do. ``python -m stad_utils``
prints it and exits with status 2 for :class:`UsageError` (bad arguments or settings) and
1 for the others; ``--debug`` shows the traceback as well.
"""

from __future__ import annotations


class StadError(Exception):
    """A known problem, explained by its message."""


class UsageError(StadError, ValueError):
    """An argument or setting is out of range or of the wrong kind (exit status 2)."""


class RunFolderError(UsageError):
    """An output folder (or checkpoint) holds another run; reusing it would mix two runs."""


class CorruptFileError(StadError):
    """A file the tool wrote earlier cannot be read (truncated, foreign or unsafe)."""


class DiskFullError(StadError, OSError):
    """The disk filled up while writing; the previous file (if any) is intact."""
