"""`trackrec run`: the whole pipeline through KFP's local runner on a tiny random model, with the
data, the base model and the offline features on a real S3 API (moto's server) on 127.0.0.1."""

import json

import numpy as np
import pandas as pd
import pytest

from pipelines.local import latest_run, run_local
from tests.conftest import local_runs, tasks_executed
from tests.llm.teacher_server import TeacherServer
from trackrec.artifacts.s3 import client, upload_dir
from trackrec.config import config_from_dict
from trackrec.errors import ConfigError
from trackrec.run_config import RunConfig


def loop_config(tmp_path, data_root, model, teacher_url, **extra):
    raw = {
        "run_dir": str(tmp_path / "run"),
        "data": {"root": str(data_root)},
        "llm": {
            "base": str(model),
            "iterations": 1,
            "subset": {"train_samples": 6, "eval_samples": 6, "distill_fraction": 0.5},
            "generation": {"history_tokens": 250, "max_new_tokens": 8, "samples": 3, "batch_size": 4},
            "teacher": {"kind": "openai", "endpoint": teacher_url, "model": "t", "cache_dir": str(tmp_path / "tc")},
            "lora": {"r": 4, "target_modules": ["q_proj", "v_proj"]},
        },
        "ctr": {"train": {"max_epochs": 1}},
        **extra,
    }
    return config_from_dict(RunConfig, raw)


def run_tasks(config, **params) -> tuple[dict, set[str]]:
    """run_local's result and the tasks it executed."""
    before = local_runs(config.run_dir)
    result = run_local(config, **params)
    return result, tasks_executed(config.run_dir, before)


def test_pipeline_runs_end_to_end_on_s3_then_a_rerun_is_cached(tmp_path, collm_root, tiny_lm_dir, s3, monkeypatch):
    from trackrec.ctr.features import samples_to_tensors, user_vector_matrix
    from trackrec.ctr.train import predict
    from trackrec.data.dataset import Dataset
    from trackrec.features.serving import RequestScorer
    from trackrec.features.store import open_repo
    from trackrec.features.versions import read

    monkeypatch.setenv("TRACKREC_CACHE", str(tmp_path / "cache"))  # the base model is downloaded here
    s3.create_bucket(Bucket="trackrec")
    upload_dir(client(), tiny_lm_dir, "s3://trackrec/models/tiny")
    upload_dir(client(), collm_root, "s3://trackrec/data")
    store = {"repo": str(tmp_path / "feast"), "offline": "s3://trackrec/features"}
    with TeacherServer(lambda prompt: "The user likes Action movies.") as server:
        config = loop_config(
            tmp_path,
            "s3://trackrec/data",
            "s3://trackrec/models/tiny",
            server.url,
            features={"users": 5, "store": store},
        )
        result, first = run_tasks(config, shards=2)
        assert len(server.requests) == 6  # G0's teacher: half of the 12 users
        # a re-run: every task from the cache but publish, which checks the store itself
        assert run_tasks(config, shards=2)[1] == {"publish"} and len(server.requests) == 6
        config.features.arm = "candidate"  # only the features section changes: the same version, now read by it
        assert run_tasks(config, shards=2)[1] == {"split-config", "publish"}

    assert {"distill", "align", "rectune", "rectune-2", "evaluate", "evaluate-2", "encode", "train-ctr"} <= first
    paths = latest_run(tmp_path / "run")
    assert {k: str(v) for k, v in paths.items()} == result["paths"]
    assert set(paths) == {"ctr", "ctr_model", "dataset", "curves", "generator", "distilled"}
    assert 0 <= result["ctr"]["auc"] <= 1 and set(result["ctr"]) == {"auc", "acc", "logloss"}
    assert "<img" in paths["curves"].read_text()
    rows = json.loads((paths["curves"].parent / "report" / "metrics.json").read_text())
    assert [row["iteration"] for row in rows] == [0, 1]
    assert 0 < rows[1]["sampled_mean_reward"] <= rows[1]["sampled_chosen_reward"] < 1
    for adapter in ("generator", "distilled"):
        assert (paths[adapter] / "adapter" / "adapter_config.json").is_file()
    shards = list((tmp_path / "run" / "artifacts").glob("*/**/for-loop-*-iteration-1/greedy"))
    assert shards, "the greedy stage ran as 2 shards"

    # Features: readable from the local Feast store, the offline rows on S3, the same for both arms.
    (embeddings,) = (tmp_path / "run" / "artifacts").glob("*/encode/embeddings/embeddings.parquet")
    table = pd.read_parquet(embeddings)
    assert len(table) == 5 and set(table.iteration) == {1}
    published = read(open_repo(tmp_path / "feast"), table.user_id.tolist())
    np.testing.assert_array_equal(np.stack(published.embedding), np.stack(table.embedding))
    assert published.reccot.tolist() == table.reccot.tolist()
    candidate = read(open_repo(tmp_path / "feast"), table.user_id.tolist()[:1], arm="candidate")
    assert candidate.model_version[0] == published.model_version[0]
    listed = s3.list_objects_v2(Bucket="trackrec", Prefix="features/")["Contents"]
    assert [o["Key"] for o in listed] == [f"features/{published.model_version[0]}.parquet"]

    # A request scored with online features gets exactly the offline (training-path) prediction.
    dataset = Dataset.load(paths["dataset"])
    scorer = RequestScorer(paths["ctr_model"], paths["dataset"], tmp_path / "feast")
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


def test_missing_model_is_a_config_error_before_any_task(tmp_path, collm_root):
    config = loop_config(tmp_path, collm_root, tmp_path / "no-such-model", "http://127.0.0.1:9/v1")
    with pytest.raises(ConfigError, match="no-such-model.*is not a model folder"):
        run_local(config)
    assert not (tmp_path / "run" / "artifacts").exists()


def test_budget_beyond_the_context_fails_before_any_task(tmp_path, collm_root, tiny_lm_dir):
    config = loop_config(tmp_path, collm_root, tiny_lm_dir, "http://127.0.0.1:9/v1")
    config.llm.generation.history_tokens = 500  # + 8 new tokens fits the tiny model's 512; + 20 does not
    config.llm.generation.max_new_tokens = 20
    with pytest.raises(ConfigError, match="= 520 exceed the context of .* \\(512 tokens\\)"):
        run_local(config)
    assert not (tmp_path / "run" / "artifacts").exists()
