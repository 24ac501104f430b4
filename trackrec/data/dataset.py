"""A prepared dataset: the sample and history tables (trackrec/data/schema.py), the item table and
the id maps, written whole or not at all, and read in parts.

Tables are parquet in row groups of ROW_GROUP rows. The samples are grouped by user, so a reader
that asks for a range of user ids reads only the row groups that hold them, and a run of samples
needs only the run of history rows its offsets name. Validation runs once, when the dataset is
written; a reader checks what is cheap (schema, row counts and content hashes against meta.json).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from trackrec.atomic import atomic_dir
from trackrec.data.items import ITEM_COLUMNS
from trackrec.data.schema import (
    HISTORY_TYPES,
    OPTIONAL_SAMPLE_TYPES,
    ROW_COLUMNS,
    SAMPLE_TYPES,
    SECONDS_RANGE,
    SPLITS,
    require_columns,
    validate_tables,
)
from trackrec.errors import DataError
from trackrec.hashing import sha256_of
from trackrec.tables import concatenate

ROW_GROUP = 65_536
TABLE_FILES = {"samples": "samples.parquet", "history": "history.parquet", "items": "items.parquet"}
META_FILE = "meta.json"  # what the dataset is: its source, config, rows and the tables' hashes
ID_MAP_FILES = {"user": "user_ids.parquet", "item": "item_ids.parquet"}


@dataclass
class Dataset:
    """meta: provenance, sizes (`n_users`, `rows` per split) and, once written, each table's row count
    and hash; id_maps: "user"/"item" -> (raw_id, id) of a behaviour log. Built in memory (`tables`
    holds the samples and history frames) or opened from `folder` (tables read on demand)."""

    items: pd.DataFrame
    meta: dict
    id_maps: dict[str, pd.DataFrame] = dataclasses.field(default_factory=dict)
    tables: dict[str, pd.DataFrame] | None = None
    folder: Path | None = None

    @classmethod
    def built(
        cls,
        samples: pd.DataFrame,
        history: pd.DataFrame,
        items: pd.DataFrame,
        meta: dict,
        max_len: int,
        source: str,
        id_maps: dict[str, pd.DataFrame] | None = None,
    ) -> Dataset:
        """A dataset from freshly built tables, validated (the one full check it gets)."""
        validate_tables(samples, history, max_len, source)
        optional = {c: t for c, t in OPTIONAL_SAMPLE_TYPES.items() if c in samples}
        samples, history = _typed(samples, SAMPLE_TYPES | optional), _typed(history, HISTORY_TYPES)
        meta = {
            **meta,
            "n_users": int(samples["user_id"].max()) + 1,
            "latest_timestamp": int(samples["timestamp"].max()),
            "rows": {split: int((samples["split"] == split).sum()) for split in SPLITS},
        }
        return cls(items, meta, id_maps or {}, {"samples": samples, "history": history})

    @property
    def n_users(self) -> int:
        """Embedding table size: max user id + 1 (0 is padding)."""
        return int(self.meta["n_users"])

    @property
    def n_items(self) -> int:
        return int(self.items["item_id"].max()) + 1

    # --- writing and opening ---------------------------------------------------------------------

    def save(self, folder: str | Path) -> Path:
        with atomic_dir(folder) as tmp:
            tables = {"samples": self._table("samples"), "history": self._table("history"), "items": self.items}
            for name, frame in tables.items():
                _write_frame(frame, tmp / TABLE_FILES[name])
            _write_meta(self.meta, self.id_maps, tmp)
        return Path(folder)

    @classmethod
    def joined(cls, parts: list[Dataset], folder: str | Path, meta: dict, id_maps: dict[str, pd.DataFrame]) -> Dataset:
        """Datasets of disjoint user ranges, each grouped by user, written as one in user order (what
        one pass over all their events writes): the tables streamed a row group at a time, history
        offsets shifted by the history rows before them, each item's row from the first part that
        has it; `meta` gets the sizes."""
        spans = sorted((part.user_span(), index) for index, part in enumerate(parts))  # each read once
        ordered = [parts[index] for _, index in spans]
        for ((_, last), before), ((first, _), after) in itertools.pairwise(spans):
            if first <= last:
                raise DataError(
                    str(parts[after].folder), f"its users overlap those of {parts[before].folder}; prepare it again"
                )
        metas = [part.meta for part in ordered]
        meta = {
            **meta,
            "n_users": max(m["n_users"] for m in metas),
            "latest_timestamp": max(m["latest_timestamp"] for m in metas),
            "rows": {split: sum(m["rows"][split] for m in metas) for split in SPLITS},
        }
        with atomic_dir(folder) as tmp:
            shifts = np.cumsum([0] + [part.meta["tables"]["history"]["rows"] for part in ordered])
            samples = [part.folder / TABLE_FILES["samples"] for part in ordered]
            moved = lambda index, rows: _offsets_moved(rows, int(shifts[index]))  # noqa: E731
            concatenate(samples, tmp / TABLE_FILES["samples"], moved, use_dictionary=["split"])
            history = [part.folder / TABLE_FILES["history"] for part in ordered]
            concatenate(history, tmp / TABLE_FILES["history"], use_dictionary=[])
            items = pd.concat([part.items for part in ordered]).drop_duplicates("item_id")
            _write_frame(items.sort_values("item_id").reset_index(drop=True), tmp / TABLE_FILES["items"])
            _write_meta(meta, id_maps, tmp)
        return cls.open(folder)

    def user_span(self) -> tuple[int, int]:
        """(lowest, highest) user id of the samples, from the parquet statistics (nothing is read)."""
        if self.tables is not None:
            users = self.tables["samples"]["user_id"]
            return int(users.min()), int(users.max())
        metadata = pq.read_metadata(self.folder / TABLE_FILES["samples"])
        column = metadata.schema.to_arrow_schema().get_field_index("user_id")
        stats = [metadata.row_group(g).column(column).statistics for g in range(metadata.num_row_groups)]
        return min(s.min for s in stats), max(s.max for s in stats)

    @classmethod
    def open(cls, folder: str | Path) -> Dataset:
        """The dataset in `folder`, its tables checked against meta.json (schema, rows, hash), not read."""
        folder = Path(folder)
        if not (folder / META_FILE).exists():
            raise DataError(str(folder), "not a prepared dataset (no meta.json); run `trackrec data prepare` first")
        meta = json.loads((folder / META_FILE).read_text())
        if "tables" not in meta:
            raise DataError(str(folder), "written by an older trackrec (no table list in meta.json); prepare it again")
        if not SECONDS_RANGE[0] <= meta.get("latest_timestamp", 0) < SECONDS_RANGE[1]:  # CoLLM read as nanoseconds
            raise DataError(
                str(folder), f"latest timestamp {meta['latest_timestamp']} is not Unix seconds; prepare it again"
            )
        columns = {"samples": tuple(SAMPLE_TYPES), "history": tuple(HISTORY_TYPES), "items": ITEM_COLUMNS}
        for name, expected in meta["tables"].items():
            _check_table(folder / TABLE_FILES[name], columns[name], expected)
        items = pd.read_parquet(folder / TABLE_FILES["items"])
        return cls(items, meta, load_id_maps(folder), folder=folder)

    # --- reading ---------------------------------------------------------------------------------

    def _table(self, name: str) -> pd.DataFrame:
        if self.tables is not None:
            return self.tables[name]
        return pq.read_table(
            self.folder / TABLE_FILES[name], read_dictionary=["split"] * (name == "samples")
        ).to_pandas()

    def samples(
        self, split: str | None = None, columns: list[str] | None = None, users: tuple[int, int] | None = None
    ) -> pd.DataFrame:
        """Sample rows of `split` (every split: None) with user ids in [users[0], users[1]); from a
        folder, only the row groups that can hold them are read."""
        wanted = list(columns or SAMPLE_TYPES)
        if self.tables is not None:
            frame = self.tables["samples"]
        else:
            handle = pq.ParquetFile(self.folder / TABLE_FILES["samples"], read_dictionary=["split"])
            read = list(dict.fromkeys([*wanted, *["split"] * bool(split), *["user_id"] * bool(users)]))
            frame = handle.read_row_groups(user_groups(handle, users), columns=read).to_pandas()
        keep = np.ones(len(frame), bool)
        if split:
            keep &= (frame["split"] == split).to_numpy()
        if users:
            ids = frame["user_id"].to_numpy()
            keep &= (ids >= users[0]) & (ids < users[1])
        return frame.loc[keep, wanted].reset_index(drop=True)

    def sample_groups(self) -> int:
        """How many row groups the sample table has (read one at a time by `sample_group`)."""
        if self.tables is not None:
            return max(1, -(-len(self.tables["samples"]) // ROW_GROUP))
        return pq.ParquetFile(self.folder / TABLE_FILES["samples"]).num_row_groups

    def sample_group(self, index: int, columns: list[str]) -> pd.DataFrame:
        if self.tables is not None:
            return self.tables["samples"].iloc[index * ROW_GROUP : (index + 1) * ROW_GROUP][columns]
        handle = pq.ParquetFile(self.folder / TABLE_FILES["samples"], read_dictionary=["split"])
        return handle.read_row_group(index, columns=columns).to_pandas()

    def history_rows(self, start: int, stop: int) -> pd.DataFrame:
        """History rows [start, stop): only the row groups that hold them are read."""
        if self.tables is not None:
            return self.tables["history"].iloc[start:stop].reset_index(drop=True)
        handle = pq.ParquetFile(self.folder / TABLE_FILES["history"])
        sizes = [handle.metadata.row_group(i).num_rows for i in range(handle.num_row_groups)]
        bounds = np.concatenate(([0], np.cumsum(sizes)))
        groups = [i for i in range(len(sizes)) if bounds[i] < stop and bounds[i + 1] > start]
        if not groups or stop <= start:
            return pd.DataFrame({c: pd.Series(dtype=t) for c, t in HISTORY_TYPES.items()})
        frame = handle.read_row_groups(groups).to_pandas()
        offset = start - bounds[groups[0]]
        return frame.iloc[offset : offset + (stop - start)].reset_index(drop=True)

    def _history_span(self, samples: pd.DataFrame) -> tuple[int, pd.DataFrame]:
        """(the first history row `samples` point into, the rows from there to their last)."""
        if len(samples) == 0:
            return 0, self.history_rows(0, 0)
        low = int(samples["history_start"].min())
        return low, self.history_rows(low, int(samples["history_end"].max()))

    def history_matrix(self, samples: pd.DataFrame, length: int) -> tuple[np.ndarray, np.ndarray]:
        """(item ids, labels) of each sample's last `length` history entries, right-aligned and
        zero-padded: shape (len(samples), length)."""
        start, end = samples["history_start"].to_numpy(), samples["history_end"].to_numpy()
        low, rows = self._history_span(samples)
        positions = end[:, None] - length + np.arange(length)[None, :]
        present = positions >= start[:, None]
        index = np.where(present, positions - low, 0)
        items = rows["item_id"].to_numpy(np.int64)
        labels = rows["label"].to_numpy(np.int64)
        if len(rows) == 0:
            return np.zeros(positions.shape, np.int64), np.zeros(positions.shape, np.int64)
        return np.where(present, items[index], 0), np.where(present, labels[index], -1)

    def with_histories(self, samples: pd.DataFrame) -> pd.DataFrame:
        """Sample (or snapshot) rows with their histories as lists (ROW_COLUMNS): what LLM prompts are built from.
        Meant for the rows an LLM reads (a draw, one shard's users), not for every event."""
        titles = pd.Series(self.items["title"].to_numpy(), index=self.items["item_id"].to_numpy())
        out = samples.copy()
        if "target_item_id" in samples:  # a snapshot's rows have no target
            out["target_title"] = titles.reindex(samples["target_item_id"]).to_numpy()
        start, end = samples["history_start"].to_numpy(), samples["history_end"].to_numpy()
        low, rows = self._history_span(samples)
        item_ids = rows["item_id"].to_numpy(np.int64)
        item_titles = titles.reindex(item_ids).to_numpy()
        labels, ratings = rows["label"].to_numpy(np.int8), rows["rating"].to_numpy(np.float32)
        spans = [slice(s - low, e - low) for s, e in zip(start, end, strict=True)]
        out["history_item_ids"] = [item_ids[s].tolist() for s in spans]
        out["history_titles"] = [item_titles[s].tolist() for s in spans]
        out["history_labels"] = [labels[s].tolist() for s in spans]
        out["history_ratings"] = [ratings[s].tolist() for s in spans]
        return out[[*[c for c in ROW_COLUMNS if c in out], *[c for c in out.columns if c not in ROW_COLUMNS]]]


def user_groups(handle: pq.ParquetFile, users: tuple[int, int] | None) -> list[int]:
    """The row groups whose user_id statistics overlap [users[0], users[1]) (every group: None)."""
    groups = range(handle.num_row_groups)
    if users is None:
        return list(groups)
    column = handle.schema_arrow.get_field_index("user_id")
    overlapping = []
    for index in groups:
        stats = handle.metadata.row_group(index).column(column).statistics
        if stats is None or not stats.has_min_max or (stats.min < users[1] and stats.max >= users[0]):
            overlapping.append(index)
    return overlapping


def _write_frame(frame: pd.DataFrame, path: Path) -> None:
    # ids and offsets do not repeat: dictionary-encode only the text columns
    text = [c for c in ("split", "title") if c in frame.columns]
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=ROW_GROUP, use_dictionary=text
    )


def _offsets_moved(rows: pa.Table, by: int) -> pa.Table:
    """Sample rows whose history offsets point `by` rows further (past the history rows before them)."""
    for column in ("history_start", "history_end"):
        moved = pc.add(rows[column], pa.scalar(by, pa.int64()))
        rows = rows.set_column(rows.schema.get_field_index(column), column, moved)
    return rows


def _write_meta(meta: dict, id_maps: dict[str, pd.DataFrame], folder: Path) -> None:
    """meta.json, with each table's row count and content hash, and the id maps, in `folder`."""
    tables = {}
    for name, file in TABLE_FILES.items():
        tables[name] = {"rows": pq.read_metadata(folder / file).num_rows, "sha256": sha256_of(folder / file)}
    save_id_maps(id_maps, folder)
    (folder / META_FILE).write_text(json.dumps({**meta, "tables": tables}, indent=2))


def _typed(frame: pd.DataFrame, types: dict[str, str]) -> pd.DataFrame:
    """`frame`'s columns in `types`, converting only those of another type (no copy of the rest)."""
    wrong = {column: kind for column, kind in types.items() if str(frame[column].dtype) != kind}
    return (frame.astype(wrong) if wrong else frame)[list(types)]


def _check_table(path: Path, columns, expected: dict) -> None:
    """Schema, row count and content hash of one table against what meta.json recorded."""
    if not path.exists():
        raise DataError(str(path), "table missing from the prepared dataset")
    metadata = pq.read_metadata(path)
    found = metadata.schema.to_arrow_schema().names
    missing = [c for c in columns if c not in found]
    if missing:
        raise DataError(str(path), f"missing column '{missing[0]}' (expected {list(columns)}, found {found})")
    if metadata.num_rows != expected["rows"]:
        raise DataError(str(path), f"holds {metadata.num_rows} rows, meta.json says {expected['rows']}")
    if sha256_of(path) != expected["sha256"]:
        raise DataError(str(path), "content differs from the hash in meta.json (changed or truncated after writing)")


def save_id_maps(id_maps: dict[str, pd.DataFrame], folder: Path) -> None:
    for kind, frame in id_maps.items():
        frame.to_parquet(folder / ID_MAP_FILES[kind], index=False)


def load_id_maps(folder: Path) -> dict[str, pd.DataFrame]:
    """The id maps saved in `folder` (none where it has none)."""
    maps = {}
    for kind, name in ID_MAP_FILES.items():
        if (folder / name).exists():
            frame = pd.read_parquet(folder / name)
            require_columns(frame, ("raw_id", "id"), str(folder / name))
            maps[kind] = frame.astype({"raw_id": str, "id": "int64"})
    return maps
