"""Errors that tell the user what was wrong and where."""

from __future__ import annotations


class TrackRecError(Exception):
    """Base class for errors the user can act on."""


class DataError(TrackRecError):
    """Bad input data, located by source (file), row and field."""

    def __init__(self, source: str, message: str, row: int | None = None, field: str | None = None):
        self.source, self.message, self.row, self.field = source, message, row, field
        where = str(source)
        if row is not None:
            where += f", row {row}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {message}")


class ConfigError(TrackRecError):
    """A config that does not validate; lists every problem at once."""

    def __init__(self, source: str, problems: list[str]):
        self.source, self.problems = source, problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid config {source}:\n{listing}")
