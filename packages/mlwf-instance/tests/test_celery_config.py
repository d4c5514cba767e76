"""mlwf's Celery configuration: Airflow's default plus late acks and a usable database broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection
from kombu.transport import sqlalchemy as kombu_sqla
from mlwf_instance._celery import database_broker_url, purge_consumed_messages
from mlwf_instance._celery_config import (
    WORKER_PRELOAD,
    CeleryConfigError,
    apply_poll_interval,
    build_celery_config,
    parse_poll_interval,
)

AIRFLOW_DEFAULT: dict[str, Any] = {
    "broker_url": "sqla+postgresql://u@127.0.0.1/db",
    "broker_transport_options": {},
    "result_backend": "db+mysql://u@127.0.0.1/db",
    "task_acks_late": False,
    "worker_prefetch_multiplier": 4,
    "worker_concurrency": 16,
}


@pytest.fixture
def restore_poll_interval() -> Iterator[None]:
    """Put kombu's class attribute back: other tests in the session use the default transport."""
    before = kombu_sqla.Transport.polling_interval
    yield
    kombu_sqla.Transport.polling_interval = before


def test_acks_late_and_one_message_per_slot_are_forced() -> None:
    """Issue 11: tasks are acknowledged late with prefetch multiplier 1, whatever [celery] says."""
    config, _ = build_celery_config(AIRFLOW_DEFAULT, poll_interval=0.1)
    assert config["task_acks_late"] is True
    assert config["worker_prefetch_multiplier"] == 1
    assert config["worker_concurrency"] == 16  # the rest of Airflow's default is kept


def test_database_broker_gets_the_poll_interval_and_drivers() -> None:
    """Issue 11: a database broker polls every poll_interval s; driverless URLs get mlwf's drivers."""
    config, interval = build_celery_config(AIRFLOW_DEFAULT, poll_interval=0.25)
    assert interval == 0.25
    assert config["broker_url"] == "sqla+postgresql+psycopg://u@127.0.0.1/db"
    assert config["result_backend"] == "db+mysql+pymysql://u@127.0.0.1/db"
    assert database_broker_url("mysql://root@127.0.0.1:3306/x") == (
        "sqla+mysql+pymysql://root@127.0.0.1:3306/x"
    )
    assert database_broker_url("postgresql+psycopg://p@h/x") == "sqla+postgresql+psycopg://p@h/x"


def test_transport_options_create_engine_refuses_are_moved_out() -> None:
    """Issue 11: polling_interval becomes the interval and visibility_timeout is dropped (sqla only)."""
    base = {
        **AIRFLOW_DEFAULT,
        "broker_transport_options": {
            "polling_interval": "0.5",
            "visibility_timeout": 86400,
            "pool_recycle": 3600,
        },
    }
    config, interval = build_celery_config(base, poll_interval=0.1)
    assert interval == 0.5
    assert config["broker_transport_options"] == {"pool_recycle": 3600}


def test_other_brokers_are_left_alone() -> None:
    """Issue 11: a Redis broker keeps its transport options and gets no database poll interval."""
    options = {"visibility_timeout": 86400}
    base = {**AIRFLOW_DEFAULT, "broker_url": "redis://127.0.0.1:6379/3"}
    base["broker_transport_options"] = options
    config, interval = build_celery_config(base, poll_interval=0.1)
    assert interval is None
    assert config["broker_url"] == "redis://127.0.0.1:6379/3"
    assert config["broker_transport_options"] == options


@pytest.mark.parametrize("value", ["fast", "0", "-1", "nan", "61", None])
def test_bad_poll_interval_names_the_option(value: object) -> None:
    """Issue 11: an invalid poll interval is refused with an error naming the Airflow option."""
    with pytest.raises(CeleryConfigError, match=r"\[mlwf_instance\] celery_poll_interval"):
        parse_poll_interval(value)


@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_round_trip_on_a_real_database(
    kind: str, request: pytest.FixtureRequest, restore_poll_interval: None
) -> None:
    """Issue 11: a message goes through kombu's SQLAlchemy transport with mlwf's options and interval."""
    url = request.getfixturevalue("postgres_url" if kind == "postgresql" else "mariadb_url")
    # A user's visibility_timeout (meant for Redis) would make create_engine raise TypeError.
    base = {
        **AIRFLOW_DEFAULT,
        "broker_url": database_broker_url(url),
        "broker_transport_options": {"visibility_timeout": 600},
    }
    config, interval = build_celery_config(base, poll_interval=0.05)
    assert interval is not None
    apply_poll_interval(interval)
    with Connection(
        config["broker_url"], transport_options=config["broker_transport_options"]
    ) as conn:
        assert conn.transport.polling_interval == 0.05
        queue = conn.SimpleQueue("mlwf-round-trip")
        queue.put({"task": "t1", "try": 1})
        message = queue.get(timeout=5)
        assert message.payload == {"task": "t1", "try": 1}
        message.ack()
        queue.close()


def test_airflow_celery_app_uses_the_config(postgres_url: str, tmp_path: os.PathLike[str]) -> None:
    """Issue 11: Airflow's Celery app, pointed at CELERY_CONFIG, acks late and polls the DB broker fast."""
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres_url,
        "AIRFLOW__CELERY__BROKER_URL": database_broker_url(postgres_url),
        "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "mlwf_instance._celery_config.CELERY_CONFIG",
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "600",
        "AIRFLOW__MLWF_INSTANCE__CELERY_POLL_INTERVAL": "0.2",
    }
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    script = (
        "import json\n"
        "from airflow.providers.celery.executors.celery_executor_utils import app\n"
        "with app.connection_for_read() as conn:\n"
        "    conn.ensure_connection(max_retries=1)\n"
        "    interval = conn.transport.polling_interval\n"
        "print(json.dumps({'acks_late': app.conf.task_acks_late,\n"
        "    'prefetch': app.conf.worker_prefetch_multiplier,\n"
        "    'options': dict(app.conf.broker_transport_options),\n"
        "    'backend': app.conf.result_backend.split('://')[0], 'interval': interval}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {
        "acks_late": True,
        "prefetch": 1,
        "options": {},
        "backend": "db+postgresql+psycopg",
        "interval": 0.2,
    }


def test_a_starting_worker_preloads_the_task_supervisor_before_the_gc_freeze(
    postgres_url: str, tmp_path: os.PathLike[str]
) -> None:
    """A worker imports the task supervisor before forking its pool, and before Airflow's gc.freeze.

    Celery sends ``import_modules`` once in a starting worker (``import_default_modules``); mlwf's
    receiver must run first so the supervisor's objects are frozen too (shared with the pool
    processes instead of copied into each by their garbage collections).
    """
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres_url,
        "AIRFLOW__CELERY__BROKER_URL": database_broker_url(postgres_url),
        "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "mlwf_instance._celery_config.CELERY_CONFIG",
    }
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    script = (
        "import gc, json, sys\n"
        "from airflow.providers.celery.executors.celery_executor_utils import app\n"
        "from mlwf_instance._celery_config import WORKER_PRELOAD\n"
        "before = [m for m in WORKER_PRELOAD if m in sys.modules]\n"
        "app.loader.import_default_modules()\n"
        "loaded = [m for m in WORKER_PRELOAD if m in sys.modules]\n"
        "tracked = {id(o) for o in gc.get_objects()}\n"
        "frozen = [m for m in loaded if id(vars(sys.modules[m])) not in tracked]\n"
        "print(json.dumps({'before': before, 'loaded': loaded, 'frozen': frozen,\n"
        "    'freeze_count': gc.get_freeze_count() > 0}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    preload = list(WORKER_PRELOAD)
    assert seen == {"before": [], "loaded": preload, "frozen": preload, "freeze_count": True}


@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_purge_deletes_fetched_messages_only(kind: str, request: pytest.FixtureRequest) -> None:
    """Issue 11: purging the database broker deletes fetched messages and keeps waiting ones."""
    url = request.getfixturevalue("postgres_url" if kind == "postgresql" else "mariadb_url")
    broker = database_broker_url(url)
    assert purge_consumed_messages(broker) == 0  # no table yet
    with Connection(broker) as conn:
        queue = conn.SimpleQueue("mlwf-purge")
        for number in range(3):
            queue.put({"n": number})
        acked = queue.get(timeout=5)
        acked.ack()
        unacked = queue.get(timeout=5)  # fetched, still held by this "worker"
        assert purge_consumed_messages(broker) == 2
        assert queue.qsize() == 1
        assert queue.get(timeout=5).payload == {"n": 2}
        assert unacked.payload == {"n": 1}
        queue.close()


def test_celery_instance_gets_the_recovery_defaults(tmp_path: Path) -> None:
    """Issue 11: a Celery spec's options carry mlwf's killed-worker recovery defaults; local ones do not."""
    from mlwf_instance._database import database_urls
    from mlwf_instance._spec import parse_spec
    from mlwf_instance._topology import spec_options

    urls = database_urls(
        "postgresql://u@127.0.0.1/team", password=None, sqlite_file=tmp_path / "x.db"
    )
    celery = spec_options(
        parse_spec(
            {
                "name": "team",
                "database": "postgresql://u@127.0.0.1/team",
                "executor": "celery",
                "dag_folders": [str(tmp_path)],
            }
        ),
        urls,
        None,
    )
    assert celery["scheduler"]["task_instance_heartbeat_timeout"] == "60"
    assert celery["core"]["default_task_retries"] == "1"
    assert celery["core"]["executor"] == "CeleryExecutor"
    assert celery["workers"]["execution_api_timeout"] == "30"
    # No stale-bundle cleanup process per worker: a spec's bundles are never versioned copies.
    assert celery["dag_processor"]["stale_bundle_cleanup_interval"] == "0"
    local = spec_options(
        parse_spec({"name": "team", "executor": "local", "dag_folders": [str(tmp_path)]}),
        urls,
        None,
    )
    assert "scheduler" not in local


def test_periodic_purge_runs_when_due_in_the_background_and_reports(
    postgres_url: str,
) -> None:
    """A running team instance purges consumed broker rows every interval, off its watch loop."""
    from mlwf_instance._celery import PeriodicPurge

    broker = database_broker_url(postgres_url)
    said: list[str] = []
    now = [0.0]
    purge = PeriodicPurge(broker, said.append, lambda t: t, interval=60, clock=lambda: now[0])
    with Connection(broker) as conn:
        queue = conn.SimpleQueue("mlwf-periodic")
        for number in range(3):
            queue.put({"n": number})
        for _ in range(2):
            queue.get(timeout=5).ack()
        assert not purge.tick()  # not due yet
        now[0] = 60.0
        assert purge.tick()
        assert purge.thread is not None
        purge.thread.join(timeout=30)
        assert said == ["database broker: deleted 2 consumed message row(s)"]
        assert not purge.tick()  # next one due at 120
        assert queue.qsize() == 1
        queue.close()


def test_periodic_purge_reports_a_failure_masked_and_never_raises() -> None:
    """An unreachable database is one masked line, not a crash of the instance."""
    from mlwf_instance._celery import PeriodicPurge

    said: list[str] = []
    broker = "sqla+postgresql://u:s3cret@127.0.0.1:1/nowhere"
    purge = PeriodicPurge(
        broker, said.append, lambda t: t.replace("s3cret", "***"), interval=0, clock=lambda: 1.0
    )
    assert purge.tick()
    assert purge.thread is not None
    purge.thread.join(timeout=30)
    assert len(said) == 1 and said[0].startswith(
        "database broker: purging consumed messages failed"
    )
    assert "s3cret" not in said[0]


@pytest.mark.parametrize("wakeup", [True, False])
def test_an_idle_consumer_on_postgresql_gets_a_message_at_once_with_the_wakeup(
    postgres_url: str, wakeup: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the NOTIFY trigger and the listening wait, a consumer polling every 5 s receives a
    message published while it waits within a fraction of a second; without them, at its next
    poll (the control run shows the test can tell the two apart)."""
    import threading
    import time

    from kombu.transport.sqlalchemy import Transport
    from mlwf_instance._broker import prepare_database_broker
    from mlwf_instance._broker_wakeup import _drain_events

    prepare_database_broker(postgres_url, ["wake"])
    monkeypatch.setattr(Transport, "polling_interval", 5.0)
    if wakeup:
        monkeypatch.setattr(Transport, "drain_events", _drain_events)
    broker = database_broker_url(postgres_url)
    received: list[float] = []
    with Connection(broker) as consumer_conn, Connection(broker) as producer_conn:
        consumer = consumer_conn.SimpleQueue("wake")
        producer = producer_conn.SimpleQueue("wake")

        def consume() -> None:
            message = consumer.get(timeout=20)
            received.append(time.monotonic())
            message.ack()

        thread = threading.Thread(target=consume)
        thread.start()
        time.sleep(1.5)  # the consumer polled (empty) and now waits
        sent = time.monotonic()
        producer.put({"n": 1})
        thread.join(timeout=30)
        consumer.close()
        producer.close()
    assert received, "no message received"
    latency = received[0] - sent
    if wakeup:
        assert latency < 1.0, latency
    else:
        assert latency > 2.0, latency


def test_the_wakeup_listener_falls_back_to_sleeping_when_it_cannot_listen() -> None:
    """No reachable database for LISTEN: the wait still lasts the polling interval, never raises,
    and no new connection is tried for a minute."""
    import time

    from mlwf_instance._broker_wakeup import _Listener

    listener = _Listener("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    started = time.monotonic()
    listener.wait(0.3)
    assert 0.3 <= time.monotonic() - started < 5
    assert listener.connection is None
    assert listener.retry_at > time.monotonic() + 50
