import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import local_runs, tasks_executed
from trackrec.cli import app
from trackrec.ctr.saved import trained_metrics

runner = CliRunner()


def write_run_config(tmp_path, root, backbone="din"):
    path = tmp_path / "run.yaml"
    path.write_text(f"data:\n  root: {root}\nctr:\n  backbone: {backbone}\n  train:\n    max_epochs: 2\n")
    return path


def test_data_stats_prints_counts(collm_root):
    result = runner.invoke(app, ["data", "stats", "--root", str(collm_root)])
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if "train_rows" in line)
    row = result.output.splitlines()[result.output.splitlines().index(header) + 2]  # below the rule
    names = [cell.strip() for cell in header.strip("┃ ").split("┃")]
    values = [int(cell.strip().replace(",", "")) for cell in row.strip("│ ").split("│")]
    # 12 users x 18 / 6 / 6 rows; users and items are max id + 1 (padding id 0)
    assert dict(zip(names, values, strict=True)) == {
        "train_rows": 216,
        "valid_rows": 72,
        "test_rows": 72,
        "users": 13,
        "items": 41,
    }


def test_user_error_is_one_clear_line(tmp_path):
    result = runner.invoke(app, ["data", "stats", "--root", str(tmp_path)])
    assert result.exit_code == 2
    assert "error:" in result.output and "file not found" in result.output and "Traceback" not in result.output


def run_cli(config, run_dir) -> set[str]:
    """`trackrec run`; the tasks it executed."""
    before = local_runs(run_dir)
    result = runner.invoke(app, ["run", "--config", str(config), "--run-dir", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "done: CTR test" in result.output
    executed = tasks_executed(run_dir, before)
    timed = json.loads((run_dir / "latest.json").read_text())["tasks"]
    assert {task["name"] for task in timed} == executed  # the per-task table names what ran, nothing else
    assert all(0 < task["startup_seconds"] <= task["seconds"] for task in timed)
    for task in timed:  # the start-up in its parts: before trackrec's import, the imports, model loads
        assert min(task["startup"].values()) >= 0 and task["startup"]["python_kfp"] > 0
        assert sum(task["startup"].values()) == pytest.approx(task["startup_seconds"], abs=0.01)
    lines = result.output.splitlines()
    for task in timed:  # one line each, by the name the pipeline gives it; the table names it too
        assert sum(line.startswith(f"{task['shown']} ") and line.endswith(" s  success") for line in lines) == 1
    assert "Got executor_input" not in result.output and "Warning" not in result.output  # in the run's log
    log = (run_dir / "run.log").read_text()
    assert "Got executor_input" in log and f"log: {run_dir / 'run.log'}" in lines
    return executed


def test_run_then_rerun_is_cached_then_a_config_change_reruns_only_its_stage(collm_root, tmp_path):
    config, run_dir = write_run_config(tmp_path, collm_root), tmp_path / "run"
    assert run_cli(config, run_dir) == {"split-config", "data-version", "prepare-data", "train-ctr"}
    paths = json.loads((run_dir / "latest.json").read_text())["paths"]
    metrics = trained_metrics(paths["ctr_model"])
    assert metrics["backbone"] == "din" and set(metrics["test"]) == {"auc", "acc", "logloss"}
    assert run_cli(config, run_dir) == {"data-version"}  # the rest from KFP's cache: the data is unchanged
    changed = write_run_config(tmp_path, collm_root, "dcn")
    assert run_cli(changed, run_dir) == {"split-config", "data-version", "train-ctr"}  # the prepared data is reused
    paths = json.loads((run_dir / "latest.json").read_text())["paths"]
    assert trained_metrics(paths["ctr_model"])["backbone"] == "dcn"


def test_a_failed_task_ends_the_run_in_one_line_naming_the_task_and_its_error(tmp_path):
    """Locally a failure is not retried (no server here restarts), and the runner's own traceback
    gives way to the task's error."""
    config = tmp_path / "run.yaml"
    config.write_text(
        f"data:\n  source: behaviour-log\n  path: {tmp_path}/nope\n  valid_start: '2025-01-01'\n"
        "  test_start: '2025-02-01'\n"
    )
    result = runner.invoke(app, ["run", "--config", str(config), "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 2
    last = result.output.strip().splitlines()[-1]
    log = tmp_path / "run" / "run.log"
    said = f"error: task 'identify data' (data-version) failed: DataError: {tmp_path}/nope: not found; "
    assert last == said + f"the run's log: {log}"
    assert "Traceback" in log.read_text() and "Traceback" not in result.output


def test_verbose_prints_what_the_tasks_print(collm_root, tmp_path):
    config, run_dir = write_run_config(tmp_path, collm_root), tmp_path / "run"
    result = runner.invoke(app, ["run", "--verbose", "--config", str(config), "--run-dir", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "Executing task" in result.output and "Got executor_input" in result.output  # the runner's own lines
    assert "Executing task" in (run_dir / "run.log").read_text()


def test_kfp_locals_task_names_read_as_the_pipeline_names_them():
    from pipelines.local import readable_names
    from pipelines.settings import PipelineSettings
    from pipelines.trackrec_pipeline import build_pipeline

    pipeline = build_pipeline(2, True, PipelineSettings(pipeline_root="/tmp/unused", reach=None), cluster=False)
    names = readable_names(pipeline)
    assert names["evaluate-3"] == "evaluate 2" and names["align-2"] == "align G2" and names["distill"] == "distill G0"
    assert names["greedy-3"] == "greedy 2 / greedy (one shard)" and names["gather"] == "greedy 0 / gather greedy"


def test_run_refuses_zero_shards(tmp_path):
    result = runner.invoke(app, ["run", "--shards", "0"])
    assert result.exit_code == 2 and "--shards: must be >= 1, got 0" in result.output


def test_a_runs_feast_repo_lies_in_its_run_folder_unless_the_config_names_one(tmp_path, monkeypatch):
    """configs/local.yaml names no store repo: `trackrec run --run-dir X` publishes to X/feast (and
    says so); a config that names a repo keeps it. The pipeline itself is not run."""
    import yaml

    import pipelines.local

    given = {}

    def run_local(config, run_dir, *args):
        given[run_dir] = config.features.store.repo
        return {"tasks": [], "ctr": None, "paths": {}, "log": str(run_dir / "run.log")}

    monkeypatch.setattr(pipelines.local, "run_local", run_local)
    raw = yaml.safe_load(Path("configs/local.yaml").read_text())
    raw["features"]["store"] = {"repo": str(tmp_path / "elsewhere")}
    (tmp_path / "named.yaml").write_text(yaml.safe_dump(raw))
    expected = {tmp_path / "x": tmp_path / "x" / "feast", tmp_path / "y": tmp_path / "elsewhere"}
    for config, run_dir in (("configs/local.yaml", tmp_path / "x"), (tmp_path / "named.yaml", tmp_path / "y")):
        result = runner.invoke(app, ["run", "--config", str(config), "--run-dir", str(run_dir)])
        assert result.exit_code == 0, result.output
        assert given[run_dir] == str(expected[run_dir])
        assert f"Feast repo: {expected[run_dir]}" in result.output.splitlines()


def test_bad_config_exits_with_message(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("ctr:\n  backbone: nope\n")
    result = runner.invoke(app, ["run", "--config", str(path)])
    assert result.exit_code == 2 and "backbone: unknown 'nope'" in result.output


def test_a_runs_stream_kept_past_the_run_writes_where_the_process_does(tmp_path, capfd):
    """A handler or thread that kept a run's stdout (RunLog) after its log file closed writes to the
    process's stderr, not "--- Logging error ---" into whatever runs next."""
    import logging

    from pipelines.local import RunLog

    with open(tmp_path / "run.log", "w") as file:
        kept = RunLog(file)
    logger = logging.getLogger("tests.kept-past-the-run")
    handler = logging.StreamHandler(kept)
    logger.addHandler(handler)
    try:
        logger.warning("after the run")
    finally:
        logger.removeHandler(handler)
    err = capfd.readouterr().err
    assert "after the run" in err and "Logging error" not in err
