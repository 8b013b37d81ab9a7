"""User-facing errors: each names the file, row and column so the user can fix the data, not read a traceback."""

from __future__ import annotations


class AlloyHydraError(Exception):
    """Base class for errors caused by the user's data or config (reported without a traceback)."""


class DataError(AlloyHydraError):
    """A problem in an input file. `row` is the spreadsheet row number (header = row 1)."""

    def __init__(self, message: str, file=None, row: int | None = None, column: str | None = None, value=None):
        self.file = file
        self.row = row
        self.column = column
        self.value = value
        self.reason = message
        where = []
        if file is not None:
            where.append(f"file {file}")
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        text = ", ".join(where)
        if value is not None:
            message = f"{message} (value {value!r})"
        super().__init__(f"{text}: {message}" if text else message)


class ScheduleError(ValueError):
    """A thermal schedule string that cannot be parsed; cleaning wraps it in a DataError with file/row/column."""


class ConfigError(AlloyHydraError):
    """A config that composes but cannot work (e.g. a target the dataset does not have)."""


class QCFailed(AlloyHydraError):
    """Synthetic rows failed their acceptance checks and qc.on_fail=stop."""
