"""results.json, the printed table and the charts of bench/loop_quality.py."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.markup import escape  # noqa: E402
from rich.table import Table  # noqa: E402


def interval_rows(results: dict):
    """(experiment, measure, {estimate, ci_low, ci_high}) for every measure with an interval."""
    for experiment, body in results.items():
        for measure, value in (body.get("rows") or {}).items():
            if isinstance(value, dict) and "ci_low" in value:
                yield experiment, measure, value


def print_results(results: dict, out: Path) -> None:
    table = Table(title="loop quality: 95% paired bootstrap intervals over users")
    for column in ("experiment", "measure", "estimate", "95% interval"):
        table.add_column(column, justify="right" if column != "measure" and column != "experiment" else "left")
    for experiment, measure, value in interval_rows(results):
        interval = f"[{value['ci_low']:+.4f}, {value['ci_high']:+.4f}]"
        table.add_row(experiment, measure, f"{value['estimate']:+.4f}", interval)
    console = Console(width=120)
    console.print(table)
    for experiment, body in results.items():
        for part in ("verdicts", "choices", "gates", "not_aligned", "info"):
            if part in body:
                console.print(f"{experiment} {part}: {escape(json.dumps(body[part], default=str))}")
        for measure, value in (body.get("rows") or {}).items():
            if measure.endswith("instruments"):
                console.print(f"{experiment} {measure}: {escape(json.dumps(value))}")
    console.print(f"results in {out / 'results.json'}")


def plot_intervals(name: str, rows: dict[str, dict], out: Path, reference: float | None) -> None:
    labels = list(rows)
    figure, axis = plt.subplots(figsize=(7.5, 0.6 + 0.32 * len(labels)))
    estimates = [rows[k]["estimate"] for k in labels]
    below = [rows[k]["estimate"] - rows[k]["ci_low"] for k in labels]
    errors = [below, [rows[k]["ci_high"] - rows[k]["estimate"] for k in labels]]
    axis.errorbar(estimates, range(len(labels)), xerr=errors, fmt="o", capsize=3)
    axis.set_yticks(range(len(labels)), labels)
    axis.invert_yaxis()
    if reference is not None:
        axis.axvline(reference, color="grey", linestyle=":", label=f"{reference:g}")
        axis.legend(loc="lower right")
    axis.set_title(f"{name} (95% paired bootstrap over users)")
    figure.savefig(out / f"{name}.png", dpi=110, bbox_inches="tight")
    plt.close(figure)


def plot_losses(losses: list[float], out: Path) -> None:
    figure, axis = plt.subplots(figsize=(6, 3))
    axis.plot(range(1, len(losses) + 1), losses)
    axis.set_xlabel("optimiser step")
    axis.set_ylabel("SFT loss")
    axis.set_title("G0 distillation")
    figure.savefig(out / "G0_loss.png", dpi=110, bbox_inches="tight")
    plt.close(figure)


def draw(results: dict, out: Path) -> None:
    e0 = {k: v for k, v in results.get("E0", {}).get("rows", {}).items() if not k.startswith("users_disjoint")}
    if e0:
        plot_intervals("E0_auc", {k: v for k, v in e0.items() if k.startswith("auc_")}, out, 0.5)
        plot_intervals("E0_differences", {k: v for k, v in e0.items() if not k.startswith("auc_")}, out, 0.0)
    if results.get("G0", {}).get("info", {}).get("losses"):
        plot_losses(results["G0"]["info"]["losses"], out)
    for experiment in ("E2", "E2_ctr"):
        rows = {k: v for k, v in (results.get(experiment, {}).get("rows") or {}).items() if "gain" in k}
        if rows:
            plot_intervals(experiment, rows, out, 0.0)


def write_results(out: Path, results: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
