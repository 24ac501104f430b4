"""Untrusted text printed as data: no terminal control reaches the screen, and it is bounded."""

import unicodedata

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from rich.text import Text

from trackrec.inert import inert


@given(st.text())
def test_no_control_or_format_character_survives(text):
    shown = inert(text, limit=10_000)
    assert not any(c in shown for c in "\x1b\r\x00\x07\u202e\u2028")
    assert not any(unicodedata.category(c)[0] == "C" or unicodedata.category(c) in ("Zl", "Zp") for c in shown)


def test_long_text_is_cut_and_says_how_much():
    shown = inert("x" * 5000, limit=100)
    assert shown.startswith("x" * 100) and "4900 more characters" in shown


@given(st.text(alphabet=st.sampled_from("[]/=link\x1b\\ab ")))
def test_markup_characters_print_as_themselves(text):
    console = Console(record=True, width=10_000, color_system=None)
    console.print(Text(inert(text)), soft_wrap=True)
    assert console.export_text().rstrip() == inert(text).rstrip()
