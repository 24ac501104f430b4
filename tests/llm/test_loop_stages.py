"""The whole LLM loop through `trackrec run` on a tiny random model and small generated data."""

import json

import pytest
import yaml

from tests.llm.teacher_server import TeacherServer
from trackrec.config import config_from_dict
from trackrec.errors import ConfigError, DataError
from trackrec.run import RunConfig, run


def loop_config(tmp_path, collm_root, model_dir, teacher_url, **llm):
    raw = {
        "run_dir": str(tmp_path / "run"),
        "data": {"root": str(collm_root)},
        "llm": {
            "base": str(model_dir),
            "iterations": 1,
            "subset": {"train_samples": 6, "eval_samples": 6, "distill_fraction": 0.5},
            "generation": {"history_tokens": 250, "max_new_tokens": 8, "samples": 3, "batch_size": 4},
            "teacher": {"kind": "openai", "endpoint": teacher_url, "model": "t", "cache_dir": str(tmp_path / "tc")},
            "lora": {"r": 4, "target_modules": ["q_proj", "v_proj"]},
            **llm,
        },
        "ctr": {"train": {"max_epochs": 1}},
    }
    return config_from_dict(RunConfig, raw)


def test_run_writes_every_iteration_and_a_rerun_skips_all(tmp_path, collm_root, tiny_lm_dir):
    logs = []
    with TeacherServer(lambda prompt: "The user likes Action movies.") as server:
        config = loop_config(tmp_path, collm_root, tiny_lm_dir, server.url)
        result = run(config, log=logs.append)
        assert len(server.requests) == 6  # half of the 12 users
        logs.clear()
        run(config, log=logs.append)  # a re-run asks nobody and recomputes nothing
        assert len(server.requests) == 6
    assert sum("complete, skipped" in line for line in logs) == len(logs) - 1  # all but the report line
    llm = tmp_path / "run" / "llm"
    assert [row["iteration"] for row in result["llm"]] == [0, 1]
    for row in result["llm"]:
        assert 0 <= row["auc"] <= 1 and 0 < row["mean_reward"] < 1 and row["samples"] == 6
    assert 0 < result["llm"][1]["sampled_mean_reward"] <= result["llm"][1]["sampled_chosen_reward"] < 1
    for adapter in ("iter0/distill", "iter0/rectune", "iter1/align", "iter1/rectune"):
        assert (llm / adapter / "adapter" / "adapter_config.json").is_file()
    assert len(json.loads((llm / "metrics.json").read_text())) == 2 and "<img" in (llm / "report.html").read_text()


def test_dpo4rec_variant_keeps_one_rejected(tmp_path, collm_root, tiny_lm_dir):
    import pandas as pd

    with TeacherServer(lambda prompt: "The user likes Drama.") as server:
        run(loop_config(tmp_path, collm_root, tiny_lm_dir, server.url, preference="dpo"), log=lambda _: None)
    table = pd.read_parquet(tmp_path / "run" / "llm" / "iter1" / "score" / "preferences.parquet")
    assert table.rejected.map(len).eq(1).all() and len(table) == 6


def test_missing_model_is_a_config_error_before_any_stage(tmp_path, collm_root):
    config = loop_config(tmp_path, collm_root, tmp_path / "no-such-model", "http://127.0.0.1:9/v1")
    with pytest.raises(ConfigError, match="no-such-model.*is not a model folder"):
        run(config, log=lambda _: None)
    assert not (tmp_path / "run" / "llm").exists()


def test_empty_history_in_the_loop_names_the_row(tmp_path, tiny_lm_dir, collm_root):
    import pandas as pd

    from trackrec.stages.greedy import greedy
    from trackrec.stages.llm_config import LLMConfig

    samples = tmp_path / "samples"
    samples.mkdir()
    frame = pd.DataFrame(
        {"history_titles": [["A (1990)"], []], "history_labels": [[1], []], "history_ratings": [None, None]},
        index=[7, 9],
    )
    for split in ("train", "eval"):
        frame.to_parquet(samples / f"{split}.parquet")
    with pytest.raises(DataError, match="train samples, row 9: empty history"):
        greedy(samples, None, LLMConfig(base=str(tiny_lm_dir)), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_budget_beyond_the_context_fails_before_any_llm_stage(tmp_path, collm_root, tiny_lm_dir):
    config = loop_config(tmp_path, collm_root, tiny_lm_dir, "http://127.0.0.1:9/v1")
    config.llm.generation.history_tokens = 500  # + 8 new tokens fits the tiny model's 512; + 20 does not
    config.llm.generation.max_new_tokens = 20
    with pytest.raises(ConfigError, match="= 520 exceed the context of .* \\(512 tokens\\)"):
        run(config, log=lambda _: None)
    assert not (tmp_path / "run" / "llm").exists()


def test_configs_local_yaml_validates():
    raw = yaml.safe_load(open("configs/local.yaml"))
    assert config_from_dict(RunConfig, raw).llm is not None


def test_samples_whose_reccots_tie_state_no_preference(tmp_path, tiny_lm_dir, prepared):
    import pandas as pd

    from trackrec.stages.align import align
    from trackrec.stages.llm_config import LLMConfig, SubsetConfig
    from trackrec.stages.score import score
    from trackrec.stages.select_samples import select_samples

    llm = LLMConfig(base=str(tiny_lm_dir))
    select_samples(prepared, SubsetConfig(train_samples=2, eval_samples=2), tmp_path / "samples")
    train = pd.read_parquet(tmp_path / "samples" / "train.parquet")
    sampled = tmp_path / "sampled"
    sampled.mkdir()
    reccots = [["Action fan", "Action fan", "Action fan"], ["Likes Comedy", "Hates Horror", "Drama"]]
    finished = [[True] * 3, [True, False, True]]
    table = pd.DataFrame({"prompt": ["p0", "p1"], "reccots": reccots, "finished": finished}, index=train.index)
    table.to_parquet(sampled / "samples.parquet")
    stats = score(tmp_path / "samples", sampled, None, llm, tmp_path / "scored", progress=False)
    assert stats["preferences"] == 1 and stats["dropped_ties"] == 1
    kept = pd.read_parquet(tmp_path / "scored" / "preferences.parquet")
    assert kept.prompt.tolist() == ["p1"]
    flags = dict(zip(reccots[1], finished[1], strict=True))  # each text keeps its own finish flag
    assert kept.chosen_finished.iloc[0] == flags[kept.chosen.iloc[0]]
    assert list(kept.rejected_finished.iloc[0]) == [flags[text] for text in kept.rejected.iloc[0]]

    (tmp_path / "scored" / "preferences.parquet").unlink()
    pd.DataFrame({"prompt": [], "chosen": [], "rejected": []}).to_parquet(tmp_path / "scored" / "preferences.parquet")
    g = tmp_path / "g" / "adapter"
    g.mkdir(parents=True)
    (g / "adapter_config.json").write_text("{}")
    assert align(tmp_path / "scored", g, llm, tmp_path / "aligned") == []  # all ties: G(t) = G(t-1)
    assert (tmp_path / "aligned" / "adapter" / "adapter_config.json").read_text() == "{}"


def test_run_with_features_publishes_gs_reccots_and_feeds_them_to_the_ctr_model(tmp_path, collm_root, tiny_lm_dir):
    import numpy as np
    import pandas as pd

    from trackrec.features.store import open_repo
    from trackrec.features.versions import read
    from trackrec.stages.publish import FeaturesConfig

    with TeacherServer(lambda prompt: "The user likes Action movies.") as server:
        config = loop_config(tmp_path, collm_root, tiny_lm_dir, server.url)
        config.features = config_from_dict(FeaturesConfig, {"users": 5, "store": {"repo": str(tmp_path / "feast")}})
        result = run(config, log=lambda _: None)
        logs = []
        run(config, log=logs.append)
        assert sum("complete, skipped" in line for line in logs) == len(logs) - 1
        config.features.arm = "candidate"  # only the arm changes: the same version, now also read by it
        logs.clear()
        run(config, log=logs.append)
    assert [line.split(":")[0] for line in logs if "skipped" not in line] == ["llm", "publish"]
    features = tmp_path / "run" / "features"
    table = pd.read_parquet(features / "embeddings" / "embeddings.parquet")
    assert len(table) == 5 and set(table.iteration) == {1}
    assert result["ctr"]["config"]["dense_dim"] == 384
    published = read(open_repo(tmp_path / "feast"), table.user_id.tolist())  # the control arm
    np.testing.assert_array_equal(np.stack(published.embedding), np.stack(table.embedding))
    assert published.reccot.tolist() == table.reccot.tolist()
    candidate = read(open_repo(tmp_path / "feast"), table.user_id.tolist()[:1], arm="candidate")
    assert candidate.model_version[0] == published.model_version[0]

    # A request scored with online features gets exactly the offline (training-path) prediction.
    from trackrec.ctr.features import samples_to_tensors, user_vector_matrix
    from trackrec.ctr.train import predict
    from trackrec.data.dataset import Dataset
    from trackrec.features.serving import RequestScorer

    dataset = Dataset.load(tmp_path / "run" / "data")
    scorer = RequestScorer(tmp_path / "run" / "ctr", tmp_path / "run" / "data", tmp_path / "feast")
    test = dataset.samples["test"]
    matrix = user_vector_matrix(table, dataset.n_users, 384, "embeddings")  # zeros for users without
    with_features = int(table.user_id.iloc[0])
    without = int(next(u for u in test.user_id if u not in set(table.user_id)))
    for user in (with_features, without):
        sample = test[test.user_id == user].iloc[[0]]
        history = sample[["history_item_ids", "history_labels"]].iloc[0]
        answer = scorer.score(user, int(sample.target_item_id.iloc[0]), *history)
        expected = predict(scorer.model, samples_to_tensors(sample, 10, matrix))[0]
        assert abs(answer["p_click"] - expected) < 1e-6
        assert answer["features"] == (None if user == without else published.model_version[0])
