"""The `trackrec` command line."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from trackrec.config import load_config
from trackrec.errors import TrackRecError
from trackrec.inert import inert
from trackrec.paths import RUN_DIR, feast_repo

app = typer.Typer(help="TrackRec: RecCoT generation aligned to the recommender.", no_args_is_help=True)
data_app = typer.Typer(help="Datasets: statistics and preparation.", no_args_is_help=True)
ctr_app = typer.Typer(help="CTR backbones.", no_args_is_help=True)
app.add_typer(data_app, name="data")
features_app = typer.Typer(
    help="RecCoT features in Feast: encode, publish versions, A/B arms, read.", no_args_is_help=True
)
app.add_typer(ctr_app, name="ctr")
app.add_typer(features_app, name="features")
console = Console()
ConfigPath = Annotated[Path, typer.Option("--config", "-c", help="YAML config")]
RunDir = Annotated[Path, typer.Option("--run-dir", help="a local run's folder: artifacts, KFP's cache, latest.json")]
DEFAULT_REPO = feast_repo(RUN_DIR)  # the default run folder's Feast repo
StorePath = Annotated[
    Path,
    typer.Option("--store", envvar="TRACKREC_STORE", help="feature store YAML (trackrec.features.store.StoreConfig)"),
]


def user_errors(command):
    """Print a TrackRecError as one clear message and exit 2, instead of a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except TrackRecError as e:
            # a message may quote a server's words or a title: data, never markup or terminal control
            said = Text("error: ", style="bold red") + Text(inert(e, 10_000, keep_newlines=True))
            console.print(said, highlight=False, soft_wrap=True)
            raise typer.Exit(2) from e

    return wrapper


def shown(value: object, keep_newlines: bool = False) -> Text:
    """Text that came from outside (a name, a model path, an actor, a RecCoT) as a table cell or
    title: inert and bounded, never markup or terminal control; on one line unless `keep_newlines`
    (a RecCoT's paragraphs), so a name's cell never looks like two rows."""
    return Text(inert(value, keep_newlines=keep_newlines))


@data_app.command("stats")
@user_errors
def data_stats(
    dataset: Annotated[str, typer.Option(help="dataset name")] = "collm-ml1m",
    root: Annotated[Path | None, typer.Option(help="data folder (default $TRACKREC_DATA_DIR)")] = None,
):
    """Row, user and item counts of a public dataset (the paper's Table 1)."""
    from trackrec.data.collm import collm_stats, read_collm
    from trackrec.paths import data_dir

    if dataset != "collm-ml1m":
        raise TrackRecError(f"unknown dataset {dataset!r}; known: ['collm-ml1m']")
    stats = collm_stats(read_collm(data_dir(root)))
    table = Table(title=f"{dataset} (users and items are max id + 1, padding id included)")
    for key in stats:
        table.add_column(key, justify="right")
    table.add_row(*(f"{v:,}" for v in stats.values()))
    console.print(table)


@data_app.command("prepare")
@user_errors
def data_prepare(config: ConfigPath, output: Annotated[Path, typer.Option(help="output folder")]):
    """Write canonical train/valid/test samples and the item table."""
    from trackrec.data.config import DataConfig
    from trackrec.stages.prepare_data import prepare_data

    dataset = prepare_data(load_config(config, DataConfig), output)
    console.print(f"wrote {dataset.meta['rows']} to {output}")


@ctr_app.command("train")
@user_errors
def ctr_train(
    config: ConfigPath,
    dataset: Annotated[Path, typer.Option(help="prepared dataset folder")],
    output: Annotated[Path, typer.Option(help="output folder")],
):
    """Train one backbone; early stopping on valid; test AUC/ACC/LogLoss."""
    from trackrec.ctr.config import CTRConfig
    from trackrec.stages.train_ctr import train_ctr

    result = train_ctr(dataset, load_config(config, CTRConfig), output)
    console.print({"backbone": result["backbone"], **result["test"], "best_epoch": result["best_epoch"]})


@app.command("run")
@user_errors
def run(
    config: ConfigPath = Path("configs/local.yaml"),
    run_dir: RunDir = RUN_DIR,
    shards: Annotated[int, typer.Option(help="user shards of the inference stages (ParallelFor)")] = 1,
    refresh: Annotated[
        bool, typer.Option(help="the refresh pipeline: active users' snapshots as of now by the arm's G; no training")
    ] = False,
    active_within_days: Annotated[int, typer.Option(help="with --refresh: users active within K days")] = 1,
    verbose: Annotated[
        bool, typer.Option(help="print everything the tasks and libraries print (else it goes to the run's log)")
    ] = False,
):
    """Run the pipeline on this machine (KFP's local runner) on the embedded default."""
    from pipelines.local import run_local
    from trackrec.llm.report import lift_sentence
    from trackrec.run_config import load_run_config

    for name, value in (("shards", shards), ("active-within-days", active_within_days)):
        if value < 1:
            raise TrackRecError(f"--{name}: must be >= 1, got {value}")
    config = load_run_config(config, run_dir)  # a store naming no repo publishes to <run dir>/feast
    result = run_local(config, run_dir, shards, active_within_days, refresh, verbose)
    console.print(task_table(result["tasks"]))
    if result["ctr"] is not None and (words := lift_sentence(result["ctr"])):
        console.print(words)
    paths = result["paths"]
    closing = {"report": paths.get("report"), "Feast repo": config.features and Path(config.features.store.repo)}
    closing |= {"CTR model": paths.get("ctr_model"), "every result": run_dir / "latest.json", "log": result["log"]}
    for name, path in closing.items():
        if path:  # whole paths on their own lines: never wrapped, so they copy as they are
            console.print(f"{name}: {path}", soft_wrap=True, highlight=False, markup=False)
    console.print("done: refreshed" if result["ctr"] is None else f"done: CTR test AUC {result['ctr']['auc']:.4f}")


def task_table(tasks: list[dict]) -> Table:
    """Where a run's time went: each task (by the name the pipeline gives it) with its wall seconds,
    its work, and its start-up in parts: the interpreter and KFP's executor, imports, model loads.
    Fits an 80-column terminal: a long name folds, no number is cut."""
    table = Table(
        title="tasks run (the rest came from KFP's cache), seconds", box=box.SIMPLE_HEAD, padding=(0, 1),
        caption="start-up = kfp (the interpreter and KFP's executor) + import + load (models)",
    )  # fmt: skip
    table.add_column("task", overflow="fold")
    for column in ("wall", "work", "kfp", "import", "load"):
        table.add_column(column, justify="right", no_wrap=True, min_width=6)
    parts = ("python_kfp", "imports", "model_load")
    rows = [
        (t["shown"], t["seconds"], t["seconds"] - t["startup_seconds"], *(_parts(t)[p] for p in parts)) for t in tasks
    ]
    total = ("total", *(sum(r[i] for r in rows) for i in range(1, 6)))
    for i, (name, *numbers) in enumerate([*rows, total]):
        table.add_row(name, *(f"{n:.1f}" for n in numbers), end_section=i == len(rows) - 1)
    return table


def _parts(task: dict) -> dict[str, float]:
    """A task's start-up parts; a run indexed before they were measured counts it whole as kfp's."""
    from trackrec.timing import unsplit

    return task.get("startup") or unsplit(task["startup_seconds"])


ClusterSettings = Annotated[
    Path | None, typer.Option("--settings", help="cluster settings YAML (pipelines.settings.PipelineSettings)")
]
Package = Annotated[
    Path | None,
    typer.Option(
        "--package", help="a pipeline compiled with the deployment's settings; default: compile one now with --settings"
    ),
]
Overrides = Annotated[Path | None, typer.Option(help="YAML deep-merged onto the config (what a deployment sets)")]
Host = Annotated[str, typer.Option("--host", envvar="KF_PIPELINES_ENDPOINT", help="KFP API endpoint")]
Params = Annotated[list[str] | None, typer.Option("--param", "-p", help="run parameter name=value (repeatable)")]
Experiment = Annotated[str, typer.Option(help="KFP experiment")]
Token = Annotated[
    str | None,
    typer.Option(
        envvar="KF_PIPELINES_TOKEN",
        help="bearer token for multi-user KFP (default: the pod's projected KFP ServiceAccount token, if any)",
    ),
]
Namespace = Annotated[
    str | None, typer.Option(envvar="KF_PIPELINES_NAMESPACE", help="your Kubeflow profile namespace (multi-user)")
]
CABundle = Annotated[Path | None, typer.Option(envvar="KF_PIPELINES_CA_BUNDLE", help="CA bundle of a TLS endpoint")]


def _kfp_access(host: str, token: str | None, namespace: str | None, ca_bundle: Path | None, settings: Path | None):
    """The KFP endpoint and identity; the runs' ServiceAccount comes from the cluster settings."""
    from pipelines.kfp_client import access
    from pipelines.settings import PipelineSettings

    cluster = PipelineSettings() if settings is None else load_config(settings, PipelineSettings)
    return access(host, token, None, namespace, None if ca_bundle is None else str(ca_bundle), cluster.service_account)


def _deployed_package(
    package: Path | None, settings: Path | None, config: Path, overrides: Path | None, refresh: bool, folder: Path
) -> Path:
    """`package` as given, else the pipeline compiled now with the deployment's settings and overrides:
    never the checked-in YAML, whose images, bucket, Redis and reach are the defaults'."""
    if package is not None:
        return package
    if settings is None:
        raise TrackRecError(
            "pass --settings (and --overrides) from the deployment to compile the pipeline with them, "
            "e.g. kubectl get configmap trackrec-pipeline -o jsonpath='{.data.settings\\.yaml}' in the register "
            "Job's namespace, "
            "or --package a pipeline compiled with them (trackrec compile --settings ...); the checked-in "
            "pipelines/*.yaml carry the defaults' images, bucket and Redis"
        )
    from pipelines.compile import compile_pipeline
    from pipelines.settings import PipelineSettings
    from trackrec.run_config import RunConfig

    output = folder / ("trackrec-refresh.yaml" if refresh else "trackrec.yaml")
    cluster = load_config(settings, PipelineSettings)
    return compile_pipeline(load_config(config, RunConfig, overrides), cluster, output, refresh)


@app.command("compile")
@user_errors
def compile_(
    config: ConfigPath = Path("configs/cluster.yaml"),
    overrides: Overrides = None,
    settings: ClusterSettings = None,
    refresh: Annotated[
        bool, typer.Option(help="the refresh pipeline (active users' snapshots by the arm's G; no training)")
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="where the YAML goes; default pipelines/trackrec[-refresh].yaml"),
    ] = None,
):
    """Compile the pipeline (T and the feature stages from the config, which is also its default)."""
    from pipelines.compile import COMPILED, COMPILED_REFRESH, compile_pipeline
    from pipelines.settings import PipelineSettings
    from trackrec.run_config import RunConfig

    cluster = PipelineSettings() if settings is None else load_config(settings, PipelineSettings)
    output = output or (COMPILED_REFRESH if refresh else COMPILED)
    console.print(f"wrote {compile_pipeline(load_config(config, RunConfig, overrides), cluster, output, refresh)}")


@app.command("submit")
@user_errors
def submit(
    host: Host,
    settings: ClusterSettings = None,
    overrides: Overrides = None,
    config: ConfigPath = Path("configs/cluster.yaml"),
    package: Package = None,
    param: Params = None,
    experiment: Experiment = "trackrec",
    token: Token = None,
    namespace: Namespace = None,
    ca_bundle: CABundle = None,
):
    """Compile the pipeline with the deployment's settings (or take --package), upload it (or a new
    version of it) into the namespace, start a run, print its link in KFP's UI."""
    import tempfile

    from pipelines.compile import parse_parameters, pipeline_name
    from pipelines.kfp_client import submit as submit_run

    with tempfile.TemporaryDirectory(prefix="trackrec-submit-") as folder:
        package = _deployed_package(package, settings, config, overrides, False, Path(folder))
        params = parse_parameters(package, param or [])
        where = _kfp_access(host, token, namespace, ca_bundle, settings)
        console.print(submit_run(where, package, params, experiment, pipeline_name(package)))


@app.command("schedule")
@user_errors
def schedule(
    host: Host,
    cron: Annotated[str, typer.Option(help="KFP's 6-field cron, seconds first: '0 0 3 * * *' is 03:00 daily")],
    retrain: Annotated[
        bool,
        typer.Option(
            help="schedule the retrain (distill + the loop, every user summarised by the new G; weekly, say) "
            "instead of the refresh (active users' snapshots as of now by the arm's G; daily)"
        ),
    ] = False,
    active_within_days: Annotated[int, typer.Option(help="the refresh: users with behaviour in the last K days")] = 1,
    settings: ClusterSettings = None,
    overrides: Overrides = None,
    config: ConfigPath = Path("configs/cluster.yaml"),
    package: Package = None,
    param: Params = None,
    experiment: Experiment = "trackrec",
    job: Annotated[
        str | None,
        typer.Option(
            help="the recurring run's name (an existing one is replaced); default trackrec-refresh or -retrain"
        ),
    ] = None,
    token: Token = None,
    namespace: Namespace = None,
    ca_bundle: CABundle = None,
):
    """Create (or replace) a recurring run: the refresh, which summarises and publishes the active
    users' features and never trains, or (--retrain) the retrain of G and V."""
    import tempfile

    from pipelines.compile import parse_parameters, pipeline_name
    from pipelines.kfp_client import schedule as schedule_run

    job = job or ("trackrec-retrain" if retrain else "trackrec-refresh")
    with tempfile.TemporaryDirectory(prefix="trackrec-schedule-") as folder:
        package = _deployed_package(package, settings, config, overrides, not retrain, Path(folder))
        params = parse_parameters(
            package, [*(param or []), *([] if retrain else [f"active_within_days={active_within_days}"])]
        )
        if not retrain and params["active_within_days"] < 1:
            raise TrackRecError("--active-within-days: must be >= 1 for a recurring refresh of active users")
        where = _kfp_access(host, token, namespace, ca_bundle, settings)
        # the one recurring run of the releases before the two cadences, which retrained every day
        legacy = () if retrain else ("trackrec-active-users",)
        console.print(schedule_run(where, package, params, experiment, cron, job, pipeline_name(package), legacy))


@features_app.command("encode")
@user_errors
def features_encode(
    reccots: Annotated[Path, typer.Option(help="summarize's output folder (user_id, as_of, reccot, iteration)")],
    output: Annotated[Path, typer.Option(help="the output folder: the snapshots with their vectors")],
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="encoder YAML; default all-minilm-l6-v2")
    ] = None,
):
    """Encode RecCoTs into float32 vectors."""
    from trackrec.features.encoder import EncoderConfig
    from trackrec.stages.encode import encode

    console.print(encode(reccots, load_config(config, EncoderConfig) if config else EncoderConfig(), output))


def _opened(store: Path, registry_only: bool = False):
    """The store a store.yaml describes, opened once for the command; registry_only: a command that
    only reads Feast's registry (list, history), which needs no Redis."""
    from trackrec.features.store import StoreConfig, open_store

    return open_store(load_config(store, StoreConfig), registry_only)


@features_app.command("publish")
@user_errors
def features_publish(
    store: StorePath,
    embeddings: Annotated[Path, typer.Option(help="the encode stage's output folder, or its table (a parquet file)")],
    version: Annotated[str, typer.Option(help="the new version's name, e.g. 2026_11_22")],
    carry_from: Annotated[
        str | None, typer.Option(help="earlier version whose other snapshots (and G) carry over")
    ] = None,
):
    """Publish a new version (offline parquet + online rows); arms keep reading theirs."""
    from trackrec.features.versions import parquet_chunks, publish
    from trackrec.stages.outputs import Embeddings

    table = embeddings if embeddings.is_file() else Embeddings(embeddings).required("table")
    console.print(publish(parquet_chunks(table), version, _opened(store), carry_from, source=str(table)))


@features_app.command("assign")
@user_errors
def features_assign(
    store: StorePath,
    arm: Annotated[str, typer.Option()],
    version: Annotated[str, typer.Option()],
    model: Annotated[
        str | None, typer.Option(help="the CTR/CVR model trained on that version, which the arm scores with")
    ] = None,
):
    """Point an A/B arm (its feature service ctr_<arm>) at a published version and its model."""
    from trackrec.features.arms import assign

    console.print(assign(_opened(store), arm, version, model=model))  # Redis too: the writer lease


@features_app.command("promote")
@user_errors
def features_promote(store: StorePath, source: str = "candidate", target: str = "control"):
    """The target arm (control) reads what the source arm (candidate) reads."""
    from trackrec.features.arms import promote

    console.print(promote(_opened(store), source, target))  # Redis too: the lease, the rows checked


@features_app.command("rollback")
@user_errors
def features_rollback(
    store: StorePath,
    arm: str = "control",
    to: Annotated[str | None, typer.Option(help="a version the arm read earlier (default: the one before)")] = None,
):
    """The arm reads the version it read before its last change (repeat to go further back), or `--to`."""
    from trackrec.features.arms import rollback

    console.print(rollback(_opened(store), arm, to))  # Redis too: the lease, the rows checked


@features_app.command("history")
@user_errors
def features_history(store: StorePath, arm: str = "control"):
    """Every change of an arm: which version, how, when, by whom, from which data version."""
    from trackrec.features.arms import history

    table = Table(title=f"arm {arm}, oldest first")
    for column in ("version", "action", "at", "by", "data version"):
        table.add_column(column)
    for entry in history(_opened(store, registry_only=True), arm):
        table.add_row(*(shown(entry.get(k, "")) for k in ("version", "action", "at", "by", "data_version")))
    console.print(table)


@features_app.command("list")
@user_errors
def features_list(
    store: StorePath, as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False
):
    """Every version (complete or a killed attempt, newest first) and every arm: what it reads, with
    which model, what it can roll back to, its last change. Reads the registry alone (no Redis)."""
    import json

    from trackrec.features.versions import listing

    listed = listing(_opened(store, registry_only=True))
    if as_json:
        print(json.dumps(listed))
        return
    arms = Table(title="arms")
    for column in ("arm", "reads", "model", "can roll back to (newest first)", "last change"):
        arms.add_column(column)
    for arm in listed["arms"]:
        cells = (arm["arm"], arm["version"], arm["model"] or "-", ", ".join(arm["rollback"]) or "-", arm["last_change"])
        arms.add_row(*(shown(cell) for cell in cells))
    versions = Table(title="versions, newest first")
    for column in ("version", "complete", "rows", "published", "data version", "generator", "base", "read by"):
        versions.add_column(column)
    for v in listed["versions"]:
        cells = (v["version"], "yes" if v["complete"] else "no: a killed attempt", v["rows"], v["published_at"])
        cells += (v["data_version"], v["generator"] or "-", v["base"] or "-", ", ".join(v["read_by"]) or "-")
        versions.add_row(*(shown(cell) for cell in cells))
    console.print(arms)
    console.print(versions)


@features_app.command("restore")
@user_errors
def features_restore(store: StorePath, version: Annotated[str, typer.Option(help="a complete version")]):
    """Rebuild a version's online rows from its offline parquet (after the online store lost them)."""
    from trackrec.features.versions import restore

    console.print(restore(_opened(store), version))


@features_app.command("prune")
@user_errors
def features_prune(store: StorePath, keep: Annotated[int, typer.Option(help="newest complete versions kept")] = 5):
    """Delete older versions (views, online rows), never one an arm reads or can roll back to."""
    from trackrec.features.versions import prune

    console.print({"deleted": prune(_opened(store), keep)})


@features_app.command("get")
@user_errors
def features_get(
    user: Annotated[list[int], typer.Option(help="user id (repeat for several)")],
    repo: Annotated[Path, typer.Option(help="the Feast repo folder the publisher wrote")] = DEFAULT_REPO,
    url: Annotated[
        str | None, typer.Option(help="read over HTTP from this feature server, as a ranker does (not the repo)")
    ] = None,
    version: Annotated[str | None, typer.Option(help="a published version; default: what --arm reads")] = None,
    arm: str = "control",
    ttl_days: Annotated[int | None, typer.Option(help="with --url: the store's TTL (an older snapshot: none)")] = None,
):
    """Online features of users, as a CTR model reads them: each user's newest RecCoT snapshot and
    the time it summarises the user as of (none past the store's TTL). With --url, through the
    feature server a ranker reads (the read-only front on a cluster); otherwise from the repo."""
    from datetime import UTC, datetime

    from trackrec.features import definitions
    from trackrec.features.http_read import read_over_http
    from trackrec.features.reading import open_repo, read

    if url:
        service = definitions.view_name(version) if version else definitions.arm_service_name(arm)
        frame = read_over_http(url, service, user, ttl_days)
    else:
        frame = read(open_repo(repo), user, version=version, arm=arm)
        frame = frame.rename(columns={"model_version": "feature_version"})  # Feast's name for it
    table = Table()
    for column in ("user_id", "feature_version", "as_of (UTC)", "iteration", "reccot", "embedding"):
        table.add_column(column)
    for row in frame.itertuples():
        if not isinstance(row.feature_version, str):  # the user has no features in this version
            table.add_row(str(row.user_id), "-", "-", "-", "-", "no features")
            continue
        as_of = datetime.fromtimestamp(int(row.as_of), UTC).isoformat(timespec="seconds")
        if row.embedding is None:
            table.add_row(str(row.user_id), shown(row.feature_version), as_of, "-", "-", "not served: past the TTL")
            continue
        vector = f"{row.embedding.size} floats [{row.embedding[0]:.4f}, ...]"
        reccot = shown(row.reccot, keep_newlines=True)  # LLM output: data, never console markup or terminal control
        table.add_row(str(row.user_id), shown(row.feature_version), as_of, str(int(row.iteration)), reccot, vector)
    console.print(table)


@features_app.command("score")
@user_errors
def features_score(
    user: Annotated[int, typer.Option(help="user id")],
    item: Annotated[int, typer.Option(help="candidate item id")],
    run_dir: RunDir = RUN_DIR,
    repo: Annotated[Path | None, typer.Option(help="the Feast repo folder; default: the run folder's feast/")] = None,
    url: Annotated[
        str | None, typer.Option(help="read the features over HTTP from this feature server (not the repo)")
    ] = None,
    arm: str = "control",
    ttl_days: Annotated[int | None, typer.Option(help="with --url: the store's TTL (an older snapshot: none)")] = None,
):
    """Score one request as a ranker would: the CTR model + the user's features read online.

    The request's history is the user's latest in the run's data (a ranker takes it from its log).
    """
    from pipelines.local import latest_run
    from trackrec.data.dataset import Dataset
    from trackrec.features.serving import RequestScorer

    paths = latest_run(run_dir)
    dataset = Dataset.open(paths["dataset"])
    latest = dataset.with_histories(dataset.samples("test", users=(user, user + 1)).tail(1))
    history = ([], []) if latest.empty else (latest.history_item_ids.iloc[0], latest.history_labels.iloc[0])
    scorer = RequestScorer(paths["ctr_model"], paths["dataset"], repo or feast_repo(run_dir), arm, url, ttl_days)
    console.print(scorer.score(user, item, *history))


@features_app.command("read-only-front")
@user_errors
def features_read_only_front(
    upstream: Annotated[str, typer.Option(help="the feature server, listening on loopback")] = "http://127.0.0.1:6567",
    host: Annotated[str, typer.Option(help="address readers reach")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="port readers reach")] = 6566,
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate: serve HTTPS")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="its PEM key")] = None,
):
    """Serve only the feature server's online reads (everything else: 403), for reader namespaces."""
    from trackrec.features.read_only import front

    if (tls_cert is None) != (tls_key is None):
        raise TrackRecError("--tls-cert and --tls-key go together")
    server = front(host, port, upstream, tls_cert and str(tls_cert), tls_key and str(tls_key))
    console.print(f"read-only front on {host}:{port} -> {upstream}")
    server.serve_forever()
