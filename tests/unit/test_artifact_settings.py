"""The artifact-service's settings: the S3 back end needs both buckets, the
file back end derives its signing key from the root secret, and data URLs
default to the root URL."""

from pathlib import Path

import pytest

from taskjournal.shared.config import Settings, SettingError
from taskjournal.shared.storage import open_blob_store
from taskjournal.shared.storage.files import FileBlobStore
from taskjournal.shared.storage.s3 import S3BlobStore


def test_s3_needs_both_buckets():
    with pytest.raises(SettingError, match="TASKJOURNAL_S3_PRIVATE_BUCKET"):
        Settings.from_env({"TASKJOURNAL_ARTIFACT_STORE": "s3", "TASKJOURNAL_S3_PUBLIC_BUCKET": "pub"})


def test_unknown_store_is_refused():
    with pytest.raises(SettingError, match="TASKJOURNAL_ARTIFACT_STORE"):
        Settings.from_env({"TASKJOURNAL_ARTIFACT_STORE": "ftp"})


def test_file_store_under_the_data_dir_with_urls_at_the_root_url(tmp_path):
    settings = Settings.from_env({"TASKJOURNAL_DATA_DIR": str(tmp_path), "TASKJOURNAL_ROOT_URL": "https://tc.example/",
                                  "TASKJOURNAL_ROOT_CLIENT_ID": "root", "TASKJOURNAL_ROOT_ACCESS_TOKEN": "secret"})
    blobs = open_blob_store(settings)
    assert isinstance(blobs, FileBlobStore) and blobs.root == Path(tmp_path) / "blobs"
    assert blobs.download_url("public", "k", 1).startswith("https://tc.example/api/journal/v1/blobs/public/k?")


def test_artifact_url_moves_the_data_urls(tmp_path):
    settings = Settings.from_env({"TASKJOURNAL_DATA_DIR": str(tmp_path), "TASKJOURNAL_ARTIFACT_URL": "http://data:9000",
                                  "TASKJOURNAL_ROOT_CLIENT_ID": "root", "TASKJOURNAL_ROOT_ACCESS_TOKEN": "secret"})
    assert open_blob_store(settings).download_url("private", "k", 1).startswith("http://data:9000/api/journal/")


def test_s3_store_from_settings(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    settings = Settings.from_env({"TASKJOURNAL_ARTIFACT_STORE": "s3", "TASKJOURNAL_S3_PUBLIC_BUCKET": "pub",
                                  "TASKJOURNAL_S3_PRIVATE_BUCKET": "priv",
                                  "TASKJOURNAL_S3_ENDPOINT_URL": "http://127.0.0.1:9"})
    blobs = open_blob_store(settings)
    assert isinstance(blobs, S3BlobStore) and blobs.buckets == {"public": "pub", "private": "priv"}
    assert blobs.download_url("public", "T/0/public/x", 10**13).startswith("http://127.0.0.1:9/pub/T/0/public/x?")
