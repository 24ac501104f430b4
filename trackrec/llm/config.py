"""The llm section of the run config, every part of it: what G and V are, how the loop samples,
generates and trains. Plain dataclasses, importable without torch, so a task that only reads the
config starts in a second."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from trackrec.config import PROBABILITY, SEED, Config, Range, field
from trackrec.errors import ConfigError
from trackrec.llm.base_model import SMOLLM2, resolve_model
from trackrec.llm.distributed import pod_gpus
from trackrec.llm.prompts import MAX_TITLE_CHARS
from trackrec.llm.reward import PreferenceMode
from trackrec.reach import path_problems, url_problems


@dataclass
class TeacherConfig(Config):
    kind: Literal["openai", "hf", "profile"] = field(
        "openai",
        help="openai: an OpenAI-compatible server; hf: a local model; profile: the offline stand-in that "
        "writes each RecCoT from the history's genres, years and likes (no LLM)",
    )
    model: str = field("gpt-4o", help="model name the endpoint serves, or (hf) a base model reference")
    endpoint: str | None = field(None, help="base URL up to /v1, e.g. http://vllm:8000/v1 (kind openai)")
    api_key_env: str = field("TRACKREC_TEACHER_API_KEY", help="environment variable holding the API key, if any")
    timeout_s: float = field(60.0, help="seconds to wait for one answer", range=Range(0, 3600, low_open=True))
    max_retries: int = field(3, help="retries per request after the first try", range=Range(0, 20))
    concurrency: int = field(8, help="requests in flight at once", range=Range(1, 256))
    max_tokens: int = field(256, help="longest RecCoT the teacher may write", range=Range(1, 32_768))
    temperature: float = field(0.0, help="teacher sampling temperature", range=Range(0, 2))  # OpenAI's range
    cache_dir: str | None = field(None, help="answer cache; default $TRACKREC_CACHE/teacher")

    def problems(self) -> list[str]:
        problems = []
        if self.kind == "openai" and not self.endpoint:
            problems.append("endpoint: required when kind is openai")
        return problems + url_problems("endpoint", self.endpoint or None)


@dataclass
class LoRAConfig(Config):
    r: int = field(8, help="rank of the LoRA update", range=Range(1, 4096))
    alpha: int = field(16, help="LoRA scaling numerator", range=Range(1, 65_536))
    dropout: float = field(0.0, help="dropout on the LoRA input", range=Range(0, 1, high_open=True))
    target_modules: list[str] = field(
        factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        help="module names that get an adapter",
    )
    layers: list[int] | None = field(
        None,
        help="layer indices that get adapters; none: all. Top layers only make backward stop early (CPU)",
        range=Range(0),
    )

    def problems(self) -> list[str]:
        return (
            [f"layers: need non-negative layer indices, got {self.layers}"]
            if self.layers is not None and not self.layers
            else []
        )


@dataclass
class TrainingConfig(Config):
    epochs: float = field(1.0, help="passes over the stage's training rows", range=Range(0, 1000, low_open=True))
    learning_rate: float = field(1e-4, help="AdamW learning rate of the LoRA weights", range=Range(0, 1, low_open=True))
    batch_size: int = field(4, help="rows per device step", range=Range(1, 65_536))
    gradient_accumulation: int = field(1, help="steps per optimiser update", range=Range(1, 65_536))
    seed: int = field(0, help="data order and dropout", range=SEED)
    deepspeed: str | None = field(None, help="DeepSpeed JSON config path, passed to the trainer (GPU)")
    full_finetune: bool = field(
        False, help="train every weight of the base (the stage writes a whole model) instead of a LoRA adapter"
    )

    def problems(self) -> list[str]:
        problems = []
        if self.deepspeed is not None and not Path(self.deepspeed).is_file():
            problems.append(f"deepspeed: no such file {self.deepspeed!r}")
        return problems


@dataclass
class VLLMConfig(Config):
    tensor_parallel_size: int = field(
        0, help="GPUs one engine spans; 0: the pod's GPUs ($TRACKREC_GPUS, else 1)", range=Range(0, 1024)
    )
    gpu_memory_utilization: float = field(
        0.85, help="share of each GPU's memory vLLM may take", range=Range(0, 1, low_open=True)
    )
    max_model_len: int | None = field(
        None, help="context the KV cache is sized for; none: the model's", range=Range(1, 10_000_000)
    )
    max_lora_rank: int = field(64, help="largest LoRA rank the engine serves", range=Range(1, 4096))
    cpu_kv_cache_gib: int = field(
        1, help="CPU only: GiB of host memory for the KV cache (else vLLM takes most of RAM)", range=Range(1, 4096)
    )

    def parallel(self) -> int:
        return self.tensor_parallel_size or pod_gpus()


@dataclass
class SubsetConfig(Config):
    train_samples: int = field(64, help="train-split samples for alignment and Rec-tuning", range=Range(1))
    train_per_user: int = field(
        1,
        help="a drawn user's latest train samples in the pool (more: V and the judge see a user's text vary)",
        range=Range(1),
    )
    split: Literal["users", "time"] = field(
        "users",
        help="users: eval users are held out (none drawn for train); time: half the eval users are train users, "
        "judged on their later test-period samples, half are users never trained on (both views at once)",
    )
    eval_users: int = field(
        64, help="users whose test samples evaluate V (held out from train under split: users)", range=Range(1)
    )
    eval_per_user: int = field(
        1, help="latest test samples per held-out user (more: tighter AUC, same users)", range=Range(1)
    )
    distill_fraction: float = field(
        0.05, help="fraction of train users whose latest history goes to the teacher", range=PROBABILITY
    )
    balanced: bool = field(
        True, help="train users drawn half with a liked, half with a disliked target (else V learns the like-rate)"
    )
    seed: int = field(0, help="which users are drawn", range=SEED)


@dataclass
class GenerationConfig(Config):
    history_tokens: int = field(
        1024,
        help="G's prompt: the user's long history, the most recent items that fit this many tokens (1024: about 60 "
        "ML-1M items), the past a ranker's short window does not see",
        range=Range(1, 1_000_000),
    )
    validator_items: int = field(
        3,
        help="V's Rec prompt: this many most recent items beside the RecCoT (a ranker's short window); the "
        "summary is its only view of the longer past",
        range=Range(1, 10_000),
    )
    max_new_tokens: int = field(128, help="longest RecCoT G writes", range=Range(1, 32_768))
    samples: int = field(
        10, help="N: RecCoTs sampled per sample (Algorithm 1; at least 2 to form a preference)", range=Range(2, 1024)
    )
    temperature: float = field(1.0, help="sampling temperature", range=Range(0, 10, low_open=True))
    top_p: float = field(0.9, help="nucleus sampling", range=Range(0, 1, low_open=True))
    batch_size: int = field(16, help="prompts per inference batch", range=Range(1, 65_536))
    seed: int = field(0, help="sampling seed (offset by the iteration)", range=SEED)


@dataclass
class LLMConfig(Config):
    base: str = field(SMOLLM2, help=f"frozen base of G and V: a model folder, s3://bucket/prefix, or {SMOLLM2!r}")
    iterations: int = field(3, help="T: alternating iterations after distillation", range=Range(1, 100))
    engine: Literal["hf", "vllm"] = field("hf", help="inference backend: hf (the reference, any machine) or vllm (GPU)")
    vllm: VLLMConfig = field(factory=VLLMConfig, help="vLLM engine settings (engine: vllm)")
    lora: LoRAConfig = field(factory=LoRAConfig, help="adapter shape of G and V")
    subset: SubsetConfig = field(factory=SubsetConfig, help="which samples the loop reads")
    generation: GenerationConfig = field(factory=GenerationConfig, help="prompts and decoding")
    teacher: TeacherConfig = field(
        factory=lambda: TeacherConfig(kind="profile"), help="distillation teacher (default: the offline stand-in)"
    )
    reward: Literal["validator", "ctr"] = field(
        "validator",
        help="what scores G(t-1)'s samples: validator: V(t-1)'s normalised P(correct answer) (TrackRec); ctr: "
        "P(the label) under the CTR model trained on G(t-1)'s greedy RecCoTs (DPO4Rec; pair with preference: dpo)",
    )
    preference: PreferenceMode = field(PreferenceMode.SDPO, help="sdpo: best vs the N-1 others; dpo: best vs worst")
    beta: float = field(0.1, help="S-DPO temperature", range=Range(0, 100, low_open=True))
    distill_train: TrainingConfig = field(factory=TrainingConfig, help="SFT of G0 on the teacher's RecCoTs")
    align_train: TrainingConfig = field(factory=TrainingConfig, help="S-DPO of G")
    rectune_train: TrainingConfig = field(factory=TrainingConfig, help="Rec-tuning of V")

    def problems(self) -> list[str]:
        return path_problems("base", self.base)


REC_PROMPT_TOKENS = 160  # the Rec prompt's fixed text, generously


def check_context(llm: LLMConfig) -> None:
    """Fail before any stage when the prompt budget plus a RecCoT cannot fit the base model's context."""
    from transformers import AutoConfig

    context = getattr(AutoConfig.from_pretrained(resolve_model(llm.base)), "max_position_embeddings", None)
    generation = llm.generation
    # G's: its budget and the RecCoT it writes. V's: its window (a part of G's history, so within the
    # budget, and at most validator_items titles of MAX_TITLE_CHARS, about 4 characters a token), the
    # target, the RecCoT and the fixed text; the engine refuses an outlier prompt by name
    titles = (generation.validator_items + 1) * (MAX_TITLE_CHARS // 4 + 8)
    needed = {
        "history_tokens + max_new_tokens": generation.history_tokens + generation.max_new_tokens,
        "V's prompt at its longest": min(generation.history_tokens, titles)
        + generation.max_new_tokens
        + REC_PROMPT_TOKENS,
    }
    over = [
        f"{what} = {tokens} exceed the context of {llm.base} ({context} tokens)"
        for what, tokens in needed.items()
        if context is not None and tokens > context
    ]
    if over:
        raise ConfigError("llm.generation", over)
