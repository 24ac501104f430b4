"""The readout as a page a product owner reads top down: the decision and why, the per-arm table
(CTR, CVR, lift with its interval, the SRM p-value), then the guardrails and the models' quality.
The same numbers as Markdown (a KFP Markdown artifact, the CLI's table)."""

from __future__ import annotations

import math
from pathlib import Path

from trackrec.experiments.readout import CONFIDENCE, Comparison, Readout
from trackrec.inert import inert_html
from trackrec.markdown import table as markdown_table
from trackrec.markdown import text as markdown_text

REPLAY_NOTE = (
    "An offline replay measures each arm's prediction quality on logged outcomes, not the causal effect "
    "of ranking with it: the outcomes were logged before the arms existed."
)


def _pct(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.{digits}f}%"


def _lift(comparison: Comparison | None, metric: str) -> str:
    if comparison is None:
        return "control"
    lift = comparison.lifts.get(metric)
    if lift is None:
        return "not read (SRM)" if comparison.reason == "sample ratio mismatch" else "-"
    return f"{100 * lift['rel']:+.2f}% [{100 * lift['low']:+.2f}%, {100 * lift['high']:+.2f}%]"


def rows(readout: Readout) -> list[dict[str, str]]:
    """The headline table: one row per arm."""
    by_treatment = {c.treatment: c for c in readout.comparisons}
    table = []
    for arm in readout.arms:
        comparison = by_treatment.get(arm["arm"])
        table.append(
            {
                "arm": arm["arm"],
                "users": f"{arm['users']:,}",
                "impressions": f"{arm['impressions']:,}",
                "CTR": _pct(arm["ctr"]),
                "CVR (post-click)": _pct(arm.get("cvr")),
                "CTR lift [95% CI]": _lift(comparison, "ctr"),
                "CVR lift [95% CI]": _lift(comparison, "cvr"),
                "SRM p-value": "-" if comparison is None else f"{comparison.srm_pvalue:.3g}",
                "decision": "-" if comparison is None else f"{comparison.decision} ({comparison.reason})",
            }
        )
    return table


def _quality(readout: Readout) -> list[dict[str, str]]:
    table = []
    for arm in readout.arms:
        row = {"arm": arm["arm"], "feature-miss rate": _pct(arm["feature_miss_rate"])}
        row["latency (mean ms)"] = f"{arm['latency_ms_mean']:.1f}" if "latency_ms_mean" in arm else "not logged"
        for key, name in (("model_auc", "CTR AUC"), ("model_logloss", "CTR LogLoss")):
            row[name] = f"{arm[key]:.4f}" if key in arm else "-"
        for key, name in (("model_cvr_auc", "CVR AUC"), ("model_cvr_logloss", "CVR LogLoss")):
            row[name] = f"{arm[key]:.4f}" if key in arm else "-"
        table.append(row)
    return table


def metric_values(readout: Readout) -> dict[str, float]:
    """The readout's numbers as flat metrics (a KFP Metrics artifact): each treatment's SRM p-value
    and, per metric, its relative lift with the interval's ends."""
    values = {}
    for comparison in readout.comparisons:
        values[f"{comparison.treatment}_srm_pvalue"] = float(comparison.srm_pvalue)
        for metric, lift in comparison.lifts.items():
            for key in ("rel", "low", "high"):
                values[f"{comparison.treatment}_{metric}_lift_{key}"] = float(lift[key])
    return values


def markdown(readout: Readout) -> str:
    """The decision and both tables as Markdown; the experiment's and arms' names shown as text."""
    lines = [f"**{markdown_text(readout.experiment)}: {markdown_text(readout.decision)}**", ""]
    for table in (rows(readout), _quality(readout)):
        lines += [*markdown_table(table), ""]
    return "\n".join(lines)


def _html_table(table: list[dict[str, str]]) -> str:
    header = "".join(f"<th>{inert_html(h)}</th>" for h in table[0])
    body = "".join("<tr>" + "".join(f"<td>{inert_html(v)}</td>" for v in row.values()) + "</tr>" for row in table)
    return f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


def write_html(readout: Readout, path: str | Path, replay: bool = False) -> Path:
    reasons = "; ".join(f"{c.treatment}: {c.decision} ({c.reason})" for c in readout.comparisons)
    cuped = any(c.cuped for c in readout.comparisons)
    notes = [
        f"Intervals: {CONFIDENCE:.0%}, relative lift against {readout.control}, delta method over users"
        + (" with CUPED on the users' pre-period clicks." if cuped else " (no pre-period logged: no CUPED)."),
        "Decision rule: docs/experiments.md. CVR is post-click (conversions / clicks).",
        *([REPLAY_NOTE] if replay else []),
    ]
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{inert_html(readout.experiment)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}.decision{{font-size:1.6em}}</style></head><body>
<h1>Experiment {inert_html(readout.experiment)}</h1>
<p class="decision">Decision: <b>{inert_html(readout.decision)}</b></p><p>{inert_html(reasons)}</p>
<h2>Arms</h2>{_html_table(rows(readout))}
<h2>Guardrails and model quality (each arm's model on its own exposures)</h2>{_html_table(_quality(readout))}
<ul>{"".join(f"<li>{inert_html(n)}</li>" for n in notes)}</ul></body></html>
"""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path
