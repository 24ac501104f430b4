"""Stage encode: the users' RecCoT snapshots as float32 vectors, with the text and the encoder that made them.

The RecCoT table is read and encoded CHUNK rows at a time and the vectors are appended to the
output as they come, so memory does not grow with the number of users; a shard encodes only its
users (the stage fans out like the inference stages).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from trackrec.atomic import atomic_dir
from trackrec.errors import DataError
from trackrec.features.encoder import EncoderConfig, TextEncoder
from trackrec.features.vectors import checked_as_of
from trackrec.stages.outputs import Embeddings, RecCoTs
from trackrec.stages.shards import WHOLE, Shard
from trackrec.timing import work_begins

COLUMNS = RecCoTs.COLUMNS
CHUNK = 16_384  # RecCoTs encoded and written per step


def _source(reccots: str | Path) -> tuple[pq.ParquetFile, str]:
    """The RecCoT table, checked for its columns and rows, and its path (for messages)."""
    source = RecCoTs(reccots).required("table")
    handle = pq.ParquetFile(source)
    found = handle.schema_arrow.names
    for column in COLUMNS:
        if column not in found:
            raise DataError(str(source), f"missing column '{column}' (expected {list(COLUMNS)}, found {found})")
    if handle.metadata.num_rows == 0:
        raise DataError(str(source), "no RecCoT to encode")
    return handle, str(source)


def vector_size(embeddings: str | Path) -> int:
    """The size of the vectors an encode stage wrote (its encoding summary)."""
    return int(json.loads(Embeddings(embeddings).required("encoding").read_text())["dim"])


def encode(
    reccots: str | Path, config: EncoderConfig, output: str | Path, progress: bool = True, shard: Shard = WHOLE
) -> dict:
    """Writes Embeddings: a table (user_id, as_of, reccot, iteration, embedding, encoder) of one row
    per RecCoT snapshot in the order of the RecCoTs, and its encoding (encoder, dim, snapshots)."""
    handle, source = _source(reccots)
    id_space = int(handle.read(columns=["user_id"])["user_id"].to_numpy().max()) + 1
    low, high = shard.users(id_space)
    encoder = TextEncoder(config)
    work_begins()
    count = 0
    bar = tqdm(total=handle.metadata.num_rows, desc="encode", unit="RecCoT", disable=not progress, leave=False)
    with atomic_dir(output) as tmp:
        empty = _table(pd.DataFrame({c: [] for c in COLUMNS}), np.zeros((0, encoder.dim), np.float32), config.model)
        with pq.ParquetWriter(Embeddings(tmp).table, empty.schema) as writer:
            read = 0
            for batch in handle.iter_batches(batch_size=CHUNK, columns=list(COLUMNS)):
                bar.update(batch.num_rows)
                chunk = batch.to_pandas()
                checked_as_of(chunk.as_of, source, read)
                read += len(chunk)
                chunk = chunk[(chunk.user_id >= low) & (chunk.user_id < high)]
                if chunk.empty:
                    continue
                writer.write_table(
                    _table(chunk, encoder.encode(chunk.reccot.astype(str).tolist(), False), config.model)
                )
                count += len(chunk)
        meta = {"encoder": config.model, "dim": encoder.dim, "snapshots": count}
        Embeddings(tmp).encoding.write_text(json.dumps(meta, indent=2))
    bar.close()
    return meta


def _table(chunk: pd.DataFrame, vectors: np.ndarray, model: str) -> pa.Table:
    """The output rows; the embedding column is built from one flat array, not a Python object per
    vector."""
    dim = vectors.shape[1]
    offsets = pa.array(np.arange(0, (len(chunk) + 1) * dim, dim, dtype=np.int32))
    return pa.table(
        {
            "user_id": pa.array(chunk.user_id.to_numpy(np.int64)),
            "as_of": pa.array(chunk.as_of.to_numpy(np.int64)),
            "reccot": pa.array(chunk.reccot.astype(str).tolist(), pa.string()),
            "iteration": pa.array(chunk.iteration.to_numpy(np.int64)),
            "embedding": pa.ListArray.from_arrays(offsets, pa.array(vectors.reshape(-1), pa.float32())),
            "encoder": pa.array([model] * len(chunk), pa.string()),
        }
    )
