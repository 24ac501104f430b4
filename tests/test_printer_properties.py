"""Text with every control and markup character through every printer of untrusted text: the CLI's
error printer, the loop's HTML report, the feature store's errors that quote a server, and the
tables of names and models other people gave (features list, experiment list and report). What
comes out holds no character that acts (ESC sequences, bidi overrides, NULs, carriage returns), is
bounded, and shows rich or HTML markup as the characters it is."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import unicodedata

import pytest
import typer
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from trackrec.cli import user_errors
from trackrec.errors import TrackRecError
from trackrec.features.store import StoreConfig, StoreError, check_reachable
from trackrec.inert import ACTING, inert
from trackrec.llm.report import card, write_report
from trackrec.stages.outputs import Report

FAST = settings(max_examples=150, deadline=None)
PIECES = st.one_of(
    st.sampled_from("[]/=\\<>&'\"\x1b\x07\x00\r\u202e\u2066\u200b\u2028\x85\ufeff"),
    st.sampled_from(["[link=http://evil.example]", "[/]", "[bold red]", "\x1b]8;;http://x\x1b\\", "</td><script>"]),
    st.characters(),
)
HOSTILE = st.lists(PIECES, max_size=20).map("".join)


def acting(text: str) -> list[str]:
    return [c for c in text if c != "\n" and unicodedata.category(c) in ACTING]


def failing_command(message: str) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    @user_errors
    def fail():
        raise TrackRecError(message)

    return app


@FAST
@given(text=HOSTILE)
def test_the_cli_prints_an_error_as_the_text_it_is(text):
    result = CliRunner().invoke(failing_command(f"bad title {text}"), [], color=False)
    assert result.exit_code == 2, result.output  # "[/]" does not crash the printer
    assert not acting(result.output)
    assert "".join(result.output.split()) == "".join(f"error: bad title {inert(text, 10_000, True)}".split())


def test_the_cli_bounds_an_error():
    result = CliRunner().invoke(failing_command("x" * 50_000), [])
    assert result.exit_code == 2 and len(result.output) < 11_000 and "40000 more characters" in result.output


@pytest.mark.filterwarnings("ignore:No artists with labels")
@settings(max_examples=25, deadline=None)  # each draws the curves
@given(title=HOSTILE, cell=HOSTILE)
def test_the_report_shows_run_text_as_inert_html(title, cell, tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    row = {"iteration": 0, "auc": 0.6, "note": cell, cell or "k": 1}
    page = write_report([row], Report(folder), title=title).read_text()
    assert not acting(page) and "<script>" not in page
    assert page.count("<td>") == page.count("<th>") == len(row)  # no text opened or closed a cell


@settings(max_examples=100, deadline=None)
@given(arm=HOSTILE, version=HOSTILE, cell=HOSTILE)
def test_the_cards_show_run_text_as_inert_markdown(arm, version, cell):
    """The loop's and publish's card: a name opens no tag, link, code span or table cell."""
    published = {"version": version, "arm": {"arm": arm, "version": version, "changed": True}, "data_version": cell}
    text = card([{"iteration": 0, "auc": 0.6, "note": cell}], published=published)
    assert not acting(text) and "<" not in text and "://" not in text
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert len({len(re.findall(r"(?<!\\)\|", line)) for line in table}) == 1  # every row as many cells


@settings(max_examples=100, deadline=None)
@given(experiment=HOSTILE, arm=HOSTILE)
def test_the_experiment_readout_shows_names_as_inert_html_and_markdown(experiment, arm, tmp_path_factory):
    from trackrec.experiments.readout import Comparison, Readout
    from trackrec.experiments.report import markdown, write_html

    arms = [{"arm": name, "users": 10, "impressions": 100, "ctr": 0.1, "feature_miss_rate": 0.0} for name in ("c", arm)]
    comparison = Comparison(arm, 0.5, "keep running", "not enough data", False)
    readout = Readout(experiment, "c", arms, [comparison])
    page = write_html(readout, tmp_path_factory.mktemp("readout") / "readout.html").read_text()
    assert not acting(page) and "<script>" not in page
    for table in page.split("<table>")[1:]:  # no name opened or closed a cell: every row as wide as the header
        head, *rows = table.split("</table>")[0].split("<tr>")[1:]
        assert all(row.count("<td>") == head.count("<th>") for row in rows)
    text = markdown(readout)
    assert not acting(text) and "<" not in text and "://" not in text


@contextlib.contextmanager
def redis_answering_errors(words: str):
    """A TCP server that answers every Redis command with a RESP error of `words`."""
    server = socket.create_server(("127.0.0.1", 0))

    def answer(client):
        with client, contextlib.suppress(OSError):
            while client.recv(65536):  # each command (redis-py's handshake, then PING) gets the error
                client.sendall(b"-ERR " + words.encode("utf-8", "replace") + b"\r\n")

    def serve():
        with contextlib.suppress(OSError):
            while True:
                threading.Thread(target=answer, args=(server.accept()[0],), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


def test_a_redis_error_is_quoted_inert_and_bounded():
    words = "\x1b[2J\x1b]8;;http://evil.example\x07click\u202e [link=x]" + "y" * 5000
    with redis_answering_errors(words) as address:
        try:
            check_reachable(StoreConfig(online="redis", redis=address))
        except StoreError as error:
            said = str(error)
        else:
            raise AssertionError("a Redis that answers errors was taken as reachable")
    assert not acting(said) and "\\u001b" in said and len(said) < 1000


@pytest.fixture(scope="module")
def published_store(tmp_path_factory):
    """A SQLite feature store with one version, and its store.yaml for the CLI."""
    import yaml

    from tests.features.test_publish import DIM, embeddings
    from trackrec.features import versions
    from trackrec.features.store import open_store

    folder = tmp_path_factory.mktemp("printed")
    config = StoreConfig(repo=str(folder / "repo"), dim=DIM)
    versions.publish(embeddings(range(1, 4), seed=1), "v1", open_store(config), progress=False)
    (folder / "store.yaml").write_text(yaml.safe_dump({"repo": config.repo, "dim": DIM}))
    return config, folder / "store.yaml"


# each example assigns on a real store; the console's width, set once, holds for every example
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(model=HOSTILE.filter(str.strip))
@example(model="[\n[")  # a newline in a name: one row, not two
def test_a_model_name_another_operator_gave_is_listed_as_the_text_it_is(model, published_store, monkeypatch):
    """`features assign --model` takes any text; whoever runs `features list` later reads it inert."""
    from trackrec import cli
    from trackrec.features import arms
    from trackrec.features.store import open_store

    config, store_yaml = published_store
    arms.assign(open_store(config), "control", "v1", model=model)
    monkeypatch.setattr(cli.console, "width", 10_000)  # the model's cell unwrapped
    listed = CliRunner().invoke(cli.app, ["features", "list", "--store", str(store_yaml)], color=False)
    assert listed.exit_code == 0, listed.output  # "[/]" does not crash the table
    assert not acting(listed.output)
    assert "".join(inert(model).split()) in "".join(listed.output.split())  # on one line: its cell is one row


def test_an_experiments_names_and_models_are_listed_and_read_out_inert(published_store, tmp_path, monkeypatch):
    from tests.experiments.test_assignment import experiment
    from tests.experiments.world import exposures
    from trackrec import cli
    from trackrec.experiments import exposures as exposure_log
    from trackrec.experiments import registry
    from trackrec.experiments.assignment import ArmSpec, Experiment
    from trackrec.features.store import open_store
    from trackrec.main import app

    monkeypatch.setattr(cli.console, "width", 10_000)  # cells unwrapped
    hostile = "[link=http://evil.example]m\x1b[2J[/]"
    config, store_yaml = published_store
    arms = (ArmSpec("control", "v1", hostile, 0.5), ArmSpec("candidate", "v1", "models/b", 0.5))
    registry.start(open_store(config), Experiment("printed", "salt", arms, "2026-12-01T00:00:00+00:00"), force=True)
    listed = CliRunner().invoke(app, ["experiment", "list", "--store", str(store_yaml)], color=False)
    assert listed.exit_code == 0 and not acting(listed.output), listed.output
    assert "[link=http://evil.example]m" in listed.output and "\\u001b" in listed.output
    named = experiment(0.5, 0.5)
    (tmp_path / "exp.json").write_text(named.to_json().replace(f'"{named.name}"', '"[bold]x\\u001b[2J"', 1))
    log = exposure_log.write(
        exposures({"arm0": (0.2, 0.3), "arm1": (0.2, 0.3)}, {"arm0": 0.5, "arm1": 0.5}), tmp_path / "l.parquet"
    )
    args = ["--definition", str(tmp_path / "exp.json"), "--exposures", str(log), "--output", str(tmp_path / "r.html")]
    read_out = CliRunner().invoke(app, ["experiment", "report", *args], color=False)
    assert not acting(read_out.output) and "[bold]x" in read_out.output, read_out.output
