"""The report's charts: one measure each, 800 px wide (KFP's HTML viewer), a y-axis never narrower
than the intervals it plots nor than the measure's smallest meaningful span (noise must not read as
a cliff), baselines as labelled lines."""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

WIDTH_PX, HEIGHT_PX, DPI = 800, 300, 100


@dataclass(frozen=True)
class Measure:
    """A chart over the iterations: `lines` (key, label) plotted, the first with its 95% interval
    (`band`: the key prefix of its _low/_high) when it has one; `baselines` (key or number, label)
    drawn flat at the last row's value; `min_span`: the y-axis shows at least this range."""

    title: str
    lines: tuple[tuple[str, str], ...]
    min_span: float
    band: str | None = None
    baselines: tuple[tuple[str | float, str], ...] = field(default=())


def axis_limits(values: list[float], min_span: float) -> tuple[float, float]:
    """(low, high) holding every value (intervals' ends and baselines among them), at least `min_span`
    wide, centred on them, with a margin."""
    low, high = min(values), max(values)
    middle, span = (low + high) / 2, max(high - low, min_span) * 1.15
    return middle - span / 2, middle + span / 2


def measure_limits(measure: Measure, rows: list[dict]) -> tuple[float, float] | None:
    """The y-axis of `measure`'s chart: every value it plots (its interval's ends and its baselines
    too), at least `measure.min_span` wide; None when no row has it."""
    values = [r[key] for key, _ in measure.lines for r in rows if finite(r.get(key))]
    if not values:
        return None
    values += [r[f"{measure.band}_{end}"] for r in _banded(measure, rows) for end in ("low", "high")]
    values += [value for value, _ in _baselines(measure, rows)]
    return axis_limits(values, measure.min_span)


def chart(measure: Measure, rows: list[dict]) -> str | None:
    """The measure over the iterations as a base64 PNG; None when no row has it."""
    limits = measure_limits(measure, rows)
    if limits is None:
        return None
    figure, ax = plt.subplots(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    for index, (key, label) in enumerate(measure.lines):
        points = [(r["iteration"], r[key]) for r in rows if finite(r.get(key))]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=label)
        if index == 0 and (band := _banded(measure, rows)):
            low, high = ([r[f"{measure.band}_{end}"] for r in band] for end in ("low", "high"))
            ax.fill_between([r["iteration"] for r in band], low, high, alpha=0.2, label="95% interval")
    for value, label in _baselines(measure, rows):
        ax.axhline(value, color="grey", linestyle="--", linewidth=1)
        ax.annotate(label, (1, value), xycoords=("axes fraction", "data"), ha="right", va="bottom", fontsize=8)
    ax.set_ylim(*limits)
    ax.set_title(measure.title, fontsize=11)
    ax.set_xlabel("iteration")
    ax.set_xticks([r["iteration"] for r in rows])
    ax.legend(fontsize=8, loc="upper left")
    return _png(figure)


def _banded(measure: Measure, rows: list[dict]) -> list[dict]:
    """The rows with the first line's interval."""
    ends = [f"{measure.band}_low", f"{measure.band}_high"]
    return [r for r in rows if measure.band and all(finite(r.get(end)) for end in ends)]


def finite(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _baselines(measure: Measure, rows: list[dict]) -> list[tuple[float, str]]:
    """(value, label) of each baseline: a number, or its key's value in the last row."""
    drawn = [(key if isinstance(key, float) else rows[-1].get(key), label) for key, label in measure.baselines]
    return [(value, label) for value, label in drawn if finite(value)]


def interval_chart(
    title: str, estimate: float, low: float, high: float, zero_label: str, min_span: float
) -> str | None:
    """One estimate with its 95% interval against zero (a difference), as a base64 PNG; None when
    they are not numbers (an interval no resample defined)."""
    if not all(finite(v) for v in (estimate, low, high)):
        return None
    figure, ax = plt.subplots(figsize=(WIDTH_PX / DPI, 1.6), dpi=DPI)
    below, above = max(estimate - low, 0.0), max(high - estimate, 0.0)  # a percentile interval may miss its estimate
    ax.errorbar([estimate], [0], xerr=[[below], [above]], fmt="o", capsize=6)
    ax.axvline(0, color="grey", linestyle="--", linewidth=1)
    ax.annotate(zero_label, (0, 1), xycoords=("data", "axes fraction"), ha="left", va="top", fontsize=8)
    ax.set_xlim(*axis_limits([low, high, 0.0], min_span))
    ax.set_yticks([])
    ax.set_title(title, fontsize=11)
    return _png(figure)


def _png(figure) -> str:
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()
