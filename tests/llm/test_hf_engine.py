import numpy as np
import pytest
import torch

from trackrec.errors import DataError
from trackrec.llm.hf_engine import HFEngine


@pytest.fixture
def sharp_lm(tiny_lm):
    """The tiny model with attention that depends on positions: random q/k weights are too small for
    rotary positions to move the scores, so a wrong position id would go unnoticed."""
    model, tokenizer = tiny_lm
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "q_proj" in name or "k_proj" in name:
                parameter.mul_(30)
    return model, tokenizer


PROMPTS = ["Here is a list of movies.", "The user likes Action movies and dislikes Horror movies a lot.", "Yes or No?"]


def test_sample_computes_each_prompt_once_for_its_n_completions(tiny_lm):
    model, tokenizer = tiny_lm
    rows = []
    model.register_forward_pre_hook(lambda _, args, kwargs: rows.append(kwargs["input_ids"].shape), with_kwargs=True)
    engine = HFEngine(model, tokenizer, batch_size=8, progress=False)
    out = engine.sample(PROMPTS, n=4, temperature=1.0, top_p=0.9, max_new_tokens=6, seed=1)
    assert [len(samples) for samples in out] == [4, 4, 4]
    prompt_forward, *steps = rows
    assert prompt_forward[0] == 3 and prompt_forward[1] > 1  # the prompts once, not 4 times
    assert all(shape == (12, 1) for shape in steps)  # then one token per completion and step
    assert out == engine.sample(PROMPTS, n=4, temperature=1.0, top_p=0.9, max_new_tokens=6, seed=1)


def test_shared_prompt_cache_gives_the_unshared_next_token(sharp_lm):
    """Prompts of different lengths (left padding), cache repeated n = 2 times: the last prompt token
    over the shared cache gives the logits of each prompt computed alone, unpadded."""
    model, tokenizer = sharp_lm
    engine = HFEngine(model, tokenizer, progress=False)
    batch = engine._encode(PROMPTS, 1)
    cache = engine._cache_of(batch["input_ids"][:, :-1], batch["attention_mask"][:, :-1])
    cache.batch_repeat_interleave(2)
    mask = batch["attention_mask"].repeat_interleave(2, dim=0)
    with torch.no_grad():
        shared = model(
            input_ids=batch["input_ids"][:, -1:].repeat_interleave(2, dim=0),
            attention_mask=mask,
            position_ids=mask.sum(1, keepdim=True) - 1,
            past_key_values=cache,
        ).logits[:, -1]
    for i, prompt in enumerate(PROMPTS):
        ids = tokenizer(engine.render([prompt]), return_tensors="pt", add_special_tokens=False).input_ids
        with torch.no_grad():
            alone = model(ids).logits[0, -1]
        for copy in (2 * i, 2 * i + 1):
            torch.testing.assert_close(shared[copy], alone, atol=1e-5, rtol=1e-4)


def test_greedy_does_not_depend_on_batching(tiny_lm):
    engine = HFEngine(*tiny_lm, batch_size=8, progress=False)
    batched = engine.greedy(PROMPTS, max_new_tokens=5)
    engine.batch_size = 1
    assert batched == engine.greedy(PROMPTS, max_new_tokens=5)


def test_yes_no_probs_share_common_prefixes_and_match_unpadded_scoring(sharp_lm):
    model, tokenizer = sharp_lm
    engine = HFEngine(model, tokenizer, batch_size=8, progress=False)
    history = "Here is a list of movies. The user likes Action movies and dislikes Horror movies a lot. "
    prompts = [history + ending for ending in ("Yes", "No.", "Action and Comedy")] + PROMPTS  # one group of 3
    tokens = []

    def count(_, args, kwargs):  # real tokens each forward computes
        tokens.append(int(kwargs["attention_mask"][:, -kwargs["input_ids"].shape[1] :].sum()))

    hook = model.register_forward_pre_hook(count, with_kwargs=True)
    probs = engine.yes_no_probs(prompts)
    hook.remove()
    full = sum(len(ids) for ids in tokenizer(engine.render(prompts), add_special_tokens=False)["input_ids"])
    assert probs.shape == (6, 2) and len(tokens) == 2 and sum(tokens) < full  # the shared history once
    yes, no = (tokenizer.encode(w, add_special_tokens=False)[0] for w in ("Yes", "No"))
    for prompt, row in zip(prompts, probs, strict=True):
        ids = tokenizer(engine.render([prompt])[0], return_tensors="pt", add_special_tokens=False).input_ids
        with torch.no_grad():
            expected = torch.softmax(model(ids).logits[0, -1], -1)[[yes, no]].numpy()
        np.testing.assert_allclose(row, expected, rtol=1e-4, atol=1e-6)


def test_prompts_group_by_the_prefix_they_share():
    from trackrec.llm.hf_engine import shared_prefixes

    a, b = [1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 9]
    assert shared_prefixes([a, b, [7, 8], [1, 2, 3, 4, 5, 6]]) == [(0, 4), (2, 1), (3, 5)]
    assert shared_prefixes([a, a]) == [(0, 5)]  # equal prompts still keep their last token each


def test_prompt_longer_than_context_is_explained(tiny_lm):
    engine = HFEngine(*tiny_lm, progress=False)
    with pytest.raises(DataError, match=r"exceed the model's context of 512"):
        engine.yes_no_probs(["movies " * 600])


def test_tokenizer_without_chat_template_is_refused(tiny_lm):
    model, tokenizer = tiny_lm
    tokenizer.chat_template = None
    with pytest.raises(ValueError, match="no chat template"):
        HFEngine(model, tokenizer)


def test_sample_says_which_completions_ended(tiny_lm):
    model, tokenizer = tiny_lm
    engine = HFEngine(model, tokenizer, batch_size=8, progress=False)
    nearly_greedy = {"n": 2, "temperature": 1.0, "top_p": 1e-6, "max_new_tokens": 3, "seed": 0}
    cut = engine.sample(PROMPTS[:1], **nearly_greedy)[0]
    assert [c.finished for c in cut] == [False, False]  # the random model does not end within 3 tokens
    ids = tokenizer(engine.render(PROMPTS[:1]), return_tensors="pt", add_special_tokens=False).input_ids
    with torch.no_grad():
        first = int(model(ids).logits[0, -1].argmax())
    model.generation_config.eos_token_id = first  # now the very first token ends the turn
    ended = engine.sample(PROMPTS[:1], **nearly_greedy)[0]
    assert [c.finished for c in ended] == [True, True]


def test_completion_logprobs_match_unpadded_scoring_and_give_no_divergence_from_itself(sharp_lm):
    model, tokenizer = sharp_lm
    engine = HFEngine(model, tokenizer, batch_size=2, progress=False)
    completions = ["The user likes Action", "No.", "Yes or No? Yes"]
    sums, counts = engine.completion_logprobs(PROMPTS, completions)
    for prompt, completion, total, count in zip(PROMPTS, completions, sums, counts, strict=True):
        prompt_ids = tokenizer(engine.render([prompt])[0], add_special_tokens=False).input_ids
        answer = tokenizer(completion, add_special_tokens=False).input_ids
        ids = torch.tensor([prompt_ids + answer])
        with torch.no_grad():
            logps = torch.log_softmax(model(ids).logits[0], -1)
        expected = sum(float(logps[len(prompt_ids) - 1 + k, token]) for k, token in enumerate(answer))
        assert count == len(answer) and total == pytest.approx(expected, rel=1e-4, abs=1e-4)
    again, _ = HFEngine(model, tokenizer, batch_size=3, progress=False).completion_logprobs(PROMPTS, completions)
    assert float((sums - again).sum() / counts.sum()) == pytest.approx(0.0, abs=1e-5)  # KL of G to itself
