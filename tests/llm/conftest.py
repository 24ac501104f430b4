"""A tiny random causal LM with a locally trained tokenizer, saved and reloaded through from_pretrained."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2Config, Qwen2ForCausalLM, Qwen2Tokenizer

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = [
    "Here is a list of movies that a user has watched. User's watching history: ['Movie 1 (1990)', 1]",
    "The user likes Action and Comedy movies and dislikes Horror. Yes No Yes. No.",
    "Whether the user will like the target movie? Only output the result (Yes or No) <summary> </summary>",
]


def save_tiny_lm(folder, corpus: list[str], vocab_size: int, hidden_size: int, logit_scale: float = 1.0):
    """A random 2-layer Qwen2 with a tokenizer trained on `corpus`, saved for from_pretrained.

    logit_scale multiplies the final norm: small tied embeddings cap the logits near +-1, a
    trained model's range is wider (a task that must be learnt in seconds needs it).
    """
    tokenizer = Qwen2Tokenizer().train_new_from_iterator(corpus, vocab_size=vocab_size)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.chat_template = CHATML
    tokenizer.eos_token = "<|im_end|>"  # end of the assistant turn, as in instruct models
    tokenizer.save_pretrained(folder)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    with torch.no_grad():
        model.model.norm.weight.mul_(logit_scale)
    model.save_pretrained(folder)


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-lm")
    save_tiny_lm(folder, CORPUS * 20, vocab_size=400, hidden_size=32)
    return folder


@pytest.fixture
def tiny_lm(tiny_lm_dir):
    return AutoModelForCausalLM.from_pretrained(tiny_lm_dir), AutoTokenizer.from_pretrained(tiny_lm_dir)
