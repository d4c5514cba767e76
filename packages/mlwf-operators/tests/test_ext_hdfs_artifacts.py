"""Model artifacts on HDFS: the real HdfsCLI client against the WebHDFS fake, through an Airflow connection."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mlwf_operators.artifacts import (
    ArtifactNotFoundError,
    ArtifactStoreError,
    ObjectStorageArtifactStore,
    artifact_path,
    artifact_store_for,
)
from mlwf_operators.artifacts_hdfs import HdfsArtifactStore, parse_hdfs_uri
from mlwf_operators.hooks import HdfsHook
from mlwf_operators.model_files import ModelFileError
from mlwf_operators.operators.validation import ValidateModelOperator
from mlwf_operators.processes import process_tree
from mlwf_operators.serving import model_copy_dir, start_service, stop_service
from mlwf_testsupport import assert_no_leftover_processes
from mlwf_testsupport.fakes import FakeWebHdfs

CONN = "hdfs_models"


@pytest.fixture
def hdfs(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWebHdfs]:
    """A WebHDFS fake and connection ``hdfs_models`` to it."""
    with FakeWebHdfs(allowed_users={"ml"}) as fake:
        conn = {"conn_type": "mlwf_hdfs", "host": "127.0.0.1", "port": fake.port, "login": "ml"}
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN.upper()}", json.dumps(conn))
        yield fake


@pytest.fixture
def trained(trained_model_dir: Path) -> Path:
    """The session's reference model directory."""
    return trained_model_dir


def test_hdfs_scheme_is_served_through_object_storage() -> None:
    """``hdfs://`` URIs resolve to the ObjectStoragePath store; the authority is the connection id."""
    assert isinstance(artifact_store_for("hdfs://hdfs_models/m/1"), ObjectStorageArtifactStore)
    path = artifact_path("hdfs://hdfs_models/models/a/../b")
    assert (path.protocol, path.conn_id, path.path) == ("hdfs", "hdfs_models", "/models/b")
    assert artifact_path("hdfs:///models/b").conn_id == "mlwf_hdfs_default"
    assert parse_hdfs_uri("hdfs://hdfs_models/models/a/../b") == ("hdfs_models", "/models/b")
    assert parse_hdfs_uri("hdfs:///models/b") == (None, "/models/b")


@pytest.mark.parametrize("uri", ["hdfs://hdfs_models", "hdfs://hdfs_models/", "hdfs://c/.."])
def test_uris_without_a_path_are_refused(uri: str) -> None:
    """An artifact URI must name a path below the root."""
    with pytest.raises(ArtifactStoreError, match="needs an absolute path below /"):
        parse_hdfs_uri(uri)


def test_put_get_round_trip_and_validation_from_hdfs(
    hdfs: FakeWebHdfs, trained: Path, tmp_path: Path
) -> None:
    """A model uploaded to HDFS is complete, downloads identically and validates straight from its URI."""
    uri = f"hdfs://{CONN}/models/churn/1"
    store = artifact_store_for(uri)
    assert not store.exists(uri)
    assert store.put_dir(trained, uri) == uri
    assert store.exists(uri)
    assert (
        HdfsHook(CONN).status("/models/churn/.1.partial") is None
    )  # renamed into place, not left behind
    local = store.get_dir(uri, tmp_path / "scratch")
    assert sorted(p.name for p in local.iterdir()) == sorted(p.name for p in trained.iterdir())
    for file in trained.iterdir():
        assert (local / file.name).read_bytes() == file.read_bytes()
    metrics = ValidateModelOperator(
        task_id="v", model_uri=uri, thresholds={"accuracy": 0.9}
    ).execute({})  # type: ignore[arg-type]
    assert metrics["accuracy"] > 0.9


def test_existing_location_is_not_overwritten(hdfs: FakeWebHdfs, trained: Path) -> None:
    """Storing to a location that exists fails and leaves the stored artifact as it was."""
    uri = f"hdfs://{CONN}/models/twice"
    store = HdfsArtifactStore()
    store.put_dir(trained, uri)
    with pytest.raises(ArtifactStoreError, match="already exists; refusing to overwrite"):
        store.put_dir(trained, uri)
    assert store.exists(uri)


def test_missing_artifact_is_named(hdfs: FakeWebHdfs, tmp_path: Path) -> None:
    """Fetching a URI with nothing behind it names the URI (through the deprecated HDFS store name)."""
    with pytest.raises(
        ArtifactNotFoundError, match="no model artifact at 'hdfs://hdfs_models/none'"
    ):
        HdfsArtifactStore().get_dir(f"hdfs://{CONN}/none", tmp_path)


def test_served_hdfs_model_copy_is_removed_on_stop(
    hdfs: FakeWebHdfs, trained: Path, tmp_path: Path
) -> None:
    """Issue 10 item 13: the local copy of an HDFS model lives while its service runs and is removed when it stops."""
    uri = f"hdfs://{CONN}/models/served/1"
    HdfsArtifactStore().put_dir(trained, uri)
    state_file = tmp_path / "services" / "svc.json"
    state = start_service(uri, state_file, startup_timeout=60)
    tree = process_tree(state.pid)
    copy = model_copy_dir(state_file)
    try:
        assert (copy / "hdfs-artifact" / "model.joblib").is_file()  # the service may reload it
        assert httpx.get(f"{state.endpoint}/health", timeout=10).status_code == 200
    finally:
        stop_service(state_file)
    assert_no_leftover_processes(among=tree)
    assert not copy.exists()
    assert sorted(p.name for p in state_file.parent.iterdir()) == ["svc.log"]


def test_failed_start_removes_the_hdfs_model_copy(
    hdfs: FakeWebHdfs, trained: Path, tmp_path: Path
) -> None:
    """Issue 10 item 13: a start that fails after downloading an HDFS model removes the copy, and a stale copy is replaced."""
    uri = f"hdfs://{CONN}/models/tampered/1"
    HdfsArtifactStore().put_dir(trained, uri)
    hdfs.write_file("/models/tampered/1/model.joblib", b"replaced after training")
    state_file = tmp_path / "svc.json"
    copy = model_copy_dir(state_file)
    (copy / "hdfs-artifact").mkdir(parents=True)  # left by a start that was killed
    (copy / "hdfs-artifact" / "stale").write_text("x")
    with pytest.raises(ModelFileError, match="has SHA-256"):
        start_service(uri, state_file, startup_timeout=60)
    assert not copy.exists()
    assert not state_file.exists()


def test_a_refused_user_is_an_artifact_error_naming_the_uri(
    tmp_path: Path, trained: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WebHDFS refusing the connection's user fails with an ArtifactStoreError naming the URI, not a bare OSError."""
    with FakeWebHdfs(allowed_users={"someone-else"}) as fake:
        conn = {"conn_type": "mlwf_hdfs", "host": "127.0.0.1", "port": fake.port, "login": "ml"}
        monkeypatch.setenv("AIRFLOW_CONN_HDFS_REFUSED", json.dumps(conn))
        with pytest.raises(
            ArtifactStoreError,
            match=r"cannot store artifact 'hdfs://hdfs_refused/m'.*Permission denied",
        ):
            artifact_store_for("hdfs://hdfs_refused/m").put_dir(trained, "hdfs://hdfs_refused/m")
        assert not fake.exists("/m")


def test_a_connection_without_user_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """An hdfs connection without the HDFS user is refused naming the connection."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_HDFS_NOUSER",
        json.dumps({"conn_type": "mlwf_hdfs", "host": "127.0.0.1", "port": 1}),
    )
    with pytest.raises(ArtifactStoreError, match=r"hdfs_nouser.*'login'"):
        artifact_store_for("hdfs://hdfs_nouser/m").exists("hdfs://hdfs_nouser/m")
