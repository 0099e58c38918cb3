"""User-facing errors. The CLI prints these as one line and exits non-zero."""


class LosscapeError(Exception):
    """A problem with the user's input or environment (bad file, missing data, ...).

    Library code raises this (or ``ValueError`` for a bad parameter value); ``cli``
    turns it into ``losscape <command>: error: <message>`` and exit status 1.
    """


class DataNotFoundError(LosscapeError, FileNotFoundError):
    """A dataset's files are not where they were expected."""


class CheckpointError(LosscapeError):
    """A checkpoint or directions file cannot be loaded safely or does not fit the model."""
