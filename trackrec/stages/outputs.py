"""What each stage writes: its output folder's files, each named once here.

The stage that writes an output, the stages that read it, gather, the benches and the tests reach its
files through these descriptions (`Scored(path).preferences`), so no other code spells a file name.
A module with no imports beyond the standard library and trackrec's errors: a reader's task starts
without the writer's libraries. A stage reads an input's file through `required`: a missing one is a
one-line error naming the file and the stage that writes it. Two outputs are described where their
format lives, below the stages: a prepared dataset (`trackrec.data.dataset.Dataset`) and a trained
CTR model (`trackrec.ctr.saved`)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from trackrec.errors import DataError


class Output:
    """A stage's output folder; each file is an attribute (`Scored(path).preferences`). `tables`:
    its parquet tables, which a sharded stage's gather concatenates across shards; `summaries`: its
    JSON files, which gather merges (what every shard says alike, counts summed); `others`: the rest."""

    tables: ClassVar[dict[str, str]] = {}
    summaries: ClassVar[dict[str, str]] = {}
    others: ClassVar[dict[str, str]] = {}
    writer: ClassVar[str] = ""  # the stage that writes it

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def __getattr__(self, name: str) -> Path:
        for files in (type(self).tables, type(self).summaries, type(self).others):
            if name in files:
                return self.folder / files[name]
        raise AttributeError(f"{type(self).__name__} has no file {name!r}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.folder)!r})"

    def required(self, name: str) -> Path:
        """The file `name` of an output a stage reads, which must be there."""
        path = getattr(self, name)
        if not path.exists():
            described = f"{self.writer} ({type(self).__name__})"
            raise DataError(str(path), f"not found: not the output of {described}, or not whole")
        return path


class Selected(Output):
    """select_samples: the loop's samples by split (`split(name)`), the item table and the data
    version they came from."""

    writer = "select_samples"
    SPLITS = ("train", "eval", "valid", "distill", "align")
    tables = {"items": "items.parquet"}
    others = {"source": "source.json"}

    def split(self, name: str) -> Path:
        if name not in self.SPLITS:
            raise ValueError(f"no selected split {name!r}; known: {self.SPLITS}")
        return self.folder / f"{name}.parquet"


class Sampled(Output):
    """sample: N RecCoTs per alignment sample, their prompt, round and finish flags."""

    writer = "sample"
    tables = {"table": "sampled.parquet"}


class Scored(Output):
    """score: the preferences align reads and every sample's N rewards (a round's stats are computed
    from them, gathered or not)."""

    writer = "score"
    tables = {"preferences": "preferences.parquet", "rewards": "rewards.parquet"}


class Corpus(Output):
    """distill's first step: the teacher's RecCoT for each distill sample's prompt."""

    writer = "distill (teach)"
    tables = {"table": "corpus.parquet"}


class Trained(Output):
    """distill, align, rectune: the LoRA adapter (or a whole fine-tuned model in its place), trl's
    training log and, for G0, the corpus it learnt from."""

    writer = "distill, align or rectune"
    others = {"adapter": "adapter", "log": "log.json", "corpus": Corpus.tables["table"]}


class Greedy(Output):
    """greedy: one RecCoT per train and eval sample (split, sample index, RecCoT)."""

    writer = "greedy"
    tables = {"table": "greedy.parquet"}


class RecCoTs(Output):
    """summarize: RecCoT snapshots, one per (user_id, as_of), with the iteration of the G that wrote
    them; what encode reads."""

    writer = "summarize"
    COLUMNS = ("user_id", "as_of", "reccot", "iteration")
    tables = {"table": "reccots.parquet"}


class Embeddings(Output):
    """encode: the snapshots with their vectors, and the encoder, size and count of the vectors."""

    writer = "encode"
    tables = {"table": "embeddings.parquet"}
    summaries = {"encoding": "encoding.json"}


class Judge(Output):
    """ctr_judge: the RecCoTs it read, their vectors, the CTR model trained on them and its encoder."""

    writer = "ctr_judge"
    others = {"encoder": "encoder.json"}

    @property
    def reccots(self) -> RecCoTs:
        return RecCoTs(self.folder / "reccots")

    @property
    def vectors(self) -> Embeddings:
        return Embeddings(self.folder / "vectors")

    @property
    def model(self) -> Path:
        """A trained CTR model's folder (trackrec.ctr.saved)."""
        return self.folder / "model"


class Evaluation(Output):
    """evaluate's numbers of one iteration."""

    writer = "evaluate"
    others = {"metrics": "evaluation.json"}


class Report(Output):
    """evaluate and report: the report's rows (one per iteration, what the next evaluate extends),
    its page and its card; evaluate's also holds the iteration's Evaluation."""

    writer = "evaluate or report"
    others = {"rows": "rows.json", "page": "report.html", "card": "card.md"}

    @property
    def evaluation(self) -> Evaluation:
        return Evaluation(self.folder / "evaluation")


class Published(Output):
    """publish: what it published, for which arm, from which data."""

    writer = "publish"
    others = {"summary": "summary.json"}


class CurrentGenerator(Output):
    """current_generator: the adapter of the G that wrote the version the arm reads, and that
    version's name."""

    writer = "current_generator"
    others = {"adapter": Trained.others["adapter"], "version": "version.txt"}
