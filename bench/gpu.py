"""Benchmark (not a test): the loop's hot paths on a GPU (or any device) with a random-weight model of
Qwen2.5's shape, built from its config (no download), against bounds measured in the same run.

    python bench/gpu.py [--shape qwen2.5-7b|qwen2.5-1.5b|qwen2.5-0.5b|tiny] [--device cuda] [--samples 10]

The tokenizer is the bundled SmolLM2 one (the model's vocabulary is sized to it), so prompts go
through the same chat template and code as the stages: HFEngine sampling (N completions per prompt
in one generate call) and Yes/No scoring, and one S-DPO step (trackrec's trainer, LoRA r=16, the
reference log-probs precomputed as in the align stage). Bounds: a large matmul's FLOP/s and a
device copy's bandwidth; decoding at small batch is bandwidth-bound (every step reads all weights),
prefill and training are FLOP-bound. The paper (Qwen-7B, A800): 613 ms per sample for inference,
524 ms per sample for training. Prints a table; writes results.json and bounds.png to --out.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

# Qwen2.5 shapes (hidden, intermediate, layers, heads, kv heads) from their published configs
SHAPES = {
    "qwen2.5-7b": (3584, 18944, 28, 28, 4),
    "qwen2.5-1.5b": (1536, 8960, 28, 12, 2),
    "qwen2.5-0.5b": (896, 4864, 24, 14, 2),
    "tiny": (256, 704, 4, 4, 2),
}
PAPER_MS = {"inference": 613, "training": 524}


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(device: str, function, repeat: int = 3) -> float:
    """Best wall seconds of `repeat` calls, after one warm-up."""
    function()
    best = float("inf")
    for _ in range(repeat):
        sync(device)
        start = time.perf_counter()
        function()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def matmul_flops(device: str, dtype: torch.dtype) -> float:
    n = 8192 if device.startswith("cuda") else 2048
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    return 2 * n**3 / timed(device, lambda: a @ b)


def copy_bandwidth(device: str) -> float:
    source = torch.empty(256 * 2**20, dtype=torch.float32, device=device)  # 1 GiB
    target = torch.empty_like(source)
    return 2 * source.numel() * 4 / timed(device, lambda: target.copy_(source))  # read + write


def build(shape: str, device: str, dtype: torch.dtype):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from trackrec.llm.adapters import load_tokenizer
    from trackrec.llm.base_model import SMOLLM2

    tokenizer = load_tokenizer(SMOLLM2)
    hidden, intermediate, layers, heads, kv_heads = SHAPES[shape]
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
    )
    with torch.device(device):
        model = Qwen2ForCausalLM(config).to(dtype)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model.eval(), tokenizer


def prompts_of(tokenizer, count: int, words: int) -> list[str]:
    titles = ["Heat (1995)", "Alien (1979)", "Babe (1995)", "Fargo (1996)", "Casino (1995)"]
    return [f"User {i} watched: " + ", ".join(titles[(i + j) % 5] for j in range(words)) for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="qwen2.5-7b")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--samples", type=int, default=10, help="N RecCoTs per prompt")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--history-words", type=int, default=60, help="titles per prompt (prompt length)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/gpu"))
    args = parser.parse_args()
    from peft import LoraConfig, get_peft_model

    from trackrec.llm.config import TrainingConfig
    from trackrec.llm.hf_engine import HFEngine
    from trackrec.llm.training import align

    cuda = args.device.startswith("cuda")
    dtype = torch.bfloat16 if cuda else torch.float32
    device_name = torch.cuda.get_device_name() if cuda else f"CPU ({torch.get_num_threads()} threads)"
    flops, bandwidth = matmul_flops(args.device, dtype), copy_bandwidth(args.device)
    model, tokenizer = build(args.shape, args.device, dtype)
    params = sum(p.numel() for p in model.parameters())
    # the embedding table is a lookup, not a matmul: FLOPs count the layers and the output head
    head = model.lm_head.weight.numel()
    body = params - head - model.get_input_embeddings().weight.numel()
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    engine = HFEngine(model, tokenizer, batch_size=args.prompts, progress=False)
    prompts = prompts_of(tokenizer, args.prompts, args.history_words)
    prompt_tokens = sum(len(ids) for ids in tokenizer(engine.render(prompts))["input_ids"]) / len(prompts)

    def sample():  # exactly new-tokens each: eos never ends a random model's text early enough to matter
        engine.sample(prompts, args.samples, 1.0, 0.9, args.new_tokens, seed=0)

    sampling_s = timed(args.device, sample, repeat=1)
    tokens = args.prompts * args.samples * args.new_tokens
    scoring_s = timed(args.device, lambda: engine.yes_no_probs(prompts))

    model.train()
    lora = LoraConfig(
        r=16, lora_alpha=32, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], task_type="CAUSAL_LM"
    )
    policy = get_peft_model(model, lora)
    reccot = " ".join(["The user enjoys tense crime dramas and classic science fiction."] * 4)
    rows = [{"prompt": p, "chosen": reccot, "rejected": [reccot[::-1]] * (args.samples - 1)} for p in prompts]
    training = TrainingConfig(batch_size=2, epochs=1, learning_rate=1e-5)
    start = time.perf_counter()
    align(policy, tokenizer, rows, training, beta=0.1)
    sync(args.device)
    training_s = time.perf_counter() - start

    completion_tokens = len(tokenizer(reccot)["input_ids"])
    train_tokens = args.samples * (prompt_tokens + completion_tokens)  # chosen + N-1 rejected, one sample
    steps = args.new_tokens  # one weight read per decoding step, for the whole batch
    results = {
        "device": device_name,
        "shape": args.shape,
        "parameters": params,
        "matmul_tflops": flops / 1e12,
        "copy_gb_s": bandwidth / 1e9,
        "sampling_tokens_per_s": tokens / sampling_s,
        "sampling_ms_per_sample": 1e3 * sampling_s / args.prompts,
        "sampling_bound_ms_per_sample": 1e3
        * max(steps * weight_bytes / bandwidth, 2 * params * tokens / flops)
        / args.prompts,
        "scoring_prompts_per_s": args.prompts / scoring_s,
        "scoring_bound_prompts_per_s": flops / (2 * (body * prompt_tokens + head)),  # logits of the last token
        "sdpo_ms_per_sample": 1e3 * training_s / args.prompts,
        # forward for the reference, forward + backward (activation grads: about 2x forward) for the policy
        "sdpo_bound_ms_per_sample": 1e3 * (2 + 2 + 2) * (body + head) * train_tokens / flops,
    }
    table = Table(title=f"{args.shape} ({params / 1e9:.2f} B parameters, random weights) on {device_name}")
    for column in ("measure", "measured", "bound", "time / bound's time", "paper (Qwen-7B, A800)"):
        table.add_column(column, justify="right")
    table.add_row("matmul TFLOP/s", f"{results['matmul_tflops']:.1f}", "", "", "")
    table.add_row("copy GB/s", f"{results['copy_gb_s']:.0f}", "", "", "")
    comparisons = [
        ("sampling ms/sample", "sampling_ms_per_sample", "sampling_bound_ms_per_sample", PAPER_MS["inference"]),
        ("S-DPO ms/sample", "sdpo_ms_per_sample", "sdpo_bound_ms_per_sample", PAPER_MS["training"]),
    ]
    for label, measured, bound, paper in comparisons:
        ratio = results[measured] / results[bound]
        table.add_row(label, f"{results[measured]:.0f}", f"{results[bound]:.0f}", f"{ratio:.1f}x", str(paper))
    scoring_ratio = results["scoring_bound_prompts_per_s"] / results["scoring_prompts_per_s"]
    table.add_row(
        "scoring prompts/s",
        f"{results['scoring_prompts_per_s']:.1f}",
        f"{results['scoring_bound_prompts_per_s']:.1f}",
        f"{scoring_ratio:.1f}x",
        "",
    )
    table.add_row("sampling tokens/s", f"{results['sampling_tokens_per_s']:.0f}", "", "", "")
    Console().print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results | vars(args) | {"out": str(args.out)}, indent=2))
    figure, axis = plt.subplots(figsize=(6, 3.5))
    labels = ["sampling", "S-DPO"]
    measured = [results["sampling_ms_per_sample"], results["sdpo_ms_per_sample"]]
    bounds = [results["sampling_bound_ms_per_sample"], results["sdpo_bound_ms_per_sample"]]
    axis.bar([0, 1], measured, 0.35, label="measured")
    axis.bar([0.35, 1.35], bounds, 0.35, label="bound")
    axis.bar([0.7, 1.7], [PAPER_MS["inference"], PAPER_MS["training"]], 0.35, label="paper (A800)")
    axis.set_xticks([0.35, 1.35], labels)
    axis.set(ylabel="ms per sample", yscale="log", title=f"{args.shape} on {device_name}")
    axis.legend()
    figure.savefig(args.out / "bounds.png", dpi=120, bbox_inches="tight")


if __name__ == "__main__":
    main()
