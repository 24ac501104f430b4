"""A synthetic task where the right RecCoT is knowable: each user likes exactly one genre, and the
genre is the first word of every title. A scripted teacher states the user's liked genre."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen2Tokenizer

from tests.llm.conftest import CHATML
from tests.synthetic import GENRES, collm_rows, write_collm
from trackrec.llm.prompts import HistoryItem, rec_prompt, reccot_prompt

_ITEM = re.compile(r"\['(\w+) Movie \d+ \(\d+\)', ([01])\]")


def genre_teacher(prompt: str) -> str:
    """The genre the user liked most often in the prompt's history."""
    liked = Counter(genre for genre, label in _ITEM.findall(prompt) if label == "1")
    return liked.most_common(1)[0][0] if liked else GENRES[0]


def write_genre_data(root: Path, n_users: int) -> Path:
    rows = collm_rows(n_users=n_users, n_items=40, per_user=24, seed=1, genre_titles=True, noise=0.0)
    return write_collm(root, rows, n_items=40, genre_titles=True)


def write_genre_model(folder: Path) -> Path:
    """A small random Qwen2 with a tokenizer trained on this task's prompts (genre words are single tokens)."""
    items = [HistoryItem(f"{g} Movie {i} ({1960 + i})", i % 2) for i in range(1, 40) for g in GENRES]
    corpus = [reccot_prompt(items[k : k + 8]) for k in range(0, len(items), 8)]
    corpus += [rec_prompt(items[k : k + 8], items[k].title, g) for k in range(0, len(items), 8) for g in GENRES]
    tokenizer = Qwen2Tokenizer().train_new_from_iterator(corpus * 5 + list(GENRES) * 50, vocab_size=600)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.chat_template, tokenizer.eos_token = CHATML, "<|im_end|>"
    tokenizer.save_pretrained(folder)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
    )
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(folder)
    return folder
