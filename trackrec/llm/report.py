"""The loop's per-iteration metrics as JSON and as one self-contained HTML page with the curves.

KFP's UI shows the HTML as an artifact; locally it opens in a browser.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from trackrec.atomic import atomic_file  # noqa: E402
from trackrec.inert import inert  # noqa: E402

CURVES = (
    ("V as recommender (held-out users)", ("auc", "prior_auc", "acc")),
    ("reward under V(t)", ("mean_reward", "sampled_mean_reward", "sampled_chosen_reward")),
    ("G(t)'s reward under the fixed V0", ("reward_fixed_v",)),
    ("CTR test AUC with G(t)'s RecCoT vectors", ("ctr_auc",)),
    ("greedy RecCoT length (tokens)", ("reccot_tokens",)),
)


BANDS = {"auc": "auc", "reward_fixed_v": "reward_fixed_v"}  # curve -> the prefix of its interval's keys


ROWS = "metrics.json"  # the report's rows, one per iteration: what the next evaluate task extends


def _figure(rows: list[dict]) -> str:
    figure, axes = plt.subplots(1, len(CURVES), figsize=(5 * len(CURVES), 3.6))
    for ax, (title, keys) in zip(axes, CURVES, strict=True):
        for key in keys:
            points = [(r["iteration"], r[key]) for r in rows if r.get(key) is not None]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", label=key)
            if key in BANDS and all(r.get(f"{BANDS[key]}_low") is not None for r in rows):  # its 95% interval
                ax.fill_between([r["iteration"] for r in rows], [r[f"{BANDS[key]}_low"] for r in rows],
                                [r[f"{BANDS[key]}_high"] for r in rows], alpha=0.2)  # fmt: skip
        ax.set_title(title)
        ax.set_xlabel("iteration")
        ax.set_xticks([r["iteration"] for r in rows])
        ax.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _table(rows: list[dict]) -> str:
    keys = sorted({k for r in rows for k in r}, key=lambda k: (k != "iteration", k))
    head = "".join(f"<th>{_text(k)}</th>" for k in keys)
    body = "".join("<tr>" + "".join(f"<td>{_cell(r.get(k))}</td>" for k in keys) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else _text("" if value is None else value)


def _text(value) -> str:
    """Text from a run (a title, a metric's name, a RecCoT) as inert, bounded HTML text."""
    return html.escape(inert(value))


def caveats(rows: list[dict]) -> list[str]:
    """What a reader must know before trusting V's AUC: below chance, or no better than the prior."""
    notes = []
    for r in rows:
        if r.get("auc_high") is None:
            continue
        where = f"Iteration {r['iteration']}: V's AUC {r['auc']:.3f} [{r['auc_low']:.3f}, {r['auc_high']:.3f}]"
        if r["auc_high"] < 0.5:
            notes.append(f"{where} is below chance with its whole interval: V ranks the held-out samples backwards.")
        elif r["auc_low"] <= 0.5:
            notes.append(f"{where} includes chance: {r.get('users')} held-out users are too few to tell V from a coin.")
        if r.get("prior_auc") is not None and r["auc_high"] < r["prior_auc"]:
            notes.append(
                f"{where} is below the like-rate prior's {r['prior_auc']:.3f}: V has not learnt what the history says."
            )
    return notes


def write_report(rows: list[dict], folder: str | Path, title: str = "TrackRec loop") -> Path:
    """ROWS (metrics.json) and report.html in `folder`; `rows` are one dict per iteration (key 'iteration')."""
    folder = Path(folder)
    with atomic_file(folder / ROWS) as tmp:
        tmp.write_text(json.dumps(rows, indent=2))
    notes = "".join(f"<p><b>Caveat.</b> {_text(note)}</p>" for note in caveats(rows))
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{_text(title)}</title>"
        "<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>"
        f"<h1>{_text(title)}</h1><img alt='curves' src='data:image/png;base64,{_figure(rows)}'>"
        f"<h2>Per iteration</h2>{_table(rows)}{notes}"
        "<p>Iteration 0: G0 from distillation, V0 Rec-tuned on G0's greedy RecCoTs. "
        "Sampled rewards are V(t-1)'s rewards of the N RecCoTs drawn from G(t-1). "
        "auc_low / auc_high: V's AUC's 95% bootstrap interval over held-out users; prior_auc: the "
        "users' like-rate in their history as the score. reward_fixed_v: the held-out reward of G(t)'s "
        "greedy RecCoTs under V0, which stays fixed (the reward under V(t) also moves when V does), "
        "with its 95% interval over users. ctr_auc: the test AUC of the CTR backbone trained with G(t)'s "
        "greedy RecCoTs of the selected users as user vectors (the other users read zeros).</p></body></html>"
    )
    with atomic_file(folder / "report.html") as tmp:
        tmp.write_text(page)
    return folder / "report.html"
