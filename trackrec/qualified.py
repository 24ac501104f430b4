"""`module:name` references to code, as job files and task parameters carry them: one format,
written and resolved here."""

from __future__ import annotations

import importlib

from trackrec.errors import TrackRecError


def qualified(obj) -> str:
    """`module:name` of a module-level function or class."""
    return f"{obj.__module__}:{obj.__qualname__}"


def resolve(reference: str, what: str):
    """What `module:name` names; one that names nothing is a TrackRecError naming `what` it should be."""
    module, _, name = reference.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as error:
        raise TrackRecError(f"{reference!r} names no {what} (module:name): {error}") from error
