"""Benchmark (not a test): the LLM loop's hot paths on this machine, against bounds measured in the same run.

    python bench/loop_cpu.py [--model smollm2-135m-instruct] [--prompt-tokens 200] [--new-tokens 64]

- FLOP bound: a large float32 matmul's GFLOP/s; tokens/s bound = GFLOP/s / (2 x parameters).
- Sampling tokens/s (top-p 0.9, exactly --new-tokens each) at batch 1, 16 and 64.
- Scoring prompts/s: one forward read at the Yes/No ids (ours) vs generating 10 tokens with their
  scores and reading the first step (the paper's code).
- S-DPO samples/s: LoRA training steps with N-1 = 3 rejected completions per sample.
Each measurement runs in a fresh process, so its peak memory (max RSS) is its own.
Writes results.json and a bar chart (throughput.png) to --out.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

SCORE_PROMPTS = 32


def _load(model_ref: str):
    from trackrec.llm.adapters import load_model, load_tokenizer

    tokenizer = load_tokenizer(model_ref)
    tokenizer.padding_side = "left"
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    return load_model(model_ref).eval(), tokenizer


def _prompts(tokenizer, count: int, tokens: int) -> list[str]:
    """Distinct prompts of about `tokens` tokens each."""
    words = "The user watched Heat (1995), Toy Story (1995) and liked them; summarise the taste.".split()
    return [" ".join([f"user{i}"] + words * (tokens // 20)) for i in range(count)]


def flop_bound(_model_ref, _args) -> dict:
    import torch

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    start, repeats = time.perf_counter(), 20
    for _ in range(repeats):
        a @ b
    seconds = time.perf_counter() - start
    return {"gflops": 2 * 2048**3 * repeats / seconds / 1e9}


def sampling(model_ref, args) -> dict:
    import torch

    model, tokenizer = _load(model_ref)
    result = {"params": sum(p.numel() for p in model.parameters())}
    warm = tokenizer(_prompts(tokenizer, 1, args.prompt_tokens), return_tensors="pt")
    model.generate(**warm, max_new_tokens=2, pad_token_id=tokenizer.pad_token_id)  # allocation, not the method
    for batch in (1, 16, 64):
        inputs = tokenizer(_prompts(tokenizer, batch, args.prompt_tokens), return_tensors="pt", padding=True)
        with torch.no_grad():
            start = time.perf_counter()
            out = model.generate(
                **inputs,
                do_sample=True,
                top_p=0.9,
                top_k=0,
                max_new_tokens=args.new_tokens,
                min_new_tokens=args.new_tokens,
                pad_token_id=tokenizer.pad_token_id,
            )
            seconds = time.perf_counter() - start
        result[f"batch_{batch}"] = (out.shape[1] - inputs["input_ids"].shape[1]) * batch / seconds
    return result


def scoring(model_ref, args) -> dict:
    import torch

    from trackrec.llm.hf_engine import HFEngine

    model, tokenizer = _load(model_ref)
    engine = HFEngine(model, tokenizer, batch_size=16, progress=False)
    prompts = _prompts(tokenizer, SCORE_PROMPTS, args.prompt_tokens)
    engine.yes_no_probs(prompts[:2])  # warm-up: the first call pays for allocation, not for the method
    start = time.perf_counter()
    ours = engine.yes_no_probs(prompts)
    one_forward = SCORE_PROMPTS / (time.perf_counter() - start)
    start = time.perf_counter()
    firsts = []
    for i in range(0, SCORE_PROMPTS, 16):  # the paper's way: generate, then read the first step's scores
        batch = tokenizer(
            engine.render(prompts[i : i + 16]), return_tensors="pt", padding=True, add_special_tokens=False
        )
        with torch.no_grad():
            out = model.generate(
                **batch,
                max_new_tokens=10,
                min_new_tokens=10,
                do_sample=False,
                output_scores=True,
                return_dict_in_generate=True,
                pad_token_id=tokenizer.pad_token_id,
            )
        firsts.append(torch.softmax(out.scores[0].float(), -1)[:, [engine.yes_id, engine.no_id]])
    generate10 = SCORE_PROMPTS / (time.perf_counter() - start)
    agree = float((torch.cat(firsts).numpy() - ours).__abs__().max())
    return {"one_forward": one_forward, "generate_10": generate10, "max_prob_difference": agree}


def sdpo(model_ref, args) -> dict:
    from trackrec.llm.adapters import load_model
    from trackrec.llm.config import LoRAConfig, TrainingConfig
    from trackrec.llm.training import align

    _, tokenizer = _load(model_ref)
    model = load_model(model_ref, lora=LoRAConfig(), trainable=True)
    prompts = _prompts(tokenizer, 16, args.prompt_tokens)
    completion = " ".join(["The user likes classic dramas and thrillers."] * max(1, args.new_tokens // 10))
    rows = [{"prompt": p, "chosen": completion, "rejected": [completion + f" {k}" for k in range(3)]} for p in prompts]
    config = TrainingConfig(epochs=1, batch_size=4)
    start = time.perf_counter()
    align(model, tokenizer, rows, config, beta=0.1)
    seconds = time.perf_counter() - start
    return {"samples_per_s": len(rows) / seconds}


def _measure(job: str, model_ref: str, args) -> tuple[dict, float]:
    result = globals()[job](model_ref, args)
    return result, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--prompt-tokens", type=int, default=200)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path("runs/bench/loop_cpu"))
    args = parser.parse_args()
    from trackrec.llm.base_model import resolve_model

    resolve_model(args.model)  # convert or download once, outside the timed processes
    context = multiprocessing.get_context("spawn")
    results = {}
    for job in ("flop_bound", "sampling", "scoring", "sdpo"):
        with context.Pool(1) as pool:
            value, peak = pool.apply(_measure, (job, args.model, args))
        results[job] = value | {"peak_gib": peak}
        print(f"{job}: {results[job]}", flush=True)
    bound = results["flop_bound"]["gflops"] * 1e9 / (2 * results["sampling"]["params"])
    table = Table(title=f"LLM loop on this CPU ({args.model}, {args.prompt_tokens}-token prompts)")
    for column in ("what", "throughput", "vs. reference", "peak GiB"):
        table.add_column(column)
    table.add_row(
        "matmul float32",
        f"{results['flop_bound']['gflops']:.0f} GFLOP/s",
        f"bound {bound:.0f} tokens/s",
        f"{results['flop_bound']['peak_gib']:.2f}",
    )
    for batch in (1, 16, 64):
        rate = results["sampling"][f"batch_{batch}"]
        table.add_row(
            f"sampling, batch {batch}",
            f"{rate:.0f} tokens/s",
            f"{rate / bound:.1%} of bound",
            f"{results['sampling']['peak_gib']:.2f}",
        )
    score = results["scoring"]
    table.add_row(
        "Yes/No, one forward",
        f"{score['one_forward']:.1f} prompts/s",
        f"{score['one_forward'] / score['generate_10']:.1f}x generate-10",
        f"{score['peak_gib']:.2f}",
    )
    table.add_row("Yes/No, generate 10", f"{score['generate_10']:.1f} prompts/s", "1.0x", "")
    table.add_row(
        "S-DPO (N=4), LoRA",
        f"{results['sdpo']['samples_per_s']:.2f} samples/s",
        "",
        f"{results['sdpo']['peak_gib']:.2f}",
    )
    Console().print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results | {"bound_tokens_per_s": bound}, indent=2))
    figure, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(["batch 1", "batch 16", "batch 64"], [results["sampling"][f"batch_{b}"] for b in (1, 16, 64)])
    ax.axhline(bound, color="red", linestyle="--", label="FLOP bound")
    ax.set_ylabel("sampled tokens/s")
    ax.legend()
    figure.tight_layout()
    figure.savefig(args.out / "throughput.png", dpi=90)
    print(f"wrote {args.out / 'results.json'} and throughput.png")


if __name__ == "__main__":
    main()
