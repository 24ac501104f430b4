import json

from typer.testing import CliRunner

from trackrec.cli import app

runner = CliRunner()


def write_run_config(tmp_path, root, backbone="din"):
    path = tmp_path / "run.yaml"
    path.write_text(
        f"run_dir: {tmp_path / 'run'}\ndata:\n  root: {root}\n"
        f"ctr:\n  backbone: {backbone}\n  train:\n    max_epochs: 2\n"
    )
    return path


def test_data_stats_prints_counts(collm_root):
    result = runner.invoke(app, ["data", "stats", "--root", str(collm_root)])
    assert result.exit_code == 0, result.output
    assert "216" in result.output and "13" in result.output  # 12 users x 18 train rows; 12 users + pad


def test_user_error_is_one_clear_line(tmp_path):
    result = runner.invoke(app, ["data", "stats", "--root", str(tmp_path)])
    assert result.exit_code == 2
    assert "error:" in result.output and "file not found" in result.output and "Traceback" not in result.output


def test_run_then_rerun_skips_then_config_change_reruns(collm_root, tmp_path):
    config = write_run_config(tmp_path, collm_root)
    first = runner.invoke(app, ["run", "--config", str(config)])
    assert first.exit_code == 0, first.output
    metrics = json.loads((tmp_path / "run" / "ctr" / "metrics.json").read_text())
    assert metrics["backbone"] == "din" and set(metrics["test"]) == {"auc", "acc", "logloss"}
    again = runner.invoke(app, ["run", "--config", str(config)])
    assert "prepare_data: " in again.output and again.output.count("complete, skipped") == 2
    changed = runner.invoke(app, ["run", "--config", str(write_run_config(tmp_path, collm_root, "dcn"))])
    assert changed.output.count("complete, skipped") == 1
    assert json.loads((tmp_path / "run" / "ctr" / "metrics.json").read_text())["backbone"] == "dcn"


def test_bad_config_exits_with_message(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("ctr:\n  backbone: nope\n")
    result = runner.invoke(app, ["run", "--config", str(path)])
    assert result.exit_code == 2 and "backbone: unknown 'nope'" in result.output
