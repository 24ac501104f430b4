"""Artifact transfers against a real S3 API (moto's server) on 127.0.0.1, including a server restart."""

from __future__ import annotations

import os
import threading

import pandas as pd
import pytest
from moto.server import ThreadedMotoServer

from tests.conftest import free_port
from trackrec.artifacts.s3 import ArtifactError, client, download, upload, upload_dir


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    moto.endpoint = f"http://127.0.0.1:{port}"
    yield moto
    moto.stop()


def test_round_trip_keeps_bytes_and_records_the_checksum(server, tmp_path):
    s3 = client(server.endpoint)
    s3.create_bucket(Bucket="artifacts")
    source = tmp_path / "adapter.safetensors"
    source.write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    stored = upload(s3, source, "s3://artifacts/run/iter1/adapter.safetensors")
    assert stored["size"] == source.stat().st_size and len(stored["sha256"]) == 64
    got = download(s3, "s3://artifacts/run/iter1/adapter.safetensors", tmp_path / "back" / "a.safetensors")
    assert got == stored and (tmp_path / "back" / "a.safetensors").read_bytes() == source.read_bytes()


def test_an_upload_survives_a_server_restart(server, tmp_path):
    s3 = client(server.endpoint)
    s3.create_bucket(Bucket="artifacts")
    (tmp_path / "files").mkdir()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        (tmp_path / "files" / name).write_bytes(os.urandom(512 * 1024))
    server.stop()  # the server goes away as the upload starts, and comes back on the same port
    restarted = threading.Timer(1.5, server.start)
    restarted.start()
    try:
        assert upload_dir(s3, tmp_path / "files", "s3://artifacts/run/g1") == 2
    finally:
        restarted.join()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        download(s3, f"s3://artifacts/run/g1/{name}", tmp_path / "back" / name)
        assert (tmp_path / "back" / name).read_bytes() == (tmp_path / "files" / name).read_bytes()


def test_a_missing_object_is_named_and_leaves_no_file(server, tmp_path):
    s3 = client(server.endpoint)
    s3.create_bucket(Bucket="artifacts")
    with pytest.raises(ArtifactError, match="download of s3://artifacts/nope failed"):
        download(s3, "s3://artifacts/nope", tmp_path / "x")
    assert list(tmp_path.iterdir()) == []


def test_missing_credentials_are_named_before_any_transfer(server, tmp_path, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(ArtifactError, match="no S3 credentials: set AWS_ACCESS_KEY_ID"):
        client(server.endpoint)


def test_prepare_data_reads_its_source_from_s3_like_from_a_folder(s3, collm_root, tmp_path):
    from trackrec.data.config import DataConfig
    from trackrec.data.dataset import Dataset
    from trackrec.stages.prepare_data import prepare_data

    s3.create_bucket(Bucket="data")
    upload_dir(client(), collm_root, "s3://data/collm")
    prepare_data(DataConfig(root="s3://data/collm"), tmp_path / "from-s3")
    prepare_data(DataConfig(root=str(collm_root)), tmp_path / "from-folder")
    from_s3, local = Dataset.open(tmp_path / "from-s3"), Dataset.open(tmp_path / "from-folder")
    pd.testing.assert_frame_equal(from_s3.samples(), local.samples())
    assert from_s3.meta["tables"] == local.meta["tables"]  # the same bytes


def test_missing_s3_credentials_are_named_before_any_transfer(monkeypatch, tmp_path):
    from trackrec.data.config import DataConfig
    from trackrec.stages.prepare_data import prepare_data

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ArtifactError, match="no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        prepare_data(DataConfig(root="s3://data/collm"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_s3_hashes_the_uploaded_bytes_single_and_multipart(server, tmp_path, monkeypatch):
    import base64
    import hashlib

    from boto3.s3.transfer import TransferConfig

    from trackrec.artifacts import s3 as artifacts

    part = 5 * 1024 * 1024  # S3's smallest part: a 12 MiB file goes up in three
    monkeypatch.setattr(artifacts, "_PART", part)
    monkeypatch.setattr(artifacts, "_TRANSFER", TransferConfig(multipart_threshold=part, multipart_chunksize=part))
    s3 = client(server.endpoint)
    s3.create_bucket(Bucket="artifacts")
    for name, size in (("small", 1024 * 1024 + 3), ("large", 12 * 1024 * 1024 + 5)):
        source = tmp_path / name
        source.write_bytes(os.urandom(size))
        upload(s3, source, f"s3://artifacts/{name}")
        reported = s3.head_object(Bucket="artifacts", Key=name, ChecksumMode="ENABLED")["ChecksumSHA256"]
        data = source.read_bytes()
        if name == "small":  # the server's own hash of the bytes it stored
            assert reported == base64.b64encode(hashlib.sha256(data).digest()).decode()
        else:
            parts = b"".join(hashlib.sha256(data[i : i + part]).digest() for i in range(0, size, part))
            assert reported.split("-")[0] == base64.b64encode(hashlib.sha256(parts).digest()).decode()


@pytest.mark.parametrize("key", ["model/../../outside", "model//etc/passwd", "model/./x", "model/a/../../../up"])
def test_a_key_that_would_land_outside_the_folder_is_refused(server, tmp_path, key):
    from trackrec.artifacts.s3 import download_dir

    s3 = client(server.endpoint)
    s3.create_bucket(Bucket="artifacts")
    s3.put_object(Bucket="artifacts", Key="model/config.json", Body=b"{}")
    s3.put_object(Bucket="artifacts", Key=key, Body=b"payload")
    listed = [item["Key"] for item in s3.list_objects_v2(Bucket="artifacts")["Contents"]]
    assert key in listed  # the server kept the key as written
    destination = tmp_path / "a" / "b" / "dest"
    with pytest.raises(ArtifactError, match="would be written outside"):
        download_dir(s3, "s3://artifacts/model", destination)
    assert not any(p.is_file() for p in tmp_path.rglob("*"))  # nothing written, inside or out


def test_an_s3_prefix_of_log_parts_prepares_the_same_dataset_as_the_local_file(s3, tmp_path):
    from tests.test_behaviour_log import config, write_parts
    from trackrec.data.dataset import Dataset
    from trackrec.stages.prepare_data import prepare_data

    log = pd.DataFrame(
        {
            "user_id": [1, 2, 1, 3, 2, 1, 3, 2],
            "item_id": [10, 10, 11, 12, 11, 12, 10, 12],
            "timestamp": [100, 200, 300, 400, 5_000_000, 5_000_100, 9_000_000, 9_000_100],
            "label": [1, 0, 1, 1, 0, 1, 0, 1],
        }
    )
    log.to_parquet(tmp_path / "log.parquet", index=False)
    s3.create_bucket(Bucket="logs")
    upload_dir(client(), write_parts(log, tmp_path / "parts"), "s3://logs/events/")
    dates = {"valid_start": "1970-02-01", "test_start": "1970-04-01"}
    prepare_data(config("s3://logs/events/", **dates), tmp_path / "from-s3")
    prepare_data(config(tmp_path / "log.parquet", **dates), tmp_path / "from-file")
    from_s3, local = Dataset.open(tmp_path / "from-s3"), Dataset.open(tmp_path / "from-file")
    pd.testing.assert_frame_equal(from_s3.samples(), local.samples())
    assert from_s3.meta["rows"] == local.meta["rows"] == {"train": 4, "valid": 2, "test": 2}
