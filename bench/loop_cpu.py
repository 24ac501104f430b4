"""Benchmark (not a test): the LLM loop's hot paths on this machine, against bounds measured in the same run.

    python bench/loop_cpu.py [--model smollm2-135m-instruct] [--prompt-tokens 200] [--new-tokens 64]
                             [--config configs/local.yaml] [--vllm-python .venv-vllm/bin/python]
    python bench/loop_cpu.py --demo-run runs/local   # only: the last run's task table, the matmul rate

- FLOP bound: a large float32 matmul's GFLOP/s; tokens/s bound = GFLOP/s / (2 x parameters).
- Sampling tokens/s (top-p 0.9, exactly --new-tokens each) at batch 1, 16 and 64.
- Scoring prompts/s: one forward read at the Yes/No ids (ours) vs generating 10 tokens with their
  scores and reading the first step (the paper's code).
- S-DPO samples/s: LoRA training steps with N-1 = 3 rejected completions per sample.
- Engines side by side, the stages' own calls: n=4 sampling of 16 prompts (tokens/s) and Yes/No
  scoring of 32 prompts (prompts/s), HFEngine here and VLLMEngine on vLLM's CPU build (run in
  .venv-vllm, which `make setup` builds for the tests and this bench); skipped when that is absent.
- Stages: sample, score, align, greedy, rectune and evaluate called in-process on the demo's inputs
  (--config's data and llm sections, fresh adapters as G and V), each wall time against the compute
  bound of what it did: FLOPs / the matmul rate, FLOPs = 2 x non-embedding parameters per token
  forwarded (a prompt once per sample, a shared Rec-prompt prefix once per group, generated
  tokens), training counts the reference forward (align) and the backward as one forward each.
- --demo-run: the task table of the last `trackrec run` in that folder (`make demo`'s) beside this
  machine's matmul rate, so a reader can set the demo's time against their machine's (README: how
  it moved when only the matmul rate changed).
Each measurement runs in a fresh process, so its peak memory (max RSS) is its own. Run it alone on
the machine: a second busy process halves every number on 2 cores.
Writes results.json and a bar chart (throughput.png) to --out.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

SCORE_PROMPTS = 32
ENGINE_PROMPTS, ENGINE_N = 16, 4


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


def engines(model_ref, args, backend: str = "hf") -> dict:
    """The engine calls the sample and score stages make, on one backend."""
    from trackrec.llm.adapters import load_tokenizer
    from trackrec.llm.base_model import resolve_model
    from trackrec.llm.config import VLLMConfig

    tokenizer = load_tokenizer(model_ref)
    if backend == "vllm":
        from trackrec.llm.vllm_engine import VLLMEngine

        start = time.perf_counter()
        engine = VLLMEngine(resolve_model(model_ref), None, tokenizer, VLLMConfig(max_model_len=1024))
        load = time.perf_counter() - start
    else:
        from trackrec.llm.hf_engine import HFEngine

        model, _ = _load(model_ref)
        engine, load = HFEngine(model, tokenizer, batch_size=ENGINE_PROMPTS, progress=False), 0.0
    prompts = _prompts(tokenizer, ENGINE_PROMPTS, args.prompt_tokens)
    engine.yes_no_probs(prompts[:2])  # warm-up
    start = time.perf_counter()
    drawn = engine.sample(prompts, ENGINE_N, 1.0, 0.9, args.new_tokens, seed=0)
    seconds = time.perf_counter() - start
    generated = sum(len(tokenizer(c.text, add_special_tokens=False)["input_ids"]) for row in drawn for c in row)
    scored = _prompts(tokenizer, SCORE_PROMPTS, args.prompt_tokens)
    start = time.perf_counter()
    engine.yes_no_probs(scored)
    return {
        "load_s": load,
        "sample_tokens_per_s": generated / seconds,
        "score_prompts_per_s": SCORE_PROMPTS / (time.perf_counter() - start),
    }


def engines_vllm(model_ref, args) -> dict:
    """`engines` on vLLM's CPU build, in its own environment (its pins differ from this one's)."""
    python = Path(args.vllm_python)
    if not python.is_file():
        return {"skipped": f"{python} not found: `make test` or `make bench` builds it"}
    command = [str(python), __file__, "--job", "engines-vllm", "--model", model_ref]
    command += ["--prompt-tokens", str(args.prompt_tokens), "--new-tokens", str(args.new_tokens)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return {"skipped": f"vLLM run failed: {done.stderr.strip().splitlines()[-1:]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _forwarded(tokenizer, texts) -> int:
    return sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)


def _forwarded_shared(tokenizer, texts) -> int:
    """Tokens of prompts whose shared prefixes are computed once (HFEngine.yes_no_probs)."""
    from trackrec.llm.hf_engine import group_of_each, shared_prefixes

    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    groups = shared_prefixes(ids)
    own = sum(len(prompt) - groups[g][1] for prompt, g in zip(ids, group_of_each(groups, len(ids)), strict=True))
    return own + sum(shared for _, shared in groups)


def stages(model_ref, args) -> dict:
    """Each LLM stage function in-process on the demo's inputs; wall seconds and tokens it processed."""
    import pandas as pd

    from trackrec.config import load_config
    from trackrec.llm.adapters import load_model, load_tokenizer
    from trackrec.llm.hf_engine import HFEngine
    from trackrec.run_config import RunConfig
    from trackrec.stages.align import align
    from trackrec.stages.evaluate import evaluate
    from trackrec.stages.greedy import greedy
    from trackrec.stages.outputs import Greedy, Sampled, Scored, Selected, Trained
    from trackrec.stages.prepare_data import prepare_data
    from trackrec.stages.rectune import rectune
    from trackrec.stages.sample import sample
    from trackrec.stages.score import score
    from trackrec.stages.select_samples import select_samples

    run = load_config(args.config, RunConfig)
    llm, work = run.llm, Path(tempfile.mkdtemp(prefix="trackrec-bench-"))
    prepare_data(run.data, work / "data")
    select_samples(work / "data", llm.subset, work / "samples")
    fresh = load_model(llm.base, lora=llm.lora, trainable=True)  # G0 and V0: distillation is not measured here
    fresh.save_pretrained(Trained(work / "g0").adapter)
    fresh.save_pretrained(Trained(work / "v0").adapter)
    tokenizer = load_tokenizer(llm.base)
    render = HFEngine(fresh, tokenizer, progress=False).render
    calls = {
        "sample": lambda: sample(work / "samples", work / "g0", llm, work / "sampled", 0, progress=False),
        "score": lambda: score(work / "samples", work / "sampled", work / "v0", llm, work / "scored", progress=False),
        "align": lambda: align(work / "scored", work / "g0", llm, work / "g1"),
        "greedy": lambda: greedy(work / "samples", work / "g1", llm, work / "greedy", progress=False),
        "rectune": lambda: rectune(work / "samples", work / "greedy", work / "v0", llm, work / "v1"),
        "evaluate": lambda: evaluate(
            work / "samples", work / "greedy", work / "v1", llm, work / "evaluated", progress=False
        ),
    }
    seconds = {}
    for name, call in calls.items():
        start = time.perf_counter()
        call()
        seconds[name] = time.perf_counter() - start
    sampled = pd.read_parquet(Sampled(work / "sampled").table)
    preferences = pd.read_parquet(Scored(work / "scored").preferences)
    reccots = pd.read_parquet(Greedy(work / "greedy").table)
    train, evaluation = (pd.read_parquet(Selected(work / "samples").split(split)) for split in ("train", "eval"))
    from trackrec.stages.llm_common import prompt_builder

    builder = prompt_builder(llm, tokenizer, "bench")
    rec_train = builder.rec(train, reccots[reccots.split == "train"].reccot.tolist())
    rec_eval = builder.rec(evaluation, reccots[reccots.split == "eval"].reccot.tolist())
    rec_scored = builder.rec(train.loc[train.index.repeat(llm.generation.samples)], sum(sampled.reccots.map(list), []))
    greedy_prompts = builder.reccot(train) + builder.reccot(evaluation)
    preference_tokens = _forwarded(tokenizer, render(list(preferences.prompt))) + _forwarded(
        tokenizer, list(preferences.chosen) + sum(preferences.rejected.map(list), [])
    )
    tokens = {  # tokens through the model; the factor: forward passes (training: backward counted as one more)
        "sample": (
            _forwarded(tokenizer, render(list(sampled.prompt)))
            + _forwarded(tokenizer, sum(sampled.reccots.map(list), [])),
            1,
        ),
        "score": (_forwarded_shared(tokenizer, render(rec_scored)), 1),
        "align": (preference_tokens, 3),  # reference forward, policy forward, backward
        "greedy": (_forwarded(tokenizer, render(greedy_prompts)) + _forwarded(tokenizer, reccots.reccot), 1),
        "rectune": (_forwarded(tokenizer, render(rec_train)), 2),
        "evaluate": (_forwarded(tokenizer, render(rec_eval)), 1),
    }
    params = sum(p.numel() for n, p in fresh.named_parameters() if "embed" not in n and "lora" not in n)
    return {
        name: {"seconds": seconds[name], "tokens": count, "flops": 2 * params * count * passes}
        for name, (count, passes) in tokens.items()
    }


def _measure(job: str, model_ref: str, args) -> tuple[dict, float]:
    result = globals()[job](model_ref, args) if job != "engines_vllm" else engines_vllm(model_ref, args)
    return result, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--prompt-tokens", type=int, default=200)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path("runs/bench/loop_cpu"))
    parser.add_argument("--config", type=Path, default=Path("configs/local.yaml"), help="run config of the stages")
    parser.add_argument("--vllm-python", default=".venv-vllm/bin/python", help="python of vLLM's CPU build")
    parser.add_argument("--demo-run", type=Path, help="only: that run folder's task table beside the matmul rate")
    parser.add_argument("--job", choices=["engines-vllm"], help=argparse.SUPPRESS)  # the vLLM child process
    args = parser.parse_args()
    if args.demo_run is not None:
        demo_table(args.demo_run)
        return
    if args.job == "engines-vllm":
        result = engines(args.model, args, "vllm")
        print(json.dumps(result))
        return
    from trackrec.llm.base_model import resolve_model

    resolve_model(args.model)  # convert or download once, outside the timed processes
    context = multiprocessing.get_context("spawn")
    results = {}
    for job in ("flop_bound", "sampling", "scoring", "sdpo", "engines", "engines_vllm", "stages"):
        with context.Pool(1) as pool:
            value, peak = pool.apply(_measure, (job, args.model, args))
        # vLLM's model lives in its worker processes, whose memory this process does not see
        results[job] = value | {"peak_gib": None if job == "engines_vllm" else peak}
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
    Console().print(engine_table(results, bound))
    Console().print(stage_table(results["stages"], results["flop_bound"]["gflops"]))
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


def demo_table(run_dir: Path) -> None:
    """The last run's tasks (latest.json) and this machine's matmul rate, measured now in a process
    of its own: run it right after the demo, on the same quiet machine."""
    from trackrec.cli import task_table

    index = run_dir / "latest.json"
    if not index.is_file():
        raise SystemExit(f"{index}: no finished run here; run `make demo` first")
    tasks = json.loads(index.read_text())["tasks"]
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        gflops = pool.apply(_measure, ("flop_bound", None, None))[0]["gflops"]
    console = Console()
    console.print(task_table(tasks))
    total, startup = (sum(task[key] for task in tasks) for key in ("seconds", "startup_seconds"))
    console.print(
        f"matmul float32 (2048x2048) on this machine now: {gflops:.0f} GFLOP/s. The run's tasks: {total:.0f} s "
        f"({total - startup:.0f} s work, {startup:.0f} s start-up)."
    )


def engine_table(results: dict, bound: float) -> Table:
    table = Table(title=f"Engines, the stages' calls: {ENGINE_PROMPTS} prompts x n={ENGINE_N}; {SCORE_PROMPTS} Yes/No")
    for column in ("engine", "load s", "sampling tokens/s", "of bound", "Yes/No prompts/s", "peak GiB"):
        table.add_column(column, justify="right")
    for name, key in (("HF (this venv)", "engines"), ("vLLM CPU (.venv-vllm)", "engines_vllm")):
        row = results[key]
        if "skipped" in row:
            table.add_row(name, row["skipped"], "", "", "", "")
            continue
        rate = row["sample_tokens_per_s"]
        table.add_row(
            name,
            f"{row['load_s']:.1f}",
            f"{rate:.0f}",
            f"{rate / bound:.0%}",
            f"{row['score_prompts_per_s']:.1f}",
            "n/a (workers)" if row["peak_gib"] is None else f"{row['peak_gib']:.2f}",
        )
    return table


def stage_table(stages: dict, gflops: float) -> Table:
    table = Table(title="LLM stages in-process, wall vs the compute they did (FLOPs / matmul rate)")
    for column in ("stage", "tokens", "TFLOP", "bound s", "wall s", "wall / bound"):
        table.add_column(column, justify="right")
    for name, row in stages.items():
        if name == "peak_gib":
            continue
        bound = row["flops"] / (gflops * 1e9)
        table.add_row(
            name, f"{row['tokens']:,}", f"{row['flops'] / 1e12:.2f}", f"{bound:.1f}", f"{row['seconds']:.1f}",
            f"{row['seconds'] / bound:.1f}x",
        )  # fmt: skip
    return table


if __name__ == "__main__":
    main()
