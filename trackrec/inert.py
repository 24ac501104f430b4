"""Untrusted text (RecCoTs, titles, teacher answers, error bodies from KFP, Kubernetes or Feast) made
inert for a terminal or a log: no control or format characters (ESC sequences, bidi overrides,
carriage returns), bounded in length. Print the result as plain text (rich's `Text`, or
`markup=False`), never as markup."""

from __future__ import annotations

import html
import unicodedata

MAX_SHOWN_CHARS = 2000
# Unicode categories that act rather than show: controls, format (bidi overrides, zero widths),
# surrogates, private use, unassigned, line and paragraph separators
ACTING = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def inert(text: object, limit: int = MAX_SHOWN_CHARS, keep_newlines: bool = False) -> str:
    """`text` with every control/format character shown as its code point, cut to `limit` characters."""
    shown = []
    for c in str(text):
        if c == "\n" and keep_newlines:
            shown.append(c)
        elif unicodedata.category(c) in ACTING:
            shown.append(f"\\u{ord(c):04x}")
        else:
            shown.append(c)
    out = "".join(shown)
    if len(out) > limit:
        return f"{out[:limit]}… ({len(out) - limit} more characters)"
    return out


def inert_html(text: object) -> str:
    """`text` as inert, bounded HTML text: every report page prints run text through this."""
    return html.escape(inert(text))
