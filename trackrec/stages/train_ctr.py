"""Stage train_ctr: fit one backbone (optionally with per-user RecCoT vectors), report test metrics."""

from __future__ import annotations

from pathlib import Path

import torch

from trackrec.atomic import atomic_dir
from trackrec.config import config_to_dict
from trackrec.ctr.config import CTRConfig
from trackrec.ctr.esmm import build_task_model, has_conversions, predict_tasks, task_metrics
from trackrec.ctr.features import FeatureSpec, item_side_tables
from trackrec.ctr.metrics import ctr_metrics
from trackrec.ctr.saved import save_trained
from trackrec.ctr.stream import SplitStream
from trackrec.ctr.train import fit, predict
from trackrec.data.dataset import Dataset
from trackrec.data.schema import SPLITS
from trackrec.data.snapshots import SnapshotVectors
from trackrec.errors import DataError
from trackrec.features.vectors import read_vectors
from trackrec.intervals import auc_difference, bootstrap
from trackrec.timing import work_begins

EVAL_BATCH = 4096  # samples per forward pass when only predicting


def load_user_vectors(config: CTRConfig, n_users: int):
    """The RecCoT snapshots the samples read (each its user's newest from before it), or None."""
    if config.user_vectors is None:
        return None
    path = Path(config.user_vectors)
    if not path.exists():
        raise DataError(str(path), "user vector file not found")
    return read_vectors(path, config.dense_dim, n_users, config.vector_ttl_days)


def check_both_classes(dataset: Dataset, source: str) -> None:
    """A split of one label (a clicks-only log, say) has no AUC and nothing to rank: say so first.
    Read a row group at a time: memory does not grow with the samples."""
    seen = {split: set() for split in SPLITS}
    for index in range(dataset.sample_groups()):
        group = dataset.sample_group(index, ["split", "label"])
        for (split, label), _ in group.groupby(["split", "label"], observed=True):
            seen[split].add(int(label))
    for split in SPLITS:
        labels = sorted(seen[split])
        if labels != [0, 1]:
            found = f"only label {labels[0]}" if labels else "no samples"
            raise DataError(
                f"{source}/{split}", f"{found}: a CTR model needs positives and negatives in every split", field="label"
            )


def _fit(dataset: Dataset, config: CTRConfig, vectors: SnapshotVectors | None, progress: bool):
    """(the model, its training log, its test predictions and labels; a joint model's test
    predictions per task in `log["tasks"]`)."""
    genres, years = item_side_tables(dataset.items, dataset.n_items)
    spec = FeatureSpec(dataset.n_users, dataset.n_items, config.history_len, genres, years, config.dense_dim)
    joint = config.task == "esmm"
    sizes = {split: EVAL_BATCH if split != "train" else config.train.batch_size for split in SPLITS}
    data = {s: SplitStream(dataset, s, config.history_len, sizes[s], vectors, conversions=joint) for s in SPLITS}
    torch.manual_seed(config.train.seed)
    model = build_task_model(config.task, config.backbone, spec, config.model)
    log = fit(model, data["train"], data["valid"], config.train, progress=progress)
    if joint:
        log["tasks"] = task_metrics(predict_tasks(model, data["test"]))
    return model, log, *predict(model, data["test"])


def train_ctr(
    dataset: str | Path, config: CTRConfig, output: str | Path, progress: bool = True, control: bool = False
) -> dict:
    """Train on train, stop early on valid, evaluate on test; write the model and its metrics to
    `output` (trackrec/ctr/saved.py). control (with vectors): also train the same model on the same
    vectors dealt to other snapshots at random, and report `lift`: the test AUC with the RecCoT
    vectors against that control, with a paired 95% bootstrap interval over test users. With
    `config.task` esmm, `tasks` holds the test metrics of CVR (on clicks) and CTCVR (every impression)."""
    work_begins()
    source, dataset = str(dataset), Dataset.open(dataset)
    check_both_classes(dataset, source)
    if config.task == "esmm" and not has_conversions(dataset):
        raise DataError(source, "no conversion column: a joint CTR x CVR model needs one", field="conversion")
    vectors = load_user_vectors(config, dataset.n_users)
    model, log, probs, labels = _fit(dataset, config, vectors, progress)
    result = {"backbone": config.backbone, "test": ctr_metrics(labels, probs), **log}
    if control and vectors is not None:
        _, _, shuffled, _ = _fit(dataset, config, vectors.permuted(config.train.seed), progress)
        users = dataset.samples("test", columns=["user_id"]).user_id.to_numpy()
        result["lift"] = {
            "control": "permuted",
            "auc": result["test"]["auc"],
            "control_auc": ctr_metrics(labels, shuffled)["auc"],
            "difference": bootstrap(auc_difference(labels, probs, shuffled), users),
        }
    result |= {"config": config_to_dict(config), "dataset": dataset.meta}
    with atomic_dir(output) as tmp:
        save_trained(model, result, tmp)
    return result
