"""`trackrec run`: the whole pipeline through KFP's local runner on a tiny random model, with the
data, the base model and the offline features on a real S3 API (moto's server) on 127.0.0.1."""

import copy
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
from trackrec.ctr.saved import trained_metrics
from trackrec.errors import ConfigError
from trackrec.run_config import RunConfig
from trackrec.stages.outputs import Embeddings, Judge, Report, Trained


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
    """One run of the whole pipeline (T=1, features for 5 users, the control arm) with the data, the
    base model and the offline features on S3, the teacher on 127.0.0.1; kept for the module's tests,
    the teacher up. What a later run in the same folder changes (the teacher's count, the S3 listing,
    the results index and report.html) is taken here; later runs publish for the candidate arm only,
    so what the control arm reads stays this run's."""
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
            before = local_runs(folder / "run")
            result, executed = run_tasks(config, folder / "run")
            (artifacts,) = local_runs(folder / "run") - before  # this run's folder of task outputs
            listed = [o["Key"] for o in s3.list_objects_v2(Bucket="trackrec", Prefix="features/")["Contents"]]
            latest = latest_run(folder / "run")
            yield {
                "folder": folder,
                "config": config,
                "result": result,
                "executed": executed,
                "artifacts": artifacts,
                "latest": latest,
                "report": latest["report"].read_bytes(),
                "asked": len(server.requests),
                "listed": listed,
                "s3": s3,
            }


def test_pipeline_runs_end_to_end_on_s3(first_run):
    from trackrec.ctr.features import rows_to_batch
    from trackrec.ctr.train import predict
    from trackrec.data.dataset import Dataset
    from trackrec.data.snapshots import SnapshotVectors
    from trackrec.features.reading import open_repo, read
    from trackrec.features.serving import RequestScorer

    tmp_path, result, first = (first_run[k] for k in ("folder", "result", "executed"))
    assert first_run["asked"] == 6  # G0's teacher: half of the 12 users
    assert {"distill", "align", "rectune", "rectune-2", "evaluate", "evaluate-2", "encode", "train-ctr"} <= first
    assert "report" in first
    paths, artifacts = first_run["latest"], first_run["artifacts"]
    assert {k: str(v) for k, v in paths.items()} == result["paths"]
    assert set(paths) == {"ctr", "ctr_model", "dataset", "curves", "loop", "report", "generator", "distilled"}
    assert paths["report"].suffix == ".html" and first_run["report"] == paths["curves"].read_bytes()
    trained = trained_metrics(paths["ctr_model"])
    assert {k: result["ctr"][k] for k in trained["test"]} == trained["test"]
    assert trained["config"]["dense_dim"] == 384  # RecCoT vectors reached DIN
    lift = trained["lift"]  # and the permuted-vector control beside them, with its interval
    assert lift["control"] == "permuted" and result["ctr"]["lift_estimate"] == lift["difference"]["estimate"]
    assert lift["difference"]["ci_low"] <= lift["difference"]["estimate"] <= lift["difference"]["ci_high"]
    page = paths["curves"].read_text()  # the run's report: the headline, what was published, the charts
    assert page.index("own point-in-time RecCoT vector") < page.index("Published") < page.index("<img alt='V as")
    rows = json.loads(Report(paths["loop"]).rows.read_text())
    assert [row["iteration"] for row in rows] == [0, 1]
    assert 0 < rows[1]["sampled_mean_reward"] <= rows[1]["sampled_chosen_reward"] < 1
    assert rows[0]["reward_fixed_v"] == rows[0]["mean_reward"] and 0 < rows[1]["reward_fixed_v"] < 1  # under V0
    judged = [Judge(path) for path in sorted(artifacts.glob("ctr-judge*/judge"))]
    assert {"ctr-judge", "ctr-judge-2"} <= first and len(judged) == 2  # one CTR judge per iteration
    by_iteration = {trained_metrics(judge.model)["test"]["auc"] for judge in judged}
    assert {row["ctr_auc"] for row in rows} == by_iteration  # the report's CTR curve is the judges' test AUC
    test_start = Dataset.open(paths["dataset"]).samples("test").timestamp.min()
    for judge in judged:  # no held-out user, no test-period text reaches a judge
        assert (pd.read_parquet(judge.reccots.table).as_of < test_start).all()
    for model in ("generator", "distilled"):
        assert (Trained(paths[model]).adapter / "adapter_config.json").is_file()

    # Features: readable from the local Feast store, the offline rows on S3, the same for both arms.
    (encoded,) = artifacts.glob("for-loop-*/encode/embeddings")
    embeddings = Embeddings(encoded).table
    table = pd.read_parquet(embeddings)
    assert table.user_id.nunique() == 5 and set(table.iteration) == {1}
    newest = table.sort_values(["user_id", "as_of"]).groupby("user_id").tail(1)  # what is served online
    published = read(open_repo(tmp_path / "feast"), newest.user_id.tolist())
    np.testing.assert_array_equal(np.stack(published.embedding), np.stack(newest.embedding))
    assert published.reccot.tolist() == newest.reccot.tolist() and published.as_of.tolist() == newest.as_of.tolist()
    version = published.model_version[0]
    assert [key for key in first_run["listed"] if "/generators/" not in key] == [f"features/{version}.parquet"]
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


@pytest.fixture(scope="module")
def grown(first_run):
    """The recurring path on one machine: the data on S3 grows in place (12 users, then 16; the first
    12 unchanged) and the pipeline runs again in the same run folder (KFP's cache too), for every
    user, publishing for the candidate arm (pointed at the first run's version first, so that it can
    roll back to it). What the tests read is taken here: the arm's history and rows right after."""
    from trackrec.features.arms import assign, history
    from trackrec.features.reading import open_repo, read
    from trackrec.features.store import open_store

    config = copy.deepcopy(first_run["config"])
    config.features.arm, config.features.users = "candidate", None
    store = config.features.store
    first_version = history(open_store(store), "control")[-1]["version"]
    assign(open_store(store), "candidate", first_version)
    upload_dir(client(), write_collm(first_run["folder"] / "grown", collm_rows(n_users=16)), "s3://trackrec/data")
    run_dir = first_run["folder"] / "run"
    run = run_tasks(config, run_dir)
    log = history(open_store(store), "candidate")
    rows = read(open_repo(store.repo), list(range(1, 17)), arm="candidate")
    report = json.loads(Report(latest_run(run_dir)["loop"]).rows.read_text())
    return {"config": config, "run_dir": run_dir, "executed": run[1], "log": log, "rows": rows, "report": report}


def test_a_grown_log_is_prepared_again_and_its_new_users_published(grown):
    assert {"prepare-data", "distill", "publish"} <= grown["executed"]  # new data: not the cache's
    log = grown["log"]  # the first run's version, then the grown run's
    assert len(log) == 2 and log[0]["data_version"] != log[1]["data_version"]
    rows = grown["rows"]
    assert rows.model_version.notna().all() and set(rows.model_version) == {log[1]["version"]}  # users 13-16 too
    assert {row["data_version"] for row in grown["report"]} == {log[1]["data_version"]}  # the report names its data


def objects_under(uri: str) -> dict[str, bytes]:
    """relative key -> content of every S3 object under `uri`."""
    s3, prefix = client(), uri.removeprefix("s3://trackrec/") + "/"
    listed = s3.list_objects_v2(Bucket="trackrec", Prefix=prefix).get("Contents", [])
    return {o["Key"][len(prefix) :]: s3.get_object(Bucket="trackrec", Key=o["Key"])["Body"].read() for o in listed}


def test_the_refresh_trains_nothing_and_republishes_with_the_arms_generator_and_rolls_back(grown):
    """The refresh pipeline on the grown log: the active users' snapshots as of now, written by the
    G that wrote the version the arm reads (kept with it), every other snapshot carried over; then
    the arm rolls back, version by version, to the first run's."""
    from trackrec.features.arms import history, rollback
    from trackrec.features.reading import open_repo, read
    from trackrec.features.store import open_store
    from trackrec.features.versions import version_tags

    config, store = grown["config"], grown["config"].features.store
    before = grown["log"][-1]["version"]
    result, executed = run_tasks(config, grown["run_dir"], active_within_days=1, refresh=True)
    assert result["ctr"] is None and {"current-generator", "publish"} <= executed
    trained = {"select-samples", "distill", "align", "rectune", "sample", "score", "greedy", "ctr-judge", "train-ctr"}
    assert not executed & trained
    log = history(open_store(store), "candidate")
    assert len(log) == 3 and log[-1]["version"] != before
    new, old = (version_tags(open_store(store), v) for v in (log[-1]["version"], before))
    assert new["base"] == before and int(new["rows"]) == int(old["rows"])  # the same snapshots, the now ones anew
    assert new["generator"] == old["generator"]  # the same G, named by the version that keeps it
    assert "adapter_config.json" in objects_under(f"s3://trackrec/features/generators/{new['generator']}")
    assert rollback(open_store(store), "candidate")["version"] == before
    assert rollback(open_store(store), "candidate")["version"] == grown["log"][0]["version"]
    assert read(open_repo(store.repo), [16], arm="candidate").model_version.tolist() == [None]  # not in the first data


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
