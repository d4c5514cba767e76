"""HDFS hook, operators and sensor against the WebHDFS fake, through real Airflow connections."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlwf_operators.hooks import ConnectionConfigError, ExternalServiceError, HdfsHook
from mlwf_operators.operators.hdfs import (
    HdfsDeleteOperator,
    HdfsDownloadOperator,
    HdfsListOperator,
    HdfsMkdirOperator,
    HdfsRenameOperator,
    HdfsUploadOperator,
)
from mlwf_operators.sensors.hdfs import HdfsPathSensor
from mlwf_testsupport import free_port
from mlwf_testsupport.fakes import FakeWebHdfs

CONN = "hdfs_test"


@pytest.fixture
def hdfs(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWebHdfs]:
    """A WebHDFS fake that admits user 'airflow', and connection ``hdfs_test`` (JSON form) to it."""
    with FakeWebHdfs(allowed_users={"airflow"}) as fake:
        conn = {
            "conn_type": "mlwf_hdfs",
            "host": "127.0.0.1",
            "port": fake.port,
            "login": "airflow",
            "extra": {"schema": "http", "timeout": 5},
        }
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN.upper()}", json.dumps(conn))
        yield fake


def _ctx() -> dict[str, object]:
    return {}


def test_upload_then_download_round_trips_bytes(hdfs: FakeWebHdfs, tmp_path: Path) -> None:
    """A file uploaded by HdfsUploadOperator is stored by the fake and downloaded back unchanged."""
    local = tmp_path / "model.bin"
    local.write_bytes(bytes(range(256)) * 40)
    up = HdfsUploadOperator(
        task_id="up", local_path=str(local), hdfs_path="/models/m1/model.bin", hdfs_conn_id=CONN
    )
    assert up.execute(_ctx()) == "/models/m1/model.bin"
    assert hdfs.read_file("/models/m1/model.bin") == local.read_bytes()
    back = tmp_path / "back.bin"
    down = HdfsDownloadOperator(
        task_id="down", hdfs_path="/models/m1/model.bin", local_path=str(back), hdfs_conn_id=CONN
    )
    assert down.execute(_ctx()) == str(back)
    assert back.read_bytes() == local.read_bytes()


def test_create_and_open_follow_the_documented_redirect(hdfs: FakeWebHdfs, tmp_path: Path) -> None:
    """CREATE and OPEN go to the NameNode first and then to the DataNode URL of its 307 answer."""
    local = tmp_path / "a.txt"
    local.write_text("hello")
    HdfsUploadOperator(
        task_id="up", local_path=str(local), hdfs_path="/a.txt", hdfs_conn_id=CONN
    ).execute(_ctx())
    HdfsDownloadOperator(
        task_id="down", hdfs_path="/a.txt", local_path=str(tmp_path / "b.txt"), hdfs_conn_id=CONN
    ).execute(_ctx())
    creates = [p for m, p in hdfs.requests if "op=CREATE" in p]
    opens = [p for m, p in hdfs.requests if "op=OPEN" in p]
    assert [("namenoderpcaddress" in p) for p in creates] == [False, True]
    assert [("namenoderpcaddress" in p) for p in opens] == [False, True]


def test_mkdir_list_rename_delete(hdfs: FakeWebHdfs) -> None:
    """Mkdir, list, rename and recursive delete operators change the fake filesystem as WebHDFS would."""
    hdfs.write_file("/data/in/part-0", b"x")
    assert (
        HdfsMkdirOperator(task_id="m", hdfs_path="/data/out/day=1", hdfs_conn_id=CONN).execute(
            _ctx()
        )
        == "/data/out/day=1"
    )
    assert HdfsListOperator(task_id="l", hdfs_path="/data", hdfs_conn_id=CONN).execute(_ctx()) == [
        "in",
        "out",
    ]
    HdfsRenameOperator(
        task_id="r",
        source_path="/data/in/part-0",
        destination_path="/data/out/day=1",
        hdfs_conn_id=CONN,
    ).execute(_ctx())
    assert hdfs.read_file("/data/out/day=1/part-0") == b"x"
    assert (
        HdfsDeleteOperator(
            task_id="d", hdfs_path="/data", recursive=True, hdfs_conn_id=CONN
        ).execute(_ctx())
        is True
    )
    assert not hdfs.exists("/data")


def test_download_of_missing_file_names_system_operation_status_and_exception(
    hdfs: FakeWebHdfs, tmp_path: Path
) -> None:
    """A missing HDFS file fails the task with HDFS, the operation, HTTP 404 and FileNotFoundException."""
    op = HdfsDownloadOperator(
        task_id="down", hdfs_path="/nope.bin", local_path=str(tmp_path / "x"), hdfs_conn_id=CONN
    )
    with pytest.raises(ExternalServiceError) as info:
        op.execute(_ctx())
    message = str(info.value)
    assert message.startswith("HDFS download '/nope.bin'")
    assert (
        "HTTP 404" in message and "FileNotFoundException: File does not exist: /nope.bin" in message
    )


def test_upload_onto_existing_file_without_overwrite_fails(
    hdfs: FakeWebHdfs, tmp_path: Path
) -> None:
    """Uploading onto an existing file without ``overwrite`` fails and leaves the old content."""
    hdfs.write_file("/f", b"old")
    local = tmp_path / "f"
    local.write_bytes(b"new")
    with pytest.raises(
        ExternalServiceError,
        match=r"HDFS upload .* to '/f' failed: Remote path '/f' already exists",
    ):
        HdfsUploadOperator(
            task_id="up", local_path=str(local), hdfs_path="/f", hdfs_conn_id=CONN
        ).execute(_ctx())
    assert hdfs.read_file("/f") == b"old"
    HdfsUploadOperator(
        task_id="up2", local_path=str(local), hdfs_path="/f", overwrite=True, hdfs_conn_id=CONN
    ).execute(_ctx())
    assert hdfs.read_file("/f") == b"new"


def test_non_recursive_delete_of_non_empty_directory_fails(hdfs: FakeWebHdfs) -> None:
    """Deleting a non-empty directory without ``recursive`` is refused with PathIsNotEmptyDirectoryException."""
    hdfs.write_file("/d/f", b"x")
    with pytest.raises(ExternalServiceError, match=r"HTTP 403.*PathIsNotEmptyDirectoryException"):
        HdfsDeleteOperator(task_id="d", hdfs_path="/d", hdfs_conn_id=CONN).execute(_ctx())
    assert hdfs.exists("/d/f")


def test_delete_of_missing_path_fails_only_when_not_missing_ok(hdfs: FakeWebHdfs) -> None:
    """A missing path returns False by default and fails the task with ``missing_ok=False``."""
    assert (
        HdfsDeleteOperator(task_id="d", hdfs_path="/ghost", hdfs_conn_id=CONN).execute(_ctx())
        is False
    )
    with pytest.raises(ExternalServiceError, match="'/ghost' does not exist"):
        HdfsDeleteOperator(
            task_id="d", hdfs_path="/ghost", missing_ok=False, hdfs_conn_id=CONN
        ).execute(_ctx())


def test_rename_of_missing_source_names_it(hdfs: FakeWebHdfs) -> None:
    """Renaming a path that does not exist fails naming the source."""
    with pytest.raises(ExternalServiceError, match="source '/a' does not exist"):
        HdfsRenameOperator(
            task_id="r", source_path="/a", destination_path="/b", hdfs_conn_id=CONN
        ).execute(_ctx())


def test_server_error_is_reported_with_status_and_message(hdfs: FakeWebHdfs) -> None:
    """An injected 500 on LISTSTATUS fails the list task with HTTP 500 and the NameNode's message."""
    hdfs.write_file("/x/y", b"")
    hdfs.inject_error(500, "NameNode is in safe mode", path_contains="op=LISTSTATUS")
    with pytest.raises(
        ExternalServiceError,
        match=r"HDFS list '/x' failed \(HTTP 500\): RuntimeException: NameNode is in safe mode",
    ):
        HdfsListOperator(task_id="l", hdfs_path="/x", hdfs_conn_id=CONN).execute(_ctx())


def test_unknown_user_is_refused(hdfs: FakeWebHdfs, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user the cluster refuses gets HTTP 403 AccessControlException naming the user."""
    conn = {"conn_type": "mlwf_hdfs", "host": "127.0.0.1", "port": hdfs.port, "login": "mallory"}
    monkeypatch.setenv("AIRFLOW_CONN_HDFS_MALLORY", json.dumps(conn))
    with pytest.raises(
        ExternalServiceError,
        match=r"HTTP 403.*AccessControlException: Permission denied: user=mallory",
    ):
        HdfsListOperator(task_id="l", hdfs_path="/", hdfs_conn_id="hdfs_mallory").execute(_ctx())


def test_unreachable_namenode_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """A NameNode nobody listens on fails with 'cannot reach WebHDFS' and its URL."""
    port = free_port()
    monkeypatch.setenv(
        "AIRFLOW_CONN_HDFS_DOWN", f"mlwf-hdfs://airflow@127.0.0.1:{port}?schema=http"
    )
    with pytest.raises(
        ExternalServiceError,
        match=rf"HDFS list '/' failed: cannot reach WebHDFS at http://127.0.0.1:{port}",
    ):
        HdfsListOperator(task_id="l", hdfs_path="/", hdfs_conn_id="hdfs_down").execute(_ctx())


def test_uri_form_connection_works(hdfs: FakeWebHdfs, monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection given in URI form resolves to the same WebHDFS URL and user."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_HDFS_URI", f"mlwf-hdfs://airflow@127.0.0.1:{hdfs.port}?schema=http"
    )
    hdfs.write_file("/u/f", b"1")
    assert HdfsHook("hdfs_uri").list("/u") == ["f"]


def test_bad_schema_in_connection_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """A schema other than http/https in the connection extra is a ConnectionConfigError naming it."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_HDFS_BAD",
        json.dumps(
            {"conn_type": "mlwf_hdfs", "host": "h", "login": "a", "extra": {"schema": "ftp"}}
        ),
    )
    with pytest.raises(
        ConnectionConfigError,
        match=r"connection 'hdfs_bad' \(type mlwf_hdfs\): extra 'schema' must be 'http' or 'https', got 'ftp'",
    ):
        HdfsHook("hdfs_bad").list("/")


def test_empty_path_argument_is_named(hdfs: FakeWebHdfs) -> None:
    """An empty ``hdfs_path`` fails before any request, naming the task and argument."""
    with pytest.raises(
        ValueError, match=r"task 'l': argument 'hdfs_path' must be a non-empty string"
    ):
        HdfsListOperator(task_id="l", hdfs_path="", hdfs_conn_id=CONN).execute(_ctx())
    assert hdfs.requests == []


def test_path_sensor_waits_for_the_path_and_kind(hdfs: FakeWebHdfs) -> None:
    """The sensor is not done while the path is absent or of the wrong kind, and done once it exists."""
    file_sensor = HdfsPathSensor(
        task_id="s", hdfs_path="/in/_SUCCESS", kind="file", hdfs_conn_id=CONN
    )
    dir_sensor = HdfsPathSensor(
        task_id="s2", hdfs_path="/in/_SUCCESS", kind="directory", hdfs_conn_id=CONN
    )
    assert file_sensor.poke(_ctx()).is_done is False
    hdfs.write_file("/in/_SUCCESS", b"")
    result = file_sensor.poke(_ctx())
    assert (result.is_done, result.xcom_value) == (True, "/in/_SUCCESS")
    assert dir_sensor.poke(_ctx()).is_done is False


def test_path_sensor_refuses_an_unknown_kind() -> None:
    """An unknown ``kind`` is refused when the DAG is defined."""
    with pytest.raises(
        ValueError,
        match=r"argument 'kind' must be one of \('any', 'file', 'directory'\), got 'link'",
    ):
        HdfsPathSensor(task_id="s", hdfs_path="/x", kind="link")
