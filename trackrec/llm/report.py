"""The loop's report for someone deciding: the headline first (does the RecCoT help the CTR model,
against the permuted-vector control; does V beat the like-rate prior), what was published, then one
chart per measure and the table in the order the text reads. As a self-contained HTML page (KFP's
UI shows it; locally it opens in a browser) and as a Markdown card (KFP's Markdown artifact).
"""

from __future__ import annotations

import json
from pathlib import Path

from trackrec import markdown
from trackrec.atomic import atomic_file
from trackrec.inert import inert_html
from trackrec.llm.charts import Measure, chart, finite, interval_chart

# In the order the text reads; each a chart of its own.
MEASURES = (
    Measure(
        "V as recommender: AUC on held-out users",
        (("auc", "V(t)'s AUC"),),
        min_span=0.05,
        band="auc",
        baselines=(("prior_auc", "like-rate prior's AUC"), (0.5, "chance")),
    ),  # fmt: skip
    Measure("G(t)'s reward under the fixed V0", (("reward_fixed_v", "reward under V0"),), 0.05, "reward_fixed_v"),
    Measure(
        "Reward under V(t)",
        (
            ("mean_reward", "greedy RecCoTs' reward under V(t)"),
            ("sampled_mean_reward", "sampled, under V(t-1)"),
            ("sampled_chosen_reward", "chosen, under V(t-1)"),
        ),
        min_span=0.05,
    ),
    Measure("CTR judge's test AUC with G(t)'s RecCoT vectors", (("ctr_auc", "CTR judge's AUC"),), min_span=0.02),
    Measure("Greedy RecCoT length", (("reccot_tokens", "RecCoT tokens (mean)"),), min_span=10.0),
)
# The table's columns after the charts' own: V's other scores, then how much was measured on what.
MORE_COLUMNS = (("acc", "V's accuracy"), ("logloss", "V's LogLoss"), ("samples", "samples"), ("users", "users"))
MORE_COLUMNS += (("data_version", "data version"),)
UNDEFINED = "undefined (no resample of the users had both labels): nothing can be read from it"
LIFT_NOTE = (
    "One trained model each way, on one seed: the interval is over test users, not over training seeds. "
    "A lift this small may be seed noise; bench/reccot_lift.py measures it across seeds."
)
NOTES = (
    "Iteration 0: G0 from distillation, V0 Rec-tuned on G0's greedy RecCoTs. Sampled rewards are V(t-1)'s "
    "rewards of the N RecCoTs drawn from G(t-1); chosen: the best of each user's N. Intervals: 95%, bootstrap "
    "over held-out users. The like-rate prior scores each sample by the user's share of likes in their "
    "history: what V must beat. The reward under V0, which stays fixed, moves only when G does (the reward "
    "under V(t) also moves when V does). The CTR judge: the CTR backbone trained with G(t)'s greedy RecCoTs "
    "of the selected users as user vectors (the others read zeros)."
)


def table(rows: list[dict]) -> list[dict[str, str]]:
    """The per-iteration table, header -> cell text, in the text's order: the iteration, each chart's
    lines (the first with its interval) and baselines, MORE_COLUMNS, then any other key by its name."""
    columns = [("iteration", "iteration", None)]
    for measure in MEASURES:
        columns += [(key, label, measure.band if i == 0 else None) for i, (key, label) in enumerate(measure.lines)]
        columns += [(key, label, None) for key, label in measure.baselines if isinstance(key, str)]
    columns += [(key, label, None) for key, label in MORE_COLUMNS]
    present = {key for r in rows for key in r}
    used = {key for key, _, band in columns} | {
        f"{band}_{end}" for *_, band in columns if band for end in ("low", "high")
    }
    columns = [c for c in columns if c[0] in present] + [(k, str(k), None) for k in sorted(present - used, key=str)]
    return [
        {label + (" [95% interval]" if band else ""): _shown(r, key, band) for key, label, band in columns}
        for r in rows
    ]


def _shown(row: dict, key: str, band: str | None) -> str:
    text = cell(row.get(key))
    if band and text and row.get(f"{band}_low") is not None:
        text += f" [{row[f'{band}_low']:.4f}, {row[f'{band}_high']:.4f}]"
    return text


def cell(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "" if value is None else str(value)


def lift_sentence(ctr: dict) -> str | None:
    """What the RecCoT vector did for the CTR model, against the control, in a sentence; `ctr`: the
    train_ctr task's metrics (None when it trained without vectors, so without the control)."""
    if "lift_estimate" not in ctr:
        return None
    auc, control_auc = ctr["auc"], ctr["auc_permuted_control"]
    estimate, low, high = ctr["lift_estimate"], ctr["lift_ci_low"], ctr["lift_ci_high"]
    # one trained model each way: the interval holds the test users' variation, not training noise
    side = "above" if low > 0 else "below" if high < 0 else None
    verdict = f"{side} the control on these test users, one seed each" if side else "no difference this run can detect"
    verdict = verdict if all(finite(v) for v in (estimate, low, high)) else UNDEFINED
    return (
        f"RecCoT vectors: CTR test AUC {auc:.4f} with each user's own point-in-time RecCoT vector, "
        f"{control_auc:.4f} with the same vectors shuffled across users (the control): "
        f"{estimate:+.4f}, 95% interval over test users [{low:+.4f}, {high:+.4f}]: {verdict}."
    )


def prior_sentence(row: dict) -> str | None:
    """V(T) against the like-rate prior on the same held-out samples, in a sentence."""
    if row.get("auc_low") is None or row.get("prior_auc") is None:
        return None
    low, high, prior = row["auc_low"], row["auc_high"], row["prior_auc"]
    verdict = "V beats the prior" if low > prior else "V is below the prior" if high < prior else "V does not beat it"
    verdict = verdict if all(finite(v) for v in (row["auc"], low, high, prior)) else UNDEFINED
    return (
        f"V({row['iteration']}) as recommender: AUC {row['auc']:.4f}, 95% interval [{low:.4f}, {high:.4f}] over "
        f"{row.get('users')} held-out users, against {prior:.4f} for the users' like-rate in their history: {verdict}."
    )


def caveats(rows: list[dict]) -> list[str]:
    """What a reader must know before trusting V's AUC: below chance, or no better than the prior."""
    notes = []
    for r in rows:
        if r.get("auc_high") is None:
            continue
        if not all(finite(r.get(key)) for key in ("auc", "auc_low", "auc_high")):
            notes.append(f"Iteration {r['iteration']}: V's AUC or its interval is {UNDEFINED}.")
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


def published_facts(summary: dict | None) -> dict[str, str]:
    """What publish did, by name: the version, the arm that reads it and the data it came from."""
    if summary is None:
        return {}
    facts = {"feature version": summary["version"]}
    if summary.get("already_published"):
        facts["feature version"] += " (already published: this run wrote nothing new)"
    arm = summary.get("arm")
    if arm:
        state = "now reads it" if arm["changed"] else "already read it"
        if arm.get("frozen_by"):
            state = f"frozen by experiment {arm['frozen_by']}: still reads {arm['version']}"
        facts["arm"] = f"{arm['arm']} ({state})"
    else:
        facts["arm"] = "none (no A/B arm configured)"
    facts["data version"] = summary.get("data_version") or "unknown"
    if "users" in summary:
        facts["users"] = f"{summary['users']:,}"
    return facts


def published_card(summary: dict | None) -> str:
    """publish's summary as Markdown: one line per fact."""
    return "\n".join(
        f"- {markdown.text(name)}: {markdown.text(value)}" for name, value in published_facts(summary).items()
    )


def headline(rows: list[dict], ctr: dict | None) -> list[str]:
    """The report's first sentences: the CTR lift (when the run trained with the vectors), V vs the prior."""
    sentences = []
    if ctr is not None and (words := lift_sentence(ctr)):
        sentences.append(words)
    if rows and (words := prior_sentence(rows[-1])):
        sentences.append(words)
    return sentences


def page(rows: list[dict], title: str, ctr: dict | None = None, published: dict | None = None) -> str:
    """The report as one self-contained HTML page; every text from a run inert and escaped."""
    parts = [f"<h1>{inert_html(title)}</h1>"]
    parts += [f"<p class='headline'>{inert_html(s)}</p>" for s in headline(rows, ctr)]
    if _has_lift(ctr):
        picture = interval_chart(
            "CTR test AUC: own RecCoT vector minus the permuted control",
            ctr["lift_estimate"], ctr["lift_ci_low"], ctr["lift_ci_high"], "no lift", min_span=0.01,
        )  # fmt: skip
        parts += [_image(picture, "the CTR lift with its 95% interval")] if picture else []
        parts.append(f"<p><small>{inert_html(LIFT_NOTE)}</small></p>")
    facts = published_facts(published)
    if facts:
        parts.append("<h2>Published</h2><ul>")
        parts += [f"<li>{inert_html(name)}: <b>{inert_html(value)}</b></li>" for name, value in facts.items()]
        parts.append("</ul>")
    parts.append("<h2>The loop, iteration by iteration</h2>")
    for measure in MEASURES:
        if picture := chart(measure, rows):
            parts.append(_image(picture, measure.title))
    shown = table(rows)
    head = "".join(f"<th>{inert_html(header)}</th>" for header in shown[0]) if shown else ""
    body = "".join("<tr>" + "".join(f"<td>{inert_html(text)}</td>" for text in r.values()) + "</tr>" for r in shown)
    parts.append(f"<div style='overflow-x:auto'><table><tr>{head}</tr>{body}</table></div>")
    parts += [f"<p><b>Caveat.</b> {inert_html(note)}</p>" for note in caveats(rows)]
    parts.append(f"<p>{inert_html(NOTES)}</p>")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{inert_html(title)}</title>"
        "<style>body{font-family:sans-serif;margin:1em;max-width:800px}table{border-collapse:collapse;"
        "font-size:12px}td,th{border:1px solid #ccc;padding:3px 5px;text-align:right}"
        "img{max-width:100%}.headline{font-size:1.15em}</style></head><body>" + "".join(parts) + "</body></html>"
    )


def card(rows: list[dict], ctr: dict | None = None, published: dict | None = None) -> str:
    """The report's headline, what was published and the table as Markdown (KFP's Markdown artifact)."""
    lines = [f"**{markdown.text(s)}**\n" for s in headline(rows, ctr)]
    lines += [f"{markdown.text(LIFT_NOTE)}\n"] if _has_lift(ctr) else []
    lines.append(published_card(published))
    if rows:
        lines += ["", *markdown.table(table(rows))]
    lines += [f"\n{markdown.text(note)}" for note in caveats(rows)]
    return "\n".join(lines) + "\n"


def write_report(
    rows: list[dict], files, title: str = "TrackRec loop", ctr: dict | None = None, published: dict | None = None
) -> Path:
    """The rows (JSON), the page and the card at `files.rows`, `.page` and `.card` (a stage's
    Report); `rows`: one dict per iteration (key 'iteration'); `ctr`: train_ctr's metrics (the final
    CTR model, against its control when it read vectors); `published`: publish's summary. Returns
    the page."""
    with atomic_file(files.rows) as tmp:
        tmp.write_text(json.dumps(rows, indent=2))
    with atomic_file(files.card) as tmp:
        tmp.write_text(card(rows, ctr, published))
    with atomic_file(files.page) as tmp:
        tmp.write_text(page(rows, title, ctr, published))
    return files.page


def _has_lift(ctr: dict | None) -> bool:
    return ctr is not None and "lift_estimate" in ctr


def _image(picture: str, alt: str) -> str:
    return f"<img alt='{inert_html(alt)}' src='data:image/png;base64,{picture}'>"
