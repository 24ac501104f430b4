"""The encode stage with the bundled all-MiniLM-L6-v2, and which users the refresh summarises."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from trackrec.data.dataset import Dataset
from trackrec.errors import DataError
from trackrec.features.encoder import EncoderConfig
from trackrec.stages.encode import encode
from trackrec.stages.outputs import Embeddings, RecCoTs
from trackrec.stages.summarize import active_users


def write_reccots(folder, texts):
    folder.mkdir()
    users = range(1, len(texts) + 1)
    frame = pd.DataFrame({"user_id": users, "as_of": [1000 * u for u in users], "reccot": texts, "iteration": 3})
    frame.to_parquet(RecCoTs(folder).table)
    return folder


def test_encode_writes_unit_float32_vectors_that_keep_meaning(tmp_path):
    texts = ["The user loves action movies.", "This user enjoys action films.", "Likes slow romantic dramas."]
    meta = encode(write_reccots(tmp_path / "r", texts), EncoderConfig(batch_size=2), tmp_path / "e", progress=False)
    assert meta == {"encoder": "all-minilm-l6-v2", "dim": 384, "snapshots": 3}
    table = pd.read_parquet(Embeddings(tmp_path / "e").table)
    vectors = np.stack(table.embedding)
    assert vectors.dtype == np.float32 and vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.2  # paraphrases closer than another taste
    assert table.reccot.tolist() == texts and set(table.encoder) == {"all-minilm-l6-v2"}
    assert table.as_of.tolist() == [1000, 2000, 3000]  # each vector keeps the time its snapshot is as of


def test_encode_names_a_missing_column_and_writes_nothing(tmp_path):
    folder = tmp_path / "r"
    folder.mkdir()
    pd.DataFrame({"user_id": [1], "as_of": [5], "text": ["x"]}).to_parquet(RecCoTs(folder).table)
    with pytest.raises(DataError, match="reccots.parquet.*missing column 'reccot'"):
        encode(folder, EncoderConfig(), tmp_path / "e", progress=False)
    assert not (tmp_path / "e").exists()


def test_a_bad_as_of_is_named_by_its_row_and_nothing_is_written(tmp_path):
    folder = write_reccots(tmp_path / "r", ["a", "b", "c"])
    table = pd.read_parquet(RecCoTs(folder).table)
    table.assign(as_of=[1000.0, None, 3000.0]).to_parquet(RecCoTs(folder).table)
    with pytest.raises(DataError, match="reccots.parquet, row 1, field 'as_of': must be Unix seconds"):
        encode(folder, EncoderConfig(), tmp_path / "e", progress=False)
    assert not (tmp_path / "e").exists()


def test_active_users_are_exactly_those_with_behaviour_in_the_last_k_days(prepared):
    dataset = Dataset.open(prepared)
    events = dataset.samples()
    last_seen = events.groupby("user_id").timestamp.max()
    whole_log = int((events.timestamp.max() - events.timestamp.min()) // 86_400) + 1
    assert set(active_users(dataset, whole_log)) == set(last_seen.index)
    recent = set(active_users(dataset, 1))
    assert recent == set(last_seen.index[last_seen >= events.timestamp.max() - 86_400])
    assert 0 < len(recent) < len(last_seen)  # the synthetic log has users quiet on its last day


def test_encode_in_chunks_and_shards_gathers_into_the_whole_tables_vectors(tmp_path, monkeypatch):
    """Chunked, sharded encoding changes nothing but the row order: each user's vector is the one the
    whole-table encode gives, and a shard holds only the users of its id range."""
    import trackrec.stages.encode as stage
    from trackrec.stages.gather import gather
    from trackrec.stages.shards import Shard

    texts = [f"The user watches {genre} films on {day}." for genre in ("war", "noir", "anime") for day in "MTWF"]
    reccots = write_reccots(tmp_path / "r", texts)
    encode(reccots, EncoderConfig(), tmp_path / "whole", progress=False)
    monkeypatch.setattr(stage, "CHUNK", 5)
    parts = [tmp_path / f"part{i}" for i in range(3)]
    for index, part in enumerate(parts):
        encode(reccots, EncoderConfig(), part, progress=False, shard=Shard(index, 3))
        users = pd.read_parquet(Embeddings(part).table).user_id
        low, high = Shard(index, 3).users(len(texts) + 1)
        assert len(users) and users.between(low, high - 1).all()
    gather(parts, "trackrec.stages.outputs:Embeddings", tmp_path / "gathered")
    meta = json.loads(Embeddings(tmp_path / "gathered").encoding.read_text())
    assert meta == {"encoder": "all-minilm-l6-v2", "dim": 384, "snapshots": len(texts)}  # what train_ctr reads
    whole = pd.read_parquet(Embeddings(tmp_path / "whole").table).set_index("user_id")
    gathered = pd.read_parquet(Embeddings(tmp_path / "gathered").table).set_index("user_id")
    assert sorted(gathered.index) == sorted(whole.index) and gathered.reccot.equals(whole.reccot[gathered.index])
    np.testing.assert_allclose(np.stack(gathered.embedding), np.stack(whole.embedding[gathered.index]), atol=1e-5)
