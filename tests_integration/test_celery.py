"""Celery on the database broker under load and with a killed worker; Redis and RabbitMQ smoke runs.

Each topology is one instance for the module: api-server, scheduler, dag-processor, triggerer
and Celery workers (``airflow celery worker``) on a throwaway PostgreSQL metadata database, with mlwf's Celery configuration (``mlwf_instance._celery_config.CELERY_CONFIG``).
The DAGs (``dags_celery/``) count their own side effects: a task instance creates a file with
O_EXCL named after dag/run/task/map_index and appends ``<name> <try> <worker>`` to a log, so a
task that runs twice shows up in the files, not only in Airflow's states.

What recovers a SIGKILLed worker: kombu's SQLAlchemy transport has marked the message of the
running task invisible and never delivers it again; the task's heartbeats stop, the scheduler
fails the attempt after ``[scheduler] task_instance_heartbeat_timeout`` and, the task having
retries, queues try 2, which the surviving worker runs (see docs/mlwf-instance/celery.md).

Each instance is a team instance from a spec (``Instance(spec, home=…)``): its workers are the
components ``worker-1`` … ``worker-N``, and a task finds its worker's name in its Celery hostname.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from mlwf_instance import Instance, parse_spec
from mlwf_testsupport import (
    AirflowApi,
    free_port,
    poll,
    require_service,
    throwaway_database,
)

DAGS = Path(__file__).parent / "dags_celery"
BURST = 200
# Recovery from a dead worker in seconds, not Airflow's five minutes nor mlwf's one: tasks
# heartbeat every [workers] min_heartbeat_interval (5 s), so 20 s is four missed beats.
RECOVERY = {
    "task_instance_heartbeat_timeout": "20",
    "task_instance_heartbeat_timeout_detection_interval": "2",
}


class CeleryInstance:
    """A running team instance on the CeleryExecutor, its database URL and a REST client."""

    def __init__(self, instance: Instance, database_url: str) -> None:
        self.instance = instance
        self.database_url = database_url
        self.api = AirflowApi.for_instance(instance, timeout=60)


@contextmanager
def celery_instance(
    hint: str,
    broker: str,
    *,
    workers: int,
    tmp_path_factory: pytest.TempPathFactory,
    airflow_config: Mapping[str, Mapping[str, str]] | None = None,
    queues: list[str] | None = None,
) -> Iterator[CeleryInstance]:
    """Run a team instance from a spec on a throwaway PostgreSQL database (``broker`` as in a spec)."""
    root = tmp_path_factory.mktemp(hint)
    with throwaway_database("postgresql", hint) as url:
        config: dict[str, dict[str, str]] = {
            "core": {"max_active_tasks_per_dag": "64"},
            "scheduler": dict(RECOVERY),
            "dag_processor": {"refresh_interval": "10"},
        }
        for section, values in (airflow_config or {}).items():
            config.setdefault(section, {}).update(values)
        spec: dict[str, Any] = {
            "name": hint.replace("_", "-"),
            "database": {"url": url.replace("+psycopg", "")},
            "executor": "celery",
            "celery": {
                "broker": broker,
                "workers": workers,
                "concurrency": 8,
                **({"queues": queues} if queues else {}),
            },
            "dag_folders": [str(DAGS)],
            "api": {"port": free_port()},
            "airflow_config": config,
        }
        instance = Instance(parse_spec(spec), home=root / "home")
        instance.start()
        try:
            instance.wait_healthy(timeout=600)
            running = CeleryInstance(instance, url)
            try:
                yield running
            finally:
                running.api.close()
        finally:
            instance.stop()


@pytest.fixture(scope="module")
def database_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CeleryInstance]:
    """PostgreSQL metadata database as the broker, two workers."""
    with celery_instance(
        "celery_db_broker", "database", workers=2, tmp_path_factory=tmp_path_factory
    ) as instance:
        yield instance


def test_burst_runs_every_task_exactly_once(
    database_broker: CeleryInstance, tmp_path: Path
) -> None:
    """Issue 11: a burst of 200 mapped tasks on the database broker runs each task exactly once."""
    api = database_broker.api
    started = time.monotonic()
    run_id = api.trigger("celery_burst", {"marker_dir": str(tmp_path), "n": BURST})
    state = api.wait_run("celery_burst", run_id, timeout=1500)
    took = time.monotonic() - started
    lines = (tmp_path / "log").read_text().splitlines()
    executions = Counter(line.split()[0] for line in lines)
    files = {path.name for path in tmp_path.iterdir() if path.name != "log"}
    expected = {f"celery_burst__{run_id}__touch__{index}" for index in range(BURST)}
    assert state == "success"
    assert files == expected
    assert set(executions) == expected
    assert [name for name, count in executions.items() if count != 1] == []
    assert {line.split()[1] for line in lines} == {"1"}  # no retry hid a lost task
    workers = Counter(line.split()[2] for line in lines)
    print(f"{BURST} tasks in {took:.0f} s; per worker {dict(workers)}")


def test_killed_worker_task_is_retried_on_the_other_worker(
    database_broker: CeleryInstance, tmp_path: Path
) -> None:
    """Issue 11: a task whose worker is SIGKILLed mid-run is retried and succeeds on the other worker."""
    api = database_broker.api
    log = tmp_path / "log"
    run_id = api.trigger("celery_kill", {"marker_dir": str(tmp_path), "sleep": 600})
    first = poll(
        lambda: (log.read_text().split() or None) if log.exists() else None,
        300,
        "the first try to start",
    )
    assert first[0] == "1", first
    victim = first[1]
    # The try runs: the api-server reads its log from the instance's log server (a thread of
    # the api-server's process), with a JWT Airflow signs: both sources are named, no error.
    port = database_broker.instance.config.log_server_port
    log_text = api.task_log("celery_kill", run_id, "long_first_try")
    assert f"http://127.0.0.1:{port}/log/dag_id=celery_kill/" in log_text, log_text
    assert "Could not read served logs" not in log_text, log_text
    assert database_broker.instance.kill_component(victim)
    killed_at = time.monotonic()
    assert api.wait_run("celery_kill", run_id, timeout=300) == "success"
    recovered_in = time.monotonic() - killed_at
    lines = log.read_text().splitlines()
    survivor = next(name for name in ("worker-1", "worker-2") if name != victim)
    assert lines == [f"1 {victim} started", f"2 {survivor} started", f"2 {survivor} done"]
    (ti,) = api.task_instances("celery_kill", run_id)
    assert ti["try_number"] == 2
    print(f"killed {victim}; try 2 succeeded on {survivor} {recovered_in:.1f} s later")


def test_kombu_tables_keep_only_fetched_messages(database_broker: CeleryInstance) -> None:
    """Issue 11: every message the workers fetched stays as an invisible kombu_message row, none visible."""
    engine = sa.create_engine(database_broker.database_url)
    try:
        with engine.connect() as conn:
            rows = dict(
                conn.execute(
                    sa.text("SELECT visible, count(*) FROM kombu_message GROUP BY visible")
                )
                .tuples()
                .all()
            )
    finally:
        engine.dispose()
    assert rows.get(True, 0) == 0
    assert rows.get(False, 0) >= 1


def _smoke(instance: CeleryInstance) -> None:
    api = instance.api
    run_id = api.trigger("celery_smoke")
    assert api.wait_run("celery_smoke", run_id, timeout=300) == "success"
    assert api.xcom("celery_smoke", run_id, "consume", "return_value") == 42


def test_redis_broker_smoke(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Issue 11: with a Redis broker (its own key prefix) a two-task DAG succeeds on Celery."""
    redis = pytest.importorskip("redis")
    client = redis.Redis(host="127.0.0.1", port=6379)
    try:
        client.ping()
    except redis.RedisError as err:
        require_service("redis", f"no Redis at 127.0.0.1:6379: {err}")
    prefix = f"mlwf-test-{uuid.uuid4().hex[:12]}:"
    extra = {"celery_broker_transport_options": {"global_keyprefix": prefix}}
    try:
        with celery_instance(
            "celery_redis",
            "redis://127.0.0.1:6379/0",
            workers=1,
            tmp_path_factory=tmp_path_factory,
            airflow_config=extra,
        ) as instance:
            _smoke(instance)
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


def test_rabbitmq_broker_smoke(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Issue 11: with a RabbitMQ broker (its own queue) a two-task DAG succeeds on Celery."""
    from kombu import Connection

    url = "amqp://guest:guest@127.0.0.1:5672//"
    try:
        with Connection(url, connect_timeout=5) as probe:
            probe.ensure_connection(max_retries=1)
    except Exception as err:
        require_service("rabbitmq", f"no RabbitMQ at 127.0.0.1:5672: {err}")
    queue = f"mlwf-test-{uuid.uuid4().hex[:12]}"
    try:
        with celery_instance(
            "celery_rabbitmq",
            url,
            workers=1,
            tmp_path_factory=tmp_path_factory,
            queues=[queue],
        ) as instance:
            _smoke(instance)
    finally:
        with Connection(url) as conn, suppress(Exception):
            channel = conn.channel()
            channel.queue_delete(queue)
            channel.exchange_delete(queue)
