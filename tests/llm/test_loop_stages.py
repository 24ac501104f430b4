"""The LLM loop's stages on a tiny random model and small generated data."""

import pytest
import yaml

from trackrec.config import config_from_dict
from trackrec.errors import DataError
from trackrec.run_config import RunConfig
from trackrec.stages.outputs import Greedy, Sampled, Scored, Selected, Trained

GREEDY, SCORED = (f"{output.__module__}:{output.__qualname__}" for output in (Greedy, Scored))  # gather's kinds


def test_empty_history_in_the_loop_names_the_row(tmp_path, tiny_lm_dir, collm_root):
    import pandas as pd

    from trackrec.llm.config import LLMConfig
    from trackrec.stages.greedy import greedy

    samples = tmp_path / "samples"
    samples.mkdir()
    frame = pd.DataFrame(
        {"history_titles": [["A (1990)"], []], "history_labels": [[1], []], "history_ratings": [None, None]},
        index=[7, 9],
    )
    for split in ("train", "eval"):
        frame.to_parquet(Selected(samples).split(split))
    with pytest.raises(DataError, match="train samples, row 9: empty history"):
        greedy(samples, None, LLMConfig(base=str(tiny_lm_dir)), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_configs_local_yaml_validates():
    raw = yaml.safe_load(open("configs/local.yaml"))
    assert config_from_dict(RunConfig, raw).llm is not None


def test_samples_whose_reccots_tie_state_no_preference(tmp_path, tiny_lm_dir, prepared):
    import pandas as pd

    from trackrec.llm.config import LLMConfig, SubsetConfig
    from trackrec.stages.align import align
    from trackrec.stages.score import score
    from trackrec.stages.select_samples import select_samples

    llm = LLMConfig(base=str(tiny_lm_dir))
    select_samples(prepared, SubsetConfig(train_samples=2, eval_users=2), tmp_path / "samples")
    train = pd.read_parquet(Selected(tmp_path / "samples").split("train"))
    sampled = tmp_path / "sampled"
    sampled.mkdir()
    reccots = [["Action fan", "Action fan", "Action fan"], ["Likes Comedy", "Hates Horror", "Drama"]]
    finished = [[True] * 3, [True, False, True]]
    table = pd.DataFrame({"prompt": ["p0", "p1"], "reccots": reccots, "finished": finished}, index=train.index)
    table.to_parquet(Sampled(sampled).table)
    stats = score(tmp_path / "samples", sampled, None, llm, tmp_path / "scored", progress=False)
    assert stats["preferences"] == 1 and stats["dropped_ties"] == 1
    scored = Scored(tmp_path / "scored")
    kept = pd.read_parquet(scored.preferences)
    assert kept.prompt.tolist() == ["p1"]
    flags = dict(zip(reccots[1], finished[1], strict=True))  # each text keeps its own finish flag
    assert kept.chosen_finished.iloc[0] == flags[kept.chosen.iloc[0]]
    assert list(kept.rejected_finished.iloc[0]) == [flags[text] for text in kept.rejected.iloc[0]]

    scored.preferences.unlink()
    pd.DataFrame({"prompt": [], "chosen": [], "rejected": []}).to_parquet(scored.preferences)
    g = tmp_path / "g"
    Trained(g).adapter.mkdir(parents=True)
    (Trained(g).adapter / "adapter_config.json").write_text("{}")
    assert align(tmp_path / "scored", g, llm, tmp_path / "aligned") == []  # all ties: G(t) = G(t-1)
    assert (Trained(tmp_path / "aligned").adapter / "adapter_config.json").read_text() == "{}"


def _small_llm(model_dir, **overrides):
    from trackrec.llm.config import LLMConfig

    raw = {"base": str(model_dir), "generation": {"max_new_tokens": 6, "samples": 3, "history_tokens": 250}}
    return config_from_dict(LLMConfig, raw | overrides)


def _selected(prepared, tmp_path, train=6, eval=4):
    from trackrec.llm.config import SubsetConfig
    from trackrec.stages.select_samples import select_samples

    select_samples(prepared, SubsetConfig(train_samples=train, eval_users=eval), tmp_path / "samples")
    return tmp_path / "samples"


def test_sharded_greedy_and_score_gather_into_the_unsharded_tables(tmp_path, tiny_lm_dir, prepared):
    import numpy as np
    import pandas as pd

    from trackrec.stages.gather import gather
    from trackrec.stages.greedy import greedy
    from trackrec.stages.sample import sample
    from trackrec.stages.score import score, scoring_stats
    from trackrec.stages.shards import Shard

    llm = _small_llm(tiny_lm_dir)
    samples = _selected(prepared, tmp_path)
    greedy(samples, None, llm, tmp_path / "greedy", progress=False)
    parts = [tmp_path / f"greedy{i}" for i in range(3)]  # 3 shards of 6 + 4 users: none is empty here
    for i, part in enumerate(parts):
        greedy(samples, None, llm, part, progress=False, shard=Shard(i, 3))
    gather(parts, GREEDY, tmp_path / "greedy-gathered")
    whole = pd.read_parquet(Greedy(tmp_path / "greedy").table).sort_values(["split", "sample"])
    gathered = pd.read_parquet(Greedy(tmp_path / "greedy-gathered").table).sort_values(["split", "sample"])
    assert gathered.reset_index(drop=True).equals(whole.reset_index(drop=True))

    sample(samples, None, llm, tmp_path / "sampled", seed=1, progress=False)
    stats = score(samples, tmp_path / "sampled", None, llm, tmp_path / "scored", progress=False)
    parts = [tmp_path / f"scored{i}" for i in range(7)]  # more shards than users: some are empty
    for i, part in enumerate(parts):
        score(samples, tmp_path / "sampled", None, llm, part, progress=False, shard=Shard(i, 7))
    counts = gather(parts, SCORED, tmp_path / "scored-gathered")
    assert counts[Scored(tmp_path / "scored-gathered").rewards.name] == 6
    regathered = scoring_stats(tmp_path / "scored-gathered")
    assert regathered.keys() == stats.keys()
    # batches differ by shard: rewards agree to float32 rounding
    np.testing.assert_allclose([regathered[k] for k in stats], [stats[k] for k in stats], atol=1e-6)


def test_dpo4rec_variant_keeps_one_rejected(tmp_path, tiny_lm_dir, prepared):
    import pandas as pd

    from trackrec.stages.sample import sample
    from trackrec.stages.score import score

    llm = _small_llm(tiny_lm_dir, preference="dpo")
    samples = _selected(prepared, tmp_path)
    sample(samples, None, llm, tmp_path / "sampled", seed=1, progress=False)
    score(samples, tmp_path / "sampled", None, llm, tmp_path / "scored", progress=False)
    table = pd.read_parquet(Scored(tmp_path / "scored").preferences)
    assert len(table) > 0 and table.rejected.map(len).eq(1).all()


def test_a_shard_count_below_one_is_refused():
    from trackrec.errors import ConfigError
    from trackrec.stages.shards import Shard

    with pytest.raises(ConfigError, match="shard count must be >= 1, got 0"):
        Shard(0, 0)
    with pytest.raises(ConfigError, match="shard index 3 is outside 0..2"):
        Shard(3, 3)


def test_a_base_without_a_pad_token_aligns(tmp_path, tiny_lm_dir, prepared):
    """transformers 5.17 converts SmolLM2's GGUF into a tokenizer without a pad token (seen on a GPU
    machine): align's collator needs one."""
    import shutil

    from transformers import AutoTokenizer

    from trackrec.stages.align import align
    from trackrec.stages.sample import sample
    from trackrec.stages.score import score

    base = tmp_path / "base"
    shutil.copytree(tiny_lm_dir, base)
    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.pad_token = None
    tokenizer.save_pretrained(base)
    assert AutoTokenizer.from_pretrained(base).pad_token is None
    llm = _small_llm(base)
    samples = _selected(prepared, tmp_path)
    sample(samples, None, llm, tmp_path / "sampled", seed=1, progress=False)
    score(samples, tmp_path / "sampled", None, llm, tmp_path / "scored", progress=False)
    align(tmp_path / "scored", None, llm, tmp_path / "aligned")
    assert (Trained(tmp_path / "aligned").adapter / "adapter_config.json").is_file()


def test_a_fully_fine_tuned_validator_is_a_whole_model_every_scorer_loads(tmp_path, tiny_lm_dir, prepared):
    import numpy as np
    import pandas as pd

    from trackrec.stages.greedy import read_reccots
    from trackrec.stages.llm_common import read_samples, validator_probs
    from trackrec.stages.rectune import rectune

    llm = _small_llm(tiny_lm_dir, rectune_train={"full_finetune": True, "learning_rate": 1e-2, "epochs": 2})
    samples = _selected(prepared, tmp_path)
    train = read_samples(samples, "train")
    (tmp_path / "texts").mkdir()
    texts = pd.DataFrame({"split": "train", "sample": train.index, "reccot": "likes Action"})
    texts.to_parquet(Greedy(tmp_path / "texts").table)
    rectune(samples, tmp_path / "texts", None, llm, tmp_path / "V")
    folder = Trained(tmp_path / "V").adapter
    assert (folder / "config.json").is_file() and not (folder / "adapter_config.json").exists()
    reccots = read_reccots(tmp_path / "texts", "train", train)
    tuned = validator_probs(llm, tmp_path / "V", train, reccots, "train", progress=False)
    base = validator_probs(llm, None, train, reccots, "train", progress=False)
    assert tuned.shape == base.shape and not np.allclose(tuned, base, atol=1e-4)  # every weight moved V


def _random_lora(base, folder, seed: int):
    """A training output (`folder`) whose LoRA adapter over `base` has a B that is not zero, so that
    it changes V's answers."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False, task_type="CAUSAL_LM")
    get_peft_model(AutoModelForCausalLM.from_pretrained(base), config).save_pretrained(Trained(folder).adapter)
    return folder


def test_two_validators_over_one_base_load_answer_as_two_loads_do(tmp_path, tiny_lm_dir, prepared, monkeypatch):
    """evaluate scores V(t) and V0 with one load of the base; each answers as if loaded alone."""
    import numpy as np
    import transformers

    from trackrec.stages.llm_common import read_samples, validator_probs, validators_probs

    llm = _small_llm(tiny_lm_dir)
    frame = read_samples(_selected(prepared, tmp_path), "train")
    reccots = ["likes Action"] * len(frame)
    v0, v1 = (_random_lora(tiny_lm_dir, tmp_path / f"v{i}", seed=i) for i in range(2))
    alone = [validator_probs(llm, v, frame, reccots, "one V", progress=False) for v in (v1, v0)]
    loads = []
    load = transformers.AutoModelForCausalLM.from_pretrained.__func__
    spy = classmethod(lambda cls, *args, **kwargs: loads.append(args[0]) or load(cls, *args, **kwargs))
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", spy)
    together = validators_probs(llm, [v1, v0], frame, reccots, "two Vs", progress=False)
    assert len(loads) == 1
    assert not np.allclose(alone[0], alone[1], atol=1e-4)  # the two adapters answer differently
    for one, shared in zip(alone, together, strict=True):
        np.testing.assert_allclose(shared, one, atol=1e-6)
