"""`trackrec run`: the pipeline on this machine through `kfp.local`'s SubprocessRunner.

The same pipeline as on a cluster; here the artifact root is a local folder (the runner would
write a literal `s3:/` folder for an S3 root), base images are ignored (the stages run in this
Python), the Kubernetes settings have nothing to act on, and KFP's local cache skips every task
whose inputs are unchanged since an earlier run.
"""

import contextlib
import io
import json
import logging
import os
import re
import shutil
import sys
import time
from pathlib import Path

from kfp import local
from tqdm import tqdm

from pipelines.settings import PipelineSettings
from pipelines.trackrec_pipeline import build_pipeline
from trackrec.config import config_to_dict
from trackrec.errors import DataError, TrackRecError
from trackrec.llm.config import check_context
from trackrec.run_config import RunConfig
from trackrec.stages.outputs import Report
from trackrec.timing import TIMING_ENV, unsplit

INDEX = "latest.json"
PAGE = Report.others["page"]  # the run folder's copy of the run's page, named as a Report names it
LOG = "run.log"  # everything the tasks and the libraries print, in the run folder
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class TaskClock(logging.Filter):
    """Each task kfp.local runs, with its wall seconds (from the runner's own log lines, which it
    writes through the root logger as it starts and ends a task, one at a time) and the start-up
    seconds its process reported (`trackrec.timing`). Tasks answered from the cache are not run.
    `finished(task)` is called as each ends (the console's line for it)."""

    _START = re.compile(r"Executing task '(.+)'")
    _END = re.compile(r"Task '(.+)' finished with status (\w+)")

    def __init__(self, record: Path, names: dict[str, str], finished=None):
        super().__init__()
        self.record, self.names, self.finished = record, names, finished
        self.tasks, self._started = [], (None, 0.0)

    def filter(self, log: logging.LogRecord) -> bool:
        message = _ANSI.sub("", log.getMessage())
        if started := self._START.match(message):
            self.record.unlink(missing_ok=True)
            self._started = (started[1], time.perf_counter())
        elif (ended := self._END.match(message)) and ended[1] == self._started[0]:
            seconds = time.perf_counter() - self._started[1]
            record = json.loads(self.record.read_text()) if self.record.is_file() else {}
            startup = min(record.get("startup_seconds", seconds), seconds)
            task = {"name": ended[1], "shown": self.names.get(ended[1], ended[1]), "status": ended[2]}
            parts = record.get("startup") or unsplit(startup)
            scale = startup / max(sum(parts.values()), 1e-9)  # the parts of a start-up cut to the task's wall time
            parts = {name: part * min(scale, 1.0) for name, part in parts.items()}
            self.tasks.append(task | {"seconds": seconds, "startup_seconds": startup, "startup": parts})
            if self.finished is not None:
                self.finished(self.tasks[-1])
        return True


def readable_names(pipeline) -> dict[str, str]:
    """kfp.local's name for each task (its component's: `greedy-3`) -> the name the pipeline gives it,
    as KFP's UI shows it (`greedy 2`); a task inside a sharded stage under that stage's name
    (`greedy 2 / plan shards`)."""
    spec, names = pipeline.pipeline_spec, {}

    def walk(dag, stage: str) -> None:
        for task in dag.tasks.values():
            ref, shown = task.component_ref.name, task.task_info.name
            inner = spec.components[ref].dag.tasks
            if inner:  # a sub-pipeline (a stage's name) or its ParallelFor (no name of its own)
                walk(spec.components[ref].dag, stage if shown.startswith("for-loop") else shown)
            else:
                names[ref.removeprefix("comp-")] = f"{stage} / {shown}" if stage else shown

    walk(spec.root.dag, "")
    return names


class RunLog(io.TextIOBase):
    """Standard output and error while a run lasts: the tasks' logs (which the runner prints), KFP's
    executor dumps and the libraries' warnings go to the run's log file, and, if `verbose`, to the
    console too; the last error a task raised, its traceback's last line, is kept so that a failed
    run can end in one line that names it."""

    _ERROR = re.compile(r"^\s*(?:[\w.]+\.)?(\w+(?:Error|Exception)): (.+)$")

    def __init__(self, file, console=None):
        super().__init__()
        self.file, self.console, self.last = file, console, None

    def write(self, text: str) -> int:
        if self.file.closed:  # the run is over; a handler or thread that kept this stream writes where the process does
            return sys.__stderr__.write(text) if sys.__stderr__ else len(text)
        plain = _ANSI.sub("", text)
        for line in plain.splitlines():
            if error := self._ERROR.match(line):
                self.last = f"{error[1]}: {error[2]}"
        self.file.write(plain)
        if self.console is not None:
            self.console.write(text)
        return len(text)

    def flush(self) -> None:
        if self.file.closed:
            return
        self.file.flush()
        if self.console is not None:
            self.console.flush()


def _task_count(pipeline, shards: int) -> int:
    """Tasks one run executes when nothing is cached: each executor task once, a ParallelFor body
    `shards` times (the progress bar's length)."""
    spec = pipeline.pipeline_spec

    def count(dag, times: int) -> int:
        total = 0
        for task in dag.tasks.values():
            inner = spec.components[task.component_ref.name].dag
            loop = task.WhichOneof("iterator") is not None
            total += count(inner, times * (shards if loop else 1)) if inner.tasks else times
        return total

    return count(spec.root.dag, 1)


def run_local(
    config: RunConfig,
    run_dir: str | Path,
    shards: int = 1,
    active_within_days: int = 0,
    refresh: bool = False,
    verbose: bool = False,
) -> dict:
    """Run the whole pipeline (refresh: the refresh pipeline, of the users active within
    `active_within_days` >= 1; a retrain summarises every user); returns
    the CTR test metrics (none for a refresh), the paths of the run's results and the tasks it ran
    with their seconds (`TaskClock`), also written to `<run_dir>/latest.json`. Artifacts
    land in `<run_dir>/artifacts/<run>/<task>/` (a task answered from the cache keeps the folder of
    the run that computed it), the cache in `<run_dir>/cache`."""
    if config.llm is not None:
        check_context(config.llm)  # before any task: a wrong model or budget fails in a second
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    root = run_dir / "artifacts"
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(root),
        enable_caching=True,
        cache_root=str(run_dir / "cache"),
    )
    iterations = None if config.llm is None else config.llm.iterations
    settings = PipelineSettings(pipeline_root=str(root), reach=None, retries=0)
    pipeline = build_pipeline(iterations, config.features is not None, settings, refresh=refresh, cluster=False)
    log_path, console = run_dir / LOG, sys.stdout  # the console: stdout before the run's is redirected
    with open(log_path, "w") as log_file:
        out = RunLog(log_file, console if verbose else None)
        bar = tqdm(total=_task_count(pipeline, shards), unit="task", disable=verbose, file=console, leave=False)

        def finished(task: dict) -> None:  # one line a task; in --verbose the runner's own say it
            if not verbose:
                bar.write(f"{task['shown']:<44} {task['seconds']:7.1f} s  {task['status'].lower()}", file=console)
                bar.update()

        clock = TaskClock(run_dir / "task-timing.json", readable_names(pipeline), finished)
        logging.getLogger().addFilter(clock)
        os.environ[TIMING_ENV] = str(clock.record)  # the task processes inherit it
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                active = {"active_within_days": active_within_days} if refresh else {}
                result = pipeline(config=json.dumps(config_to_dict(config)), shards=shards, **active)
        except RuntimeError as failure:  # the runner's: "... Inner task failed: 'name'."
            failed = re.search(r"task failed: '([^']+)'", _ANSI.sub("", str(failure)))
            task = f"'{clock.names.get(failed[1], failed[1])}' ({failed[1]})" if failed else "a task"
            raise TrackRecError(
                f"task {task} failed: {out.last or 'see its log'}; the run's log: {log_path}"
            ) from failure
        finally:
            bar.close()
            logging.getLogger().removeFilter(clock)
            os.environ.pop(TIMING_ENV)
            clock.record.unlink(missing_ok=True)
    paths = {name: artifact.path for name, artifact in result.outputs.items()}
    index = run_dir / ("refresh.json" if refresh else INDEX)  # a refresh leaves the retrain's results named
    if "curves" in paths:  # the run's page, where a browser opens it: named as a Report names it (.html)
        paths["report"] = str(shutil.copyfile(paths["curves"], run_dir / PAGE))
    index.write_text(json.dumps({"paths": paths, "tasks": clock.tasks}, indent=2))
    ctr = None if refresh else result.outputs["ctr"].metadata
    return {"ctr": ctr, "paths": paths, "tasks": clock.tasks, "log": str(log_path)}


def latest_run(run_dir: str | Path) -> dict[str, Path]:
    """The result paths of the last local run in `run_dir`."""
    index = Path(run_dir) / INDEX
    if not index.is_file():
        raise DataError(str(index), "no finished local run here; run `trackrec run` first")
    return {name: Path(path) for name, path in json.loads(index.read_text())["paths"].items()}
