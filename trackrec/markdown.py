"""Markdown for KFP's Markdown artifacts (the UI renders it, HTML included): text from a run (names,
versions, numbers) as inert characters that open no link, emphasis, table cell or tag."""

from __future__ import annotations

import html
import re

from trackrec.inert import inert

_BARE_LINK = re.compile(r"://|(?i:www)\.")  # what a renderer's autolinking starts from: shown, not linked
_ACTIVE = re.compile(r"([\\`*_\[\]|~])")  # what opens emphasis, code, a link, a cell mid-line


def text(value: object) -> str:
    """`value` as inline Markdown (never a line's start) that shows the characters it is: markup and
    HTML escaped, control characters shown as code points, bounded."""
    escaped = _ACTIVE.sub(r"\\\1", html.escape(inert(value, limit=500), quote=False))
    return _BARE_LINK.sub(lambda m: m[0].replace(":", "&#58;").replace(".", "&#46;"), escaped)


def table(rows: list[dict[str, str]]) -> list[str]:
    """The lines of a Markdown table, headed by the first row's keys; every cell through `text`."""
    header = list(rows[0])
    lines = ["| " + " | ".join(text(h) for h in header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(text(row.get(h, "")) for h in header) + " |" for row in rows]
