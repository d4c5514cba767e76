"""The prediction service as a real process, and the load generator against it."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from mlwf_operators.loadgen import LoadGenError, ServiceUnreachableError, run_load
from mlwf_operators.model_files import seal_model_dir
from mlwf_operators.operators.load_test import LoadTestOperator, SLOMissedError
from mlwf_operators.processes import process_tree
from mlwf_operators.serving import (
    ModelNotFoundError,
    ServiceStartError,
    ServiceState,
    start_service,
    stop_service,
)
from mlwf_testsupport import assert_no_leftover_processes, free_port

ROW = [1.0] * 30


@pytest.fixture(scope="module")
def model_uri(trained_model_dir: Path) -> str:
    return trained_model_dir.as_uri()


@pytest.fixture(scope="module")
def service(model_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceState]:
    state_file = tmp_path_factory.mktemp("svc") / "service.json"
    state = start_service(model_uri, state_file, workers=1, startup_timeout=60)
    tree = process_tree(state.pid)
    yield state
    stop_service(state_file)
    assert_no_leftover_processes(among=tree)


def test_predict_health_metadata(service: ServiceState) -> None:
    """The service answers predictions for a batch, health and the model's metadata."""
    with httpx.Client(base_url=service.endpoint) as client:
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/metadata").json()["n_features"] == 30
        response = client.post("/predict", json={"instances": [ROW, [0.0] * 30]})
        assert response.status_code == 200
        assert len(response.json()["predictions"]) == 2
        assert set(response.json()["predictions"]) <= {0, 1}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "not valid JSON"),
        (json.dumps({"rows": [ROW]}).encode(), 422, 'key "instances"'),
        (json.dumps({"instances": [[1.0, 2.0]]}).encode(), 422, "must have 30 features; got 2"),
        (json.dumps({"instances": [ROW, [1.0]]}).encode(), 422, "ragged or non-numeric"),
        (json.dumps({"instances": [["a"] * 30]}).encode(), 422, "ragged or non-numeric"),
        (json.dumps({"instances": []}).encode(), 422, "non-empty list"),
    ],
)
def test_bad_input_gets_a_clear_error(
    service: ServiceState, body: bytes, status: int, message: str
) -> None:
    """Malformed or mis-shaped requests get 400/422 with a message naming the problem."""
    response = httpx.post(f"{service.endpoint}/predict", content=body)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_closed_and_open_loop_load(service: ServiceState) -> None:
    """The load generator measures the real service closed-loop and open-loop without errors."""
    body = json.dumps({"instances": [ROW]}).encode()
    closed = run_load(
        f"{service.endpoint}/predict", method="POST", body=body, duration=1.0, concurrency=4
    )
    assert closed["errors"] == 0 and closed["requests"] > 50
    assert closed["p50_ms"] <= closed["p95_ms"] <= closed["p99_ms"] <= closed["max_ms"]
    opened = run_load(
        f"{service.endpoint}/predict", method="POST", body=body, duration=1.0, rate=100
    )
    assert opened["errors"] == 0 and opened["requests"] == 100


def test_error_responses_count_as_errors(service: ServiceState) -> None:
    """Responses with an error status are counted as errors, not as latency samples."""
    with pytest.raises(
        LoadGenError, match=r"no request to POST .* succeeded.*first error: HTTP 422"
    ):
        run_load(
            f"{service.endpoint}/predict",
            method="POST",
            body=b'{"instances": [[1]]}',
            duration=0.3,
            concurrency=1,
        )


def test_load_test_operator_names_the_missed_slo(service: ServiceState) -> None:
    """The operator fails naming the p99 SLO and by how much it was missed."""
    op = LoadTestOperator(
        task_id="load",
        endpoint=service.endpoint,
        payload={"instances": [ROW]},
        duration=0.5,
        concurrency=2,
        max_p99_ms=0.001,
        max_error_rate=0.0,
    )
    with pytest.raises(
        SLOMissedError, match=r"p99 latency [\d.]+ ms exceeds max_p99_ms=0.001 by [\d.]+ ms"
    ) as info:
        op.execute({})  # type: ignore[arg-type]
    assert "error rate" not in str(info.value)


def test_load_test_operator_returns_the_numbers(service: ServiceState) -> None:
    """With met SLOs the operator returns requests, errors, throughput and percentiles."""
    op = LoadTestOperator(
        task_id="load",
        endpoint=service.endpoint + "/",
        path="predict",
        payload={"instances": [ROW]},
        rate=50,
        duration=0.5,
        max_p99_ms=5000,
        max_error_rate=0.0,
    )
    result = op.execute({})  # type: ignore[arg-type]
    assert result["requests"] == 25 and result["errors"] == 0 and result["throughput_rps"] > 0


def test_unreachable_service_is_a_clear_error() -> None:
    """Load-testing a port nobody listens on fails at once naming the URL."""
    url = f"http://127.0.0.1:{free_port()}/predict"
    with pytest.raises(ServiceUnreachableError, match=rf"cannot connect to {url}"):
        run_load(url, duration=5)


def test_missing_model_fails_fast_and_starts_nothing(tmp_path: Path) -> None:
    """A model URI that does not exist fails before any process starts or state is written."""
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    missing = (tmp_path / "nope").as_uri()
    with pytest.raises(
        ModelNotFoundError, match=rf"model URI '{missing}' does not exist; no service was started"
    ):
        start_service(missing, tmp_path / "svc.json")
    assert not (tmp_path / "svc.json").exists()
    assert {p.pid for p in psutil.Process().children(recursive=True)} == before


def test_stop_kills_the_group_and_is_idempotent(model_uri: str, tmp_path: Path) -> None:
    """Stopping kills the service and its workers (no orphan); a second stop does nothing."""
    state_file = tmp_path / "svc.json"
    state = start_service(model_uri, state_file, workers=2, startup_timeout=60)
    tree = process_tree(state.pid)
    assert len(tree) >= 3  # the uvicorn supervisor and two workers
    assert stop_service(state_file) == state
    assert_no_leftover_processes(among=tree)
    assert not state_file.exists()
    assert stop_service(state_file) is None


def test_service_that_dies_at_start_reports_its_log(tmp_path: Path) -> None:
    """A model directory whose model file is corrupt fails start-up with the service's log tail."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.joblib").write_bytes(b"not a pickle")
    seal_model_dir(model, {"n_features": 2})  # its hash checks out: it fails at unpickling
    with pytest.raises(
        Exception, match=r"(?s)exited with code \d+ during start-up.*Last lines of its log"
    ):
        start_service(model.as_uri(), tmp_path / "svc.json", startup_timeout=60)
    assert not (tmp_path / "svc.json").exists()


@pytest.fixture
def port_another_server_holds(health_server: tuple[str, list[int]]) -> int:
    """A loopback port where another HTTP server (in this test process) answers 200 to every path."""
    return int(health_server[0].rsplit(":", 1)[1].split("/", 1)[0])


def test_a_port_another_server_holds_is_a_clear_error(
    model_uri: str, port_another_server_holds: int, tmp_path: Path
) -> None:
    """A service that cannot bind its port fails naming the port and the holder, though /health there answers 200."""
    port = port_another_server_holds
    state_file = tmp_path / "svc.json"
    try:
        with pytest.raises(
            ServiceStartError,
            match=rf"could not listen on 127.0.0.1 port {port}: another process "
            rf"\(pid {os.getpid()}\) took it first.*choose another port",
        ):
            start_service(model_uri, state_file, port=port, startup_timeout=60)
        assert not state_file.exists()
    finally:
        stop_service(state_file)  # a service wrongly reported healthy must not outlive the test


def test_over_cap_body_gets_413(service: ServiceState) -> None:
    """Issue 10 item 12: a body over the 1 MiB default cap gets 413 naming the limit, by Content-Length or streamed chunked."""
    row = "[" + ",".join(["1.0"] * 30) + "]"
    big = ('{"instances": [' + ",".join([row] * 18000) + "]}").encode()  # over 2 MiB
    assert len(big) > 2 * 1024 * 1024
    with httpx.Client(base_url=service.endpoint, timeout=30) as client:
        declared = client.post("/predict", content=big)
        assert declared.status_code == 413
        assert "larger than this service's limit of 1048576 bytes" in declared.json()["error"]

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(big), 64 * 1024):
                yield big[start : start + 64 * 1024]

        streamed = client.post("/predict", content=chunks())  # chunked: no Content-Length
        assert streamed.status_code == 413
        assert "more than 1048576 bytes" in streamed.json()["error"]
        # Just under the cap is read and answered on its merits; the connection still serves.
        under = ('{"instances": [' + ",".join([row] * 8000) + "]}").encode()
        assert len(under) < 1024 * 1024
        assert client.post("/predict", content=under).status_code == 200
        assert client.get("/health").status_code == 200


_SLOW_MODEL = '''
import time
from pathlib import Path


class SlowModel:
    """Predicts zeros; a batch of more than one row takes `seconds` (it marks when it starts)."""

    def __init__(self, seconds, started):
        self.seconds = seconds
        self.started = started

    def predict(self, x):
        if len(x) > 1:
            Path(self.started).touch()
            time.sleep(self.seconds)
        return [0] * len(x)
'''


def test_slow_predict_does_not_block_other_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 10 item 12: while one slow predict runs, health and a small predict answer promptly, and a configured cap applies."""
    import importlib
    import sys
    import time

    from mlwf_operators.model_files import seal_model_dir

    helpers = tmp_path / "helpers"
    helpers.mkdir()
    (helpers / "mlwf_test_slow_model.py").write_text(_SLOW_MODEL)
    monkeypatch.syspath_prepend(str(helpers))
    monkeypatch.setenv("PYTHONPATH", str(helpers))  # the service process unpickles the class
    slow_model = importlib.import_module("mlwf_test_slow_model")
    started = tmp_path / "slow-started"
    slow_seconds = 6.0
    model = tmp_path / "model"
    model.mkdir()
    import joblib  # type: ignore[import-untyped]

    joblib.dump(slow_model.SlowModel(slow_seconds, str(started)), model / "model.joblib")
    seal_model_dir(model, {"n_features": 2})
    state_file = tmp_path / "svc.json"
    state = start_service(model.as_uri(), state_file, startup_timeout=60, max_body_bytes=4096)
    tree = process_tree(state.pid)
    try:
        with httpx.Client(base_url=state.endpoint, timeout=60) as client:
            too_big = client.post("/predict", content=b" " * 5000)
            assert too_big.status_code == 413
            assert "limit of 4096 bytes" in too_big.json()["error"]

        slow: dict[str, float] = {}

        def slow_predict() -> None:
            begin = time.monotonic()
            response = httpx.post(
                f"{state.endpoint}/predict", json={"instances": [[1, 2]] * 10}, timeout=60
            )
            assert response.status_code == 200
            slow["seconds"] = time.monotonic() - begin

        thread = threading.Thread(target=slow_predict)
        thread.start()
        deadline = time.monotonic() + 30
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert started.exists(), "the slow predict never started"
        with httpx.Client(base_url=state.endpoint, timeout=60) as client:
            begin = time.monotonic()
            assert client.get("/health").status_code == 200
            health_s = time.monotonic() - begin
            begin = time.monotonic()
            small = client.post("/predict", json={"instances": [[1, 2]]})
            small_s = time.monotonic() - begin
        assert small.status_code == 200 and small.json() == {"predictions": [0]}
        # Both answered while the slow predict was still running, in a fraction of its time.
        assert thread.is_alive(), (
            f"health ({health_s:.2f} s) and a small predict ({small_s:.2f} s) waited for the "
            f"{slow_seconds:g} s predict: the event loop was blocked"
        )
        assert health_s + small_s < slow_seconds / 3
        thread.join(timeout=60)
        assert slow["seconds"] >= slow_seconds
    finally:
        stop_service(state_file)
        assert_no_leftover_processes(among=tree)
        sys.modules.pop("mlwf_test_slow_model", None)
