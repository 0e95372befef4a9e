"""User mistakes get one clear line and exit code 2; bugs keep their tracebacks."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """A problem with the user's input or options, reported as one line."""

    exit_code = 2


class DataError(UserError):
    """Bad content in a data file, located by file, row and column."""

    def __init__(
        self, path: str | Path, message: str, row: int | None = None, column: str | None = None
    ):
        where = [str(path) if path else "<data>"]
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column}")
        super().__init__(f"{', '.join(where)}: {message}")
        self.path, self.row, self.column = path, row, column


class SomeInputsUnreadable(UserError):
    """Some inputs of a batch could not be read: the rest were processed and written, and the
    exit code (3) tells a script that not everything went through."""

    exit_code = 3


class Interrupted(UserError):
    """Ctrl+C or SIGTERM stopped a job whose work so far is kept: said in one line."""

    exit_code = 130
