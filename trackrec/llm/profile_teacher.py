"""The offline teacher: a RecCoT written from the history and the item table, with no LLM.

No larger LLM is reachable where the embedded default runs, and the base teaching itself transfers
nothing. This stand-in knows what the base cannot read off titles: each item's genres and year. It
states the user's like-rate, the genres liked and disliked with counts, the decades watched and the
latest likes. The production teacher is an OpenAI-compatible server (`kind: openai`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pandas as pd

from trackrec.llm.prompts import HistoryItem, safe_title

TOP_GENRES = 3


def _genre_line(liked: Counter, seen: Counter, disliked: bool) -> str:
    """The genres with the highest (or lowest) like-rate among those seen at least twice."""
    rates = {g: liked[g] / n for g, n in seen.items() if n >= 2}
    if not rates:
        return ""
    order = sorted(rates, key=lambda g: (rates[g], seen[g]) if disliked else (-rates[g], -seen[g]))
    picked = [g for g in order if (rates[g] < 0.5 if disliked else rates[g] >= 0.5)][:TOP_GENRES]
    if not picked:
        return ""
    counts = ", ".join(f"{g} ({liked[g]} of {seen[g]} liked)" for g in picked)
    return f"{'Dislikes' if disliked else 'Likes'} {counts}. "


def profile_reccot(history: Sequence[HistoryItem], genres: Sequence[Sequence[str]], years: Sequence[int]) -> str:
    """A preference summary of `history`; genres[i] and years[i] belong to history[i] (year 0: unknown)."""
    liked, seen, decades = Counter(), Counter(), Counter()
    for item, item_genres, year in zip(history, genres, years, strict=True):
        for genre in item_genres:
            seen[genre] += 1
            liked[genre] += item.label
        if year:
            decades[f"{year // 10 * 10}s"] += 1
    likes = sum(item.label for item in history)
    rate = likes / len(history)
    mood = "selective" if rate < 0.45 else "easy to please" if rate > 0.7 else "mixed"
    text = f"The user liked {likes} of {len(history)} movies ({rate:.0%}): {mood}. "
    text += _genre_line(liked, seen, disliked=False) + _genre_line(liked, seen, disliked=True)
    if decades:
        text += "Mostly movies from the " + " and ".join(d for d, _ in decades.most_common(2)) + ". "
    recent = [safe_title(item.title) for item in history if item.label][-2:]
    if recent:
        text += "Recently liked: " + "; ".join(recent) + "."
    return text.strip()


class ProfileTeacher:
    """RecCoTs from item metadata (`items`: item_id, genres, year) for the histories G is shown."""

    def __init__(self, items: pd.DataFrame):
        table = items.set_index("item_id")
        self.genres = table["genres"].map(lambda g: [] if g is None else list(g)).to_dict()
        self.years = table["year"].to_dict()

    def complete_histories(self, histories: Sequence[tuple[Sequence[HistoryItem], Sequence[int]]]) -> list[str]:
        """One RecCoT per (history items, their item ids)."""
        return [
            profile_reccot(items, [self.genres.get(i, []) for i in ids], [int(self.years.get(i, 0)) for i in ids])
            for items, ids in histories
        ]
