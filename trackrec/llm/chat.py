"""How a prompt reaches a model: one user turn through the tokenizer's chat template, the assistant
turn opened. The engines, the trainers and the teacher's requests all go through here, so the text a
model is trained on is the text it is asked."""

from __future__ import annotations


def user_turn(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


def render(tokenizer, prompt: str) -> str:
    return tokenizer.apply_chat_template(user_turn(prompt), tokenize=False, add_generation_prompt=True)


def prompt_ids(tokenizer, prompt: str) -> list[int]:
    return list(
        tokenizer.apply_chat_template(user_turn(prompt), tokenize=True, add_generation_prompt=True, return_dict=False)
    )
