"""Stage encode: the users' RecCoTs as float32 vectors, with the text and the encoder that made them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from trackrec.atomic import atomic_dir
from trackrec.data.schema import require_columns
from trackrec.errors import DataError
from trackrec.features.encoder import EncoderConfig, TextEncoder
from trackrec.timing import work_begins

COLUMNS = ("user_id", "reccot", "iteration")


def encode(reccots_dir: str | Path, config: EncoderConfig, output: str | Path, progress: bool = True) -> dict:
    """Writes embeddings.parquet (user_id, reccot, iteration, embedding, encoder) and meta.json."""
    source = Path(reccots_dir) / "reccots.parquet"
    if not source.is_file():
        raise DataError(str(source), "RecCoT table not found; run summarize first")
    table = pd.read_parquet(source)
    require_columns(table, COLUMNS, str(source))
    if table.empty:
        raise DataError(str(source), "no RecCoT to encode")
    encoder = TextEncoder(config)
    work_begins()
    vectors = encoder.encode(table.reccot.astype(str).tolist(), progress)
    table = table[list(COLUMNS)].assign(embedding=list(vectors), encoder=config.model)
    meta = {"encoder": config.model, "dim": encoder.dim, "users": len(table)}
    with atomic_dir(output) as tmp:
        table.to_parquet(tmp / "embeddings.parquet")
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    return meta
