"""The vLLM backend against the Hugging Face reference, wherever vllm is importable (a GPU image).

vllm is GPU-only: on a CPU machine this module skips with its reason."""

import numpy as np
import pytest

vllm = pytest.importorskip("vllm", reason="vllm is the GPU-only `infer` extra; the HF engine is the reference")
torch = pytest.importorskip("torch")


@pytest.fixture
def engines(tiny_lm_dir):
    if not torch.cuda.is_available():
        pytest.skip("vLLM needs a GPU")
    from trackrec.llm.adapters import load_model, load_tokenizer
    from trackrec.llm.config import VLLMConfig
    from trackrec.llm.hf_engine import HFEngine
    from trackrec.llm.vllm_engine import VLLMEngine

    tokenizer = load_tokenizer(str(tiny_lm_dir))
    hf = HFEngine(load_model(str(tiny_lm_dir), None).to("cuda"), tokenizer, batch_size=4, progress=False)
    fast = VLLMEngine(tiny_lm_dir, None, tokenizer, VLLMConfig(tensor_parallel_size=1, gpu_memory_utilization=0.3))
    return hf, fast


PROMPTS = ["The user liked Heat (1995) and Alien (1979).", "The user disliked Babe (1995)."]


def test_greedy_and_yes_no_scores_match_the_reference(engines):
    hf, fast = engines
    assert fast.greedy(PROMPTS, 8) == hf.greedy(PROMPTS, 8)
    reference, served = hf.yes_no_probs(PROMPTS), fast.yes_no_probs(PROMPTS)
    normalised = reference / reference.sum(1, keepdims=True)
    np.testing.assert_allclose(served / served.sum(1, keepdims=True), normalised, atol=2e-3)


def test_sampling_returns_n_completions_per_prompt_in_one_request(engines):
    _, fast = engines
    drawn = fast.sample(PROMPTS, n=4, temperature=1.0, top_p=0.9, max_new_tokens=8, seed=0)
    assert [len(row) for row in drawn] == [4, 4]
    assert drawn == fast.sample(PROMPTS, n=4, temperature=1.0, top_p=0.9, max_new_tokens=8, seed=0)  # seeded
