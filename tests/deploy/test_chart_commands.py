"""Every `trackrec` command the chart's workloads run goes through the CLI's own parser: a renamed
command or option, or a value of the wrong type, fails here rather than in an install. Parsed only
(click's make_context, down to the command), never run."""

import os
from pathlib import Path

import pytest
import typer.main
import yaml
from typer._click import exceptions  # typer (0.29) runs its own copy of click: its parser, its errors

from tests.deploy.manifests import pod_specs
from tests.deploy.test_helm import MULTI_USER, PROD, render

VALUE_SETS = {"default": None, "prod": PROD, "multi-user": MULTI_USER, "tls": {"feast": {"tlsSecret": "feast-tls"}}}
# every command the chart runs somewhere; a render that yields none of one of them collects nothing
EXPECTED = {("compile",), ("schedule",), ("features", "read-only-front"), ("features", "list")}


def trackrec_invocations(text: str, where: str) -> list[tuple[str, list[str], dict[str, str]]]:
    """(manifest/container, the argv after `trackrec`, its environment) of every container that runs
    the CLI; a variable from a Secret or ConfigMap reads as a placeholder, as it would be set."""
    found = []
    for manifest in yaml.safe_load_all(text):
        if not manifest:
            continue
        pods = pod_specs(manifest)
        for container in [c for pod in pods for c in (*pod.get("initContainers", []), *pod.get("containers", []))]:
            argv = [*container.get("command", []), *container.get("args", [])]
            if argv and Path(argv[0]).name == "trackrec":
                name = f"{manifest['kind']} {manifest['metadata']['name']}/{container['name']}"
                env = {e["name"]: e.get("value", "<from valueFrom>") for e in container.get("env", [])}
                found.append((f"{where}: {name}", argv[1:], env))
    return found


def parsed(argv: list[str]) -> tuple[str, ...]:
    """The command path `argv` names, each level parsed (options, types, required ones) by click."""
    from trackrec.main import app

    command, context, names = typer.main.get_command(app), None, []
    rest = list(argv)
    while True:
        context = command.make_context(" ".join(["trackrec", *names]) or "trackrec", rest, parent=context)
        if not hasattr(command, "resolve_command"):  # a command, not a group of them
            return tuple(names)
        rest = [*context._protected_args, *context.args]  # the subcommand and what follows it
        name, command, rest = command.resolve_command(context, rest)
        names.append(name)


def command(argv: list[str]) -> tuple[str, ...]:
    """The command path of `argv`: its words before the first option."""
    return tuple(word for word in argv[: next((i for i, w in enumerate(argv) if w.startswith("-")), len(argv))])


def rendered() -> list[tuple[str, list[str], dict[str, str]]]:
    invocations = []
    for label, values in VALUE_SETS.items():
        for path, text in render(values).items():
            if path.endswith(".yaml"):
                invocations += trackrec_invocations(text, f"{label} {path}")
    for path in sorted(Path("k8s").rglob("*.yaml")):  # the kustomize bases, rendered from the chart
        invocations += trackrec_invocations(path.read_text(), str(path))
    return invocations


INVOCATIONS = rendered()


@pytest.mark.parametrize(("where", "argv", "env"), INVOCATIONS, ids=[w for w, _, _ in INVOCATIONS])
def test_each_command_the_chart_runs_parses(where, argv, env, monkeypatch):
    for name in [n for n in os.environ if n.startswith("TRACKREC_")]:
        monkeypatch.delenv(name)  # only the container's own environment
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        parsed(argv)
    except exceptions.ClickException as error:
        pytest.fail(f"{where}: `trackrec {' '.join(argv)}` does not parse: {error.format_message()}")


def test_the_chart_runs_every_command_it_is_known_to_run():
    assert {command(argv) for _, argv, _ in INVOCATIONS} >= EXPECTED


def test_a_renamed_option_is_caught():
    """The parse is strict: an option the CLI does not have fails it (what a rename would do)."""
    argv = next(argv for _, argv, _ in INVOCATIONS if argv[:1] == ["schedule"])
    with pytest.raises(exceptions.NoSuchOption):
        parsed([a.replace("--cron=", "--schedule=") for a in argv])
