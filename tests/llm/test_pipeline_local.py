"""`trackrec run`: the whole pipeline through KFP's local runner on a tiny random model, with the
data, the base model and the offline features on a real S3 API (moto's server) on 127.0.0.1."""

import json

import numpy as np
import pandas as pd
import pytest

from pipelines.local import latest_run, run_local
from tests.conftest import local_runs, moto_s3, tasks_executed
from tests.llm.teacher_server import TeacherServer
from tests.synthetic import collm_rows, split_rows, write_collm
from trackrec.artifacts.s3 import client, upload_dir
from trackrec.config import config_from_dict
from trackrec.errors import ConfigError
from trackrec.run_config import RunConfig


def loop_config(tmp_path, data_root, model, teacher_url, **extra):
    raw = {
        "data": {"root": str(data_root)},
        "llm": {
            "base": str(model),
            "iterations": 1,
            "subset": {"train_samples": 6, "eval_users": 6, "distill_fraction": 0.5},
            "generation": {"history_tokens": 250, "max_new_tokens": 8, "samples": 3, "batch_size": 4},
            "teacher": {"kind": "openai", "endpoint": teacher_url, "model": "t", "cache_dir": str(tmp_path / "tc")},
            "lora": {"r": 4, "target_modules": ["q_proj", "v_proj"]},
        },
        "ctr": {"train": {"max_epochs": 1}},
        **extra,
    }
    return config_from_dict(RunConfig, raw)


def run_tasks(config, run_dir, **params) -> tuple[dict, set[str]]:
    """run_local's result and the tasks it executed."""
    before = local_runs(run_dir)
    result = run_local(config, run_dir, **params)
    return result, tasks_executed(run_dir, before)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, tiny_lm_dir):
    """One run of the whole pipeline (T=1, features for 5 users) with the data, the base model and the
    offline features on S3, the teacher on 127.0.0.1; kept for the module's tests, the teacher up."""
    folder = tmp_path_factory.mktemp("pipeline")
    with pytest.MonkeyPatch.context() as monkeypatch, moto_s3(monkeypatch) as s3:
        monkeypatch.setenv("TRACKREC_CACHE", str(folder / "cache"))  # the base model is downloaded here
        s3.create_bucket(Bucket="trackrec")
        upload_dir(client(), tiny_lm_dir, "s3://trackrec/models/tiny")
        upload_dir(client(), write_collm(folder / "data", collm_rows()), "s3://trackrec/data")
        store = {"repo": str(folder / "feast"), "offline": "s3://trackrec/features"}
        with TeacherServer(lambda prompt: "The user likes Action movies.") as server:
            config = loop_config(
                folder,
                "s3://trackrec/data",
                "s3://trackrec/models/tiny",
                server.url,
                features={"users": 5, "store": store},
            )
            result, executed = run_tasks(config, folder / "run")
            yield {
                "folder": folder,
                "config": config,
                "result": result,
                "executed": executed,
                "server": server,
                "s3": s3,
            }


def test_pipeline_runs_end_to_end_on_s3(first_run):
    from trackrec.ctr.features import rows_to_batch
    from trackrec.ctr.train import predict
    from trackrec.data.dataset import Dataset
    from trackrec.data.snapshots import SnapshotVectors
    from trackrec.features.serving import RequestScorer
    from trackrec.features.store import open_repo
    from trackrec.features.versions import read

    tmp_path, result, first, s3 = (first_run[k] for k in ("folder", "result", "executed", "s3"))
    assert len(first_run["server"].requests) == 6  # G0's teacher: half of the 12 users
    assert {"distill", "align", "rectune", "rectune-2", "evaluate", "evaluate-2", "encode", "train-ctr"} <= first
    paths = latest_run(tmp_path / "run")
    assert {k: str(v) for k, v in paths.items()} == result["paths"]
    assert set(paths) == {"ctr", "ctr_model", "dataset", "curves", "report", "generator", "distilled"}
    assert paths["report"].suffix == ".html" and paths["report"].read_bytes() == paths["curves"].read_bytes()
    trained = json.loads((paths["ctr_model"] / "metrics.json").read_text())
    assert {k: result["ctr"][k] for k in trained["test"]} == trained["test"]
    assert trained["config"]["dense_dim"] == 384  # RecCoT vectors reached DIN
    lift = trained["lift"]  # and the permuted-vector control beside them, with its interval
    assert lift["control"] == "permuted" and result["ctr"]["lift_estimate"] == lift["difference"]["estimate"]
    assert lift["difference"]["ci_low"] <= lift["difference"]["estimate"] <= lift["difference"]["ci_high"]
    assert "<img" in paths["curves"].read_text()
    rows = json.loads((paths["curves"].parent / "report" / "metrics.json").read_text())
    assert [row["iteration"] for row in rows] == [0, 1]
    assert 0 < rows[1]["sampled_mean_reward"] <= rows[1]["sampled_chosen_reward"] < 1
    assert rows[0]["reward_fixed_v"] == rows[0]["mean_reward"] and 0 < rows[1]["reward_fixed_v"] < 1  # under V0
    judged = sorted((tmp_path / "run" / "artifacts").glob("*/ctr-judge*/judge/model/metrics.json"))
    assert {"ctr-judge", "ctr-judge-2"} <= first and len(judged) == 2  # one CTR judge per iteration
    by_iteration = {json.loads(path.read_text())["test"]["auc"] for path in judged}
    assert {row["ctr_auc"] for row in rows} == by_iteration  # the report's CTR curve is the judges' test AUC
    test_start = Dataset.open(paths["dataset"]).samples("test").timestamp.min()
    for path in judged:  # no held-out user, no test-period text reaches a judge
        assert (pd.read_parquet(path.parents[1] / "reccots" / "reccots.parquet").as_of < test_start).all()
    for adapter in ("generator", "distilled"):
        assert (paths[adapter] / "adapter" / "adapter_config.json").is_file()

    # Features: readable from the local Feast store, the offline rows on S3, the same for both arms.
    (embeddings,) = (tmp_path / "run" / "artifacts").glob("*/for-loop-*/encode/embeddings/embeddings.parquet")
    table = pd.read_parquet(embeddings)
    assert table.user_id.nunique() == 5 and set(table.iteration) == {1}
    newest = table.sort_values(["user_id", "as_of"]).groupby("user_id").tail(1)  # what is served online
    published = read(open_repo(tmp_path / "feast"), newest.user_id.tolist())
    np.testing.assert_array_equal(np.stack(published.embedding), np.stack(newest.embedding))
    assert published.reccot.tolist() == newest.reccot.tolist() and published.as_of.tolist() == newest.as_of.tolist()
    version = published.model_version[0]
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket="trackrec", Prefix="features/")["Contents"]]
    assert [key for key in listed if "/generators/" not in key] == [f"features/{version}.parquet"]
    assert "adapter_config.json" in objects_under(f"s3://trackrec/features/generators/{version}")  # G(T), kept

    # A request scored now with online features gets exactly the training path's prediction for a
    # sample after the newest snapshot (the as-of join's vector at that time).
    dataset = Dataset.open(paths["dataset"])
    scorer = RequestScorer(paths["ctr_model"], paths["dataset"], tmp_path / "feast")
    test = split_rows(dataset, "test")
    vectors = SnapshotVectors(table.user_id.to_numpy(), table.as_of.to_numpy(), np.stack(table.embedding))
    later = np.full(len(test), dataset.meta["latest_timestamp"] + 1)
    dense = vectors.gather(vectors.rows_for(test.user_id.to_numpy(), later))
    offline, _ = predict(scorer.model, [rows_to_batch(test, trained["config"]["history_len"], dense)])
    with_features = int(table.user_id.iloc[0])
    without = int(next(u for u in test.user_id if u not in set(table.user_id)))
    for user in (with_features, without):
        position = int(np.flatnonzero(test.user_id.to_numpy() == user)[0])
        sample = test.iloc[position]
        answer = scorer.score(user, int(sample.target_item_id), sample.history_item_ids, sample.history_labels)
        expected = offline[position]
        assert abs(answer["p_click"] - expected) < 1e-6
        assert answer["feature_version"] == (None if user == without else published.model_version[0])


def test_a_rerun_that_changes_only_the_arm_runs_only_the_config_split_and_publish(first_run):
    """Every task from the cache but the config split, the data's identity and publish (which checks
    the store itself):
    the same version, now read by the candidate arm too; the teacher is not asked again. (Two shards
    through ParallelFor cost five more task start-ups; shard = unsharded is pinned at the stage level
    in test_loop_stages, the fan-out's shape in test_pipeline.)"""
    from trackrec.features.store import open_repo
    from trackrec.features.versions import read

    config = first_run["config"]
    config.features.arm = "candidate"
    assert run_tasks(config, first_run["folder"] / "run")[1] == {"split-config", "data-version", "publish"}
    assert len(first_run["server"].requests) == 6
    (embeddings,) = (first_run["folder"] / "run" / "artifacts").glob(
        "*/for-loop-*/encode/embeddings/embeddings.parquet"
    )
    users = pd.read_parquet(embeddings).user_id.tolist()[:1]
    repo = open_repo(first_run["folder"] / "feast")
    control, candidate = (read(repo, users, arm=arm) for arm in ("control", "candidate"))
    assert candidate.model_version[0] == control.model_version[0] is not None


@pytest.fixture(scope="module")
def grown(first_run):
    """The recurring path on one machine: the data on S3 grows in place (12 users, then 16; the first
    12 unchanged) and the pipeline runs again, for every user and the control arm."""
    config = first_run["config"]
    config.features.arm, config.features.users = "control", None
    upload_dir(client(), write_collm(first_run["folder"] / "grown", collm_rows(n_users=16)), "s3://trackrec/data")
    run_dir = first_run["folder"] / "run"
    return {"config": config, "run_dir": run_dir, "run": run_tasks(config, run_dir)}


def test_a_grown_log_is_prepared_again_and_its_new_users_published(grown):
    from trackrec.features.store import open_repo, open_store
    from trackrec.features.versions import history, read

    assert {"prepare-data", "distill", "publish"} <= grown["run"][1]  # new data: not the cache's
    store = grown["config"].features.store
    log = history(open_store(store), "control")
    assert len(log) == 2 and log[0]["data_version"] != log[1]["data_version"]
    rows = read(open_repo(store.repo), list(range(1, 17)))
    assert rows.model_version.notna().all() and set(rows.model_version) == {log[1]["version"]}  # users 13-16 too
    report = json.loads((latest_run(grown["run_dir"])["curves"].parent / "report" / "metrics.json").read_text())
    assert {row["data_version"] for row in report} == {log[1]["data_version"]}  # the report names its data


def test_the_same_data_again_is_answered_from_the_cache(grown):
    from trackrec.features.store import open_store
    from trackrec.features.versions import history

    executed = run_tasks(grown["config"], grown["run_dir"])[1]
    assert executed == {"data-version", "publish"}  # publish checks the store itself
    assert len(history(open_store(grown["config"].features.store), "control")) == 2  # nothing new to read


def objects_under(uri: str) -> dict[str, bytes]:
    """relative key -> content of every S3 object under `uri`."""
    s3, prefix = client(), uri.removeprefix("s3://trackrec/") + "/"
    listed = s3.list_objects_v2(Bucket="trackrec", Prefix=prefix).get("Contents", [])
    return {o["Key"][len(prefix) :]: s3.get_object(Bucket="trackrec", Key=o["Key"])["Body"].read() for o in listed}


def test_the_refresh_trains_nothing_and_republishes_with_the_arms_generator(grown):
    """The refresh pipeline on the grown log: the active users' snapshots as of now, written by the
    G that wrote the version the arm reads (kept with it), every other snapshot carried over."""
    from trackrec.features.store import open_store
    from trackrec.features.versions import history, rollback, version_tags

    store = grown["config"].features.store
    before = history(open_store(store), "control")[-1]["version"]
    result, executed = run_tasks(grown["config"], grown["run_dir"], active_within_days=1, refresh=True)
    assert result["ctr"] is None and {"current-generator", "publish"} <= executed
    trained = {"select-samples", "distill", "align", "rectune", "sample", "score", "greedy", "ctr-judge", "train-ctr"}
    assert not executed & trained
    log = history(open_store(store), "control")
    assert len(log) == 3 and log[-1]["version"] != before
    new, old = (version_tags(open_store(store), v) for v in (log[-1]["version"], before))
    assert new["base"] == before and int(new["rows"]) == int(old["rows"])  # the same snapshots, the now ones anew
    assert new["generator"] == old["generator"]  # the same G, named by the version that keeps it
    assert "adapter_config.json" in objects_under(f"s3://trackrec/features/generators/{new['generator']}")
    rollback(open_store(store), "control")  # back to the grown run's version: the next test walks from there


def test_rollback_returns_the_arm_to_the_first_runs_version(grown):
    from trackrec.features.store import open_repo, open_store
    from trackrec.features.versions import history, read, rollback

    store = grown["config"].features.store
    first_version = history(open_store(store), "control")[0]["version"]
    assert rollback(open_store(store), "control")["version"] == first_version
    assert read(open_repo(store.repo), [16]).model_version.tolist() == [None]  # not in the first run's data


def test_missing_model_is_a_config_error_before_any_task(tmp_path, collm_root):
    config = loop_config(tmp_path, collm_root, tmp_path / "no-such-model", "http://127.0.0.1:9/v1")
    with pytest.raises(ConfigError, match="no-such-model.*is not a model folder"):
        run_local(config, tmp_path / "run")
    assert not (tmp_path / "run" / "artifacts").exists()


def test_budget_beyond_the_context_fails_before_any_task(tmp_path, collm_root, tiny_lm_dir):
    config = loop_config(tmp_path, collm_root, tiny_lm_dir, "http://127.0.0.1:9/v1")
    config.llm.generation.history_tokens = 500  # + 8 new tokens fits the tiny model's 512; + 20 does not
    config.llm.generation.max_new_tokens = 20
    with pytest.raises(ConfigError, match="= 520 exceed the context of .* \\(512 tokens\\)"):
        run_local(config, tmp_path / "run")
    assert not (tmp_path / "run" / "artifacts").exists()
