"""The paper's Figure 4 prompts, with item titles treated as data.

`reccot_prompt` asks G for a preference summary; `rec_prompt` asks V for Yes/No on a target given
the history and a RecCoT in a <summary> block. History items render as ['Title (Year)', RATING]
where the source has ratings (RATING>3 means like, as in Figure 4) and as ['Title (Year)', 1|0]
(1 liked, 0 disliked) where it only has labels. Titles are quoted, stripped of control characters,
and their angle brackets replaced, so a hostile title cannot close the <summary> block or open a
chat turn. `fit_history` keeps the most recent items whose prompt fits a token budget.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from trackrec.errors import DataError

MAX_TITLE_CHARS = 200
_RATING_FORMAT = "[MOVIE NAME (YEAR), RATING], where RATING>3 means like and RATING<=3 means dislike"
_LABEL_FORMAT = "[MOVIE NAME (YEAR), LIKE], where LIKE=1 means like and LIKE=0 means dislike"
_ANGLE = str.maketrans({"<": "‹", ">": "›"})


@dataclass(frozen=True)
class HistoryItem:
    title: str
    label: int
    rating: float | None = None


def neutralised(text: str) -> str:
    """Visible characters on one line, no markup brackets: data that cannot act as chat or block markup."""
    visible = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in str(text))
    return " ".join(visible.translate(_ANGLE).split())


def safe_title(title: str) -> str:
    return neutralised(title)[:MAX_TITLE_CHARS]


def quoted(title: str) -> str:
    # JSON string quoting escapes quotes and backslashes; Figure 4 shows single-quoted titles.
    return "'" + json.dumps(safe_title(title), ensure_ascii=False)[1:-1].replace("'", "\\'") + "'"


def _render_item(item: HistoryItem, with_ratings: bool) -> str:
    score = f"{item.rating:g}" if with_ratings else str(int(item.label))
    return f"[{quoted(item.title)}, {score}]"


def _render_history(items: Sequence[HistoryItem], where: str) -> tuple[str, str]:
    if not items:
        raise DataError(where, "empty history: the prompt needs at least one earlier interaction")
    with_ratings = all(i.rating is not None for i in items)
    return (_RATING_FORMAT if with_ratings else _LABEL_FORMAT), ", ".join(_render_item(i, with_ratings) for i in items)


def reccot_prompt(history: Sequence[HistoryItem]) -> str:
    fmt, items = _render_history(history, "reccot prompt")
    return (
        f"Here is a list of movies that a user has watched in the format of {fmt}. "
        f"User's watching history: {items}\n Please summarize the user's movie watch preference within 200 words."
    )


def rec_prompt(history: Sequence[HistoryItem], target_title: str, reccot: str) -> str:
    fmt, items = _render_history(history, "rec prompt")
    return (
        f"Here is a list of movies that a user has watched in the format of {fmt}, identify whether the user "
        f'will like the target movie by answering "Yes." or "No.". User\'s watching history {items}, '
        f"Whether the user will like the target movie {quoted(target_title)}? "
        "And we also provide the summary (between <summary> and </summary>) of user's movie watch preference "
        f"for your reference. <summary>{neutralised(reccot)}</summary> Only output the result (Yes or No)"
    )


def fit_history(
    history: Sequence[HistoryItem],
    build: Callable[[Sequence[HistoryItem]], str],
    count_tokens: Callable[[str], int],
    budget: int,
    where: str = "prompt",
) -> list[HistoryItem]:
    """The most recent history items whose prompt `build(items)` fits `budget` tokens.

    Raises DataError when the history is empty or not even the last item fits.
    """
    if not history:
        raise DataError(where, "empty history: nothing to summarise")
    low, high = 1, len(history)  # binary search on how many recent items to keep
    if count_tokens(build(history[-1:])) > budget:
        raise DataError(where, f"prompt is longer than the budget of {budget} tokens even with one history item")
    while low < high:
        middle = (low + high + 1) // 2
        if count_tokens(build(history[-middle:])) <= budget:
            low = middle
        else:
            high = middle - 1
    return list(history[-low:])
