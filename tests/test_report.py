"""The loop's report for someone deciding: the headline first, what was published, one 800 px chart
per measure with honest y-axes, the table in the text's order, and the same as a Markdown card."""

import base64
import json
import math
import re
import struct
from html import escape

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trackrec.llm.charts import WIDTH_PX, axis_limits, measure_limits
from trackrec.llm.report import MEASURES, card, lift_sentence, page, prior_sentence, table
from trackrec.stages.outputs import Published, Report
from trackrec.stages.report import final_report


def loop_rows(ctr_noise: float = 0.00004) -> list[dict]:
    """Three iterations as evaluate writes them; the CTR judge's AUC moves by noise only."""
    rows = []
    for t in range(3):
        row = {"iteration": t, "auc": 0.61 + 0.01 * t, "auc_low": 0.55, "auc_high": 0.68, "prior_auc": 0.63}
        row |= {"reward_fixed_v": 0.51, "reward_fixed_v_low": 0.49, "reward_fixed_v_high": 0.53, "mean_reward": 0.52}
        row |= {"ctr_auc": 0.77648 + ctr_noise * t, "reccot_tokens": 27.1 + 0.1 * t, "acc": 0.6, "users": 40}
        rows.append(row | ({"sampled_mean_reward": 0.5, "sampled_chosen_reward": 0.56} if t else {}))
    return rows


LIFT = {
    "auc": 0.7766,
    "auc_permuted_control": 0.7765,
    "lift_estimate": 1e-4,
    "lift_ci_low": -3e-4,
    "lift_ci_high": 5e-4,
}
PUBLISHED = {"version": "v-1a2b", "users": 6040, "arm": {"arm": "candidate", "version": "v-1a2b", "changed": True}}
PUBLISHED |= {"data_version": "d-77"}


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=20),
    min_span=st.floats(1e-6, 100),
)
def test_an_axis_holds_every_value_and_is_never_narrower_than_its_span(values, min_span):
    low, high = axis_limits(values, min_span)
    assert low <= min(values) and max(values) <= high
    assert high - low >= min_span * (1 - 1e-9)


def test_noise_does_not_read_as_a_cliff_and_an_interval_is_never_cut():
    rows = loop_rows()
    by_title = {m.title: m for m in MEASURES}
    ctr = measure_limits(by_title["CTR judge's test AUC with G(t)'s RecCoT vectors"], rows)
    assert ctr[1] - ctr[0] >= 0.02  # 0.77648-0.77656 drawn on at least 0.02 of AUC
    auc = measure_limits(by_title["V as recommender: AUC on held-out users"], rows)
    assert auc[0] <= 0.5 and auc[1] >= 0.68  # the interval's ends and the chance line inside
    tokens = measure_limits(by_title["Greedy RecCoT length"], rows)
    assert tokens[1] - tokens[0] >= 10


def _widths(html: str) -> list[int]:
    """The pixel width of every PNG embedded in the page (the IHDR chunk)."""
    pngs = [base64.b64decode(data) for data in re.findall(r"base64,([A-Za-z0-9+/=]+)", html)]
    return [struct.unpack(">I", png[16:20])[0] for png in pngs]


def test_the_page_reads_headline_then_published_then_one_chart_per_measure_then_the_table():
    html = page(loop_rows(), "run", LIFT, PUBLISHED)
    order = ["CTR test AUC 0.7766", "V(2) as recommender", "Published", "v-1a2b", "candidate (now reads it)", "d-77"]
    order += [escape(m.title) for m in MEASURES] + ["<table>"]
    places = [html.index(text) for text in order]
    assert places == sorted(places), order
    assert _widths(html) == [WIDTH_PX] * (1 + len(MEASURES))  # the lift and each measure, 800 px wide
    headers = re.findall(r"<th>(.*?)</th>", html)
    assert headers[:4] == [
        "iteration",
        "V(t)&#x27;s AUC [95% interval]",
        "like-rate prior&#x27;s AUC",
        "reward under V0 [95% interval]",
    ]


def test_the_verdicts_follow_the_intervals():
    def ctr(estimate, low, high):
        return {"auc": 0.77, "auc_permuted_control": 0.77, "lift_estimate": estimate, "lift_ci_low": low} | {
            "lift_ci_high": high
        }

    assert "above the control on these test users" in lift_sentence(ctr(0.01, 0.002, 0.02))
    assert "below the control on these test users" in lift_sentence(ctr(-0.01, -0.02, -0.002))
    assert "no difference this run can detect" in lift_sentence(ctr(0.0, -0.01, 0.01))
    assert lift_sentence({"auc": 0.77}) is None  # trained without vectors: no control to read
    row = {"iteration": 2, "auc": 0.7, "prior_auc": 0.6, "users": 40}
    assert "V beats the prior" in prior_sentence(row | {"auc_low": 0.65, "auc_high": 0.75})
    assert "V is below the prior" in prior_sentence(row | {"auc_low": 0.5, "auc_high": 0.55})
    assert "V does not beat it" in prior_sentence(row | {"auc_low": 0.55, "auc_high": 0.75})
    assert prior_sentence({"iteration": 0, "auc": 0.7}) is None


def test_the_card_shows_names_as_the_characters_they_are():
    hostile = {**PUBLISHED, "arm": {"arm": "x|y](http://e.example)<b>*", "version": "v", "changed": False}}
    text = card(loop_rows(), LIFT, hostile)
    assert "<b>" not in text and not re.search(r"(?<!\\)\]\(", text) and "x\\|y\\](http" in text
    assert "://" not in text  # a bare URL in a name is shown, not autolinked by the UI's renderer
    columns = len(table(loop_rows())[0])
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(rows) == 2 + 3 and all(len(re.findall(r"(?<!\\)\|", line)) == columns + 1 for line in rows)


@pytest.mark.parametrize("with_vectors", [True, False])
def test_the_final_report_reads_the_loop_the_ctr_model_and_publish(tmp_path, with_vectors):
    loop, published, ctr = tmp_path / "loop", tmp_path / "published", tmp_path / "ctr-metrics"
    for folder in (loop, published):
        folder.mkdir()
    Report(loop).rows.write_text(json.dumps(loop_rows()))
    ctr.write_text(json.dumps(LIFT if with_vectors else {"auc": 0.77}))  # train_ctr's Metrics file
    Published(published).summary.write_text(json.dumps(PUBLISHED))
    written = final_report(loop, ctr, published, tmp_path / "report")
    html, text = written.page.read_text(), written.card.read_text()
    assert ("own point-in-time RecCoT vector" in html) is with_vectors
    assert "v-1a2b" in html and "V(2) as recommender" in text
    assert final_report(loop, ctr, None, tmp_path / "unpublished").page.read_text().count("Published") == 0


def test_an_interval_no_resample_defined_draws_nothing_and_breaks_nothing():
    rows = loop_rows()
    rows[1] |= {"auc_low": float("nan"), "auc_high": float("nan"), "ctr_auc": float("nan")}
    undefined = LIFT | {"lift_ci_low": float("nan"), "lift_ci_high": float("nan")}
    html = page(rows, "run", undefined, PUBLISHED)
    assert len(_widths(html)) == len(MEASURES)  # every measure drawn, no lift chart over NaN ends
    missed = LIFT | {"lift_estimate": 6e-4}  # a percentile interval that misses its estimate
    assert len(_widths(page(rows, "run", missed, PUBLISHED))) == 1 + len(MEASURES)


NUMBERS = st.one_of(st.none(), st.floats(-1e6, 1e6), st.sampled_from([float("nan"), float("inf"), -float("inf")]))


ROWS_OF_ANY_NUMBERS = st.lists(
    st.fixed_dictionaries({key: NUMBERS for key in ("auc", "auc_low", "auc_high", "ctr_auc")}), min_size=1, max_size=3
).map(lambda values: [loop_rows()[0] | {"iteration": i} | {k: v for k, v in row.items() if v is not None}
                      for i, row in enumerate(values)])  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(rows=ROWS_OF_ANY_NUMBERS)
def test_any_numbers_give_every_measure_a_finite_axis_of_its_span(rows):
    """NaN, infinities, missing values and wild ones (an interval no resample defined, a diverged
    model): every axis is finite and at least its measure's span."""
    for measure in MEASURES:
        limits = measure_limits(measure, rows)
        if limits is not None:
            assert all(map(math.isfinite, limits)) and limits[1] - limits[0] >= measure.min_span * (1 - 1e-9)


@settings(max_examples=15, deadline=None)  # each draws every chart
@given(rows=ROWS_OF_ANY_NUMBERS, ends=st.tuples(NUMBERS, NUMBERS, NUMBERS))
def test_any_numbers_make_a_page_and_a_card(rows, ends):
    estimate, low, high = (0.0 if v is None else v for v in ends)
    ctr = LIFT | {"lift_estimate": estimate, "lift_ci_low": low, "lift_ci_high": high}
    html, text = page(rows, "run", ctr, PUBLISHED), card(rows, ctr, PUBLISHED)
    assert set(_widths(html)) <= {WIDTH_PX} and "RecCoT vectors" in text
