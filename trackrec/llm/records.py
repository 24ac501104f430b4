"""From canonical sample rows to the two prompts, on the same budget-cut history."""

from __future__ import annotations

import math

import pandas as pd

from trackrec.llm.prompts import HistoryItem, fit_history, rec_prompt, reccot_prompt


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def history_items(row) -> list[HistoryItem]:
    """A sample's history; ratings only where the source has every one of them."""
    ratings = row.history_ratings
    if ratings is None or len(ratings) != len(row.history_titles) or any(_missing(r) for r in ratings):
        ratings = [None] * len(row.history_titles)
    return [
        HistoryItem(str(title), int(label), None if rating is None else float(rating))
        for title, label, rating in zip(row.history_titles, row.history_labels, ratings, strict=True)
    ]


class PromptBuilder:
    """Figure 4 prompts for sample rows. G's RecCoT prompt reads the long history: the most recent
    items whose prompt fits `history_tokens`. V's Rec prompt reads only the `validator_items` most
    recent of them beside the RecCoT, as a ranker reads a short recent window: the summary is its
    only view of the longer past (the paper's scripts show V the same items G summarised)."""

    def __init__(self, tokenizer, history_tokens: int, validator_items: int, source: str):
        self.tokenizer, self.budget, self.source = tokenizer, history_tokens, source
        self.validator_items = validator_items

    def _count(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _kept(self, row) -> list[HistoryItem]:
        where = f"{self.source}, row {row.Index}"
        return fit_history(history_items(row), reccot_prompt, self._count, self.budget, where)

    def kept_histories(self, frame: pd.DataFrame) -> list[tuple[list[HistoryItem], list[int]]]:
        """Each row's kept history items (those its prompts show) with their item ids."""
        histories = []
        for row in frame.itertuples():
            kept = self._kept(row)
            histories.append((kept, [int(i) for i in row.history_item_ids[len(row.history_item_ids) - len(kept) :]]))
        return histories

    def reccot(self, frame: pd.DataFrame) -> list[str]:
        return [reccot_prompt(self._kept(row)) for row in frame.itertuples()]

    def rec(self, frame: pd.DataFrame, reccots: list[str]) -> list[str]:
        """One Rec prompt per row, on the recent window; rows repeating a sample (its N RecCoTs) fit
        its history once."""
        kept: dict = {}
        prompts = []
        for row, reccot in zip(frame.itertuples(), reccots, strict=True):
            if row.Index not in kept:
                kept[row.Index] = self._kept(row)[-self.validator_items :]
            prompts.append(rec_prompt(kept[row.Index], row.target_title, reccot))
        return prompts
