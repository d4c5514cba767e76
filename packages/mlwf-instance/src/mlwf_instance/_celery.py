"""The database broker's URLs, the Airflow settings that recover a killed worker, and housekeeping.

Cheap to import (no Airflow, no SQLAlchemy until :func:`purge_consumed_messages` runs), so the
instance runtime can use it while it writes an instance's configuration. The Celery
configuration itself is :data:`mlwf_instance._celery_config.CELERY_CONFIG`.

kombu's SQLAlchemy transport stores each published message as a row of ``kombu_message``. A
worker that fetches a message sets its ``visible`` column to false and keeps the message in
memory until the task is acknowledged; acknowledging deletes nothing, and an invisible row is
never read again (a worker that shuts down cleanly publishes its unacknowledged messages anew,
as new rows; a killed worker's messages are simply lost, and Airflow's task heartbeat timeout
retries their tasks). So invisible rows are dead weight that grows by one row per task, and
deleting them is safe at any time: :func:`purge_consumed_messages`, which a team instance runs
at every start and then every :data:`PURGE_INTERVAL` (:class:`PeriodicPurge`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: Broker URL prefixes of kombu's SQLAlchemy transport.
DATABASE_BROKER_PREFIXES = ("sqla+", "sqlalchemy+")
#: kombu's default table names (``queue_tablename`` / ``message_tablename`` transport options).
MESSAGE_TABLE = "kombu_message"
#: Driverless dialect → the driver mlwf-instance's extras install.
_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}

#: Airflow options of a Celery instance that make a killed worker's tasks run again within about a
#: minute (Airflow's defaults take five): a task heartbeats every ``[workers]
#: min_heartbeat_interval`` (5 s), so 60 s is twelve missed beats, room for a loaded machine; a
#: killed attempt is then failed and, with a retry left, queued again for another worker.
#: ``default_task_retries = 1`` gives every task that retry unless it sets its own ``retries``.
RECOVERY_OPTIONS: dict[str, dict[str, str]] = {
    "scheduler": {
        "task_instance_heartbeat_timeout": "60",
        "task_instance_heartbeat_timeout_detection_interval": "5",
        # A message a worker fetched and died with before its task started: queued → retried.
        "task_queued_timeout": "300",
        "task_queued_timeout_check_interval": "30",
    },
    "core": {"default_task_retries": "1"},
    # A worker's calls to the execution API time out after 5 s by default; on a saturated
    # machine the first one (starting the task) timed out five times and the task failed (seen).
    "workers": {"execution_api_timeout": "30"},
}


def is_database_broker(broker_url: str) -> bool:
    """Return whether ``broker_url`` selects kombu's SQLAlchemy transport."""
    return broker_url.startswith(DATABASE_BROKER_PREFIXES)


def with_driver(url: str) -> str:
    """Return the SQLAlchemy ``url`` with mlwf's driver when it names none (``mysql://`` → pymysql)."""
    scheme, sep, rest = url.partition("://")
    if not sep or "+" in scheme:
        return url
    return f"{_DRIVERS.get(scheme, scheme)}://{rest}"


def database_broker_url(sql_alchemy_conn: str) -> str:
    """Return the broker URL of kombu's SQLAlchemy transport on the database ``sql_alchemy_conn``."""
    return "sqla+" + with_driver(sql_alchemy_conn)


def purge_consumed_messages(broker_url: str, *, message_table: str = MESSAGE_TABLE) -> int:
    """Delete the messages workers have fetched from the database broker; return how many.

    ``broker_url`` is the ``sqla+<database URL>`` broker URL. Messages still waiting for a
    worker (visible) are kept. A broker whose table does not exist yet (no worker ever
    connected) has nothing to purge.
    """
    if not is_database_broker(broker_url):
        raise ValueError(
            f"[celery] broker_url is not a database broker (sqla+…): {broker_url.split('://')[0]}://…"
        )
    import sqlalchemy as sa

    engine = sa.create_engine(with_driver(broker_url.partition("+")[2]))
    try:
        if not sa.inspect(engine).has_table(message_table):
            return 0
        table = sa.Table(message_table, sa.MetaData(), autoload_with=engine)
        with engine.begin() as conn:
            result = conn.execute(sa.delete(table).where(table.c.visible.is_(False)))
            return int(result.rowcount)
    finally:
        engine.dispose()


#: Seconds between two purges of consumed messages while a team instance runs (besides the
#: purge at every start): one row per task, so an hour keeps the table small on a busy instance.
PURGE_INTERVAL = 3600.0


class PeriodicPurge:
    """Runs :func:`purge_consumed_messages` in a background thread every ``interval`` seconds.

    :meth:`tick` is called from the instance's watch loop: it never blocks and never raises (a
    database that is briefly unreachable must not stop the instance); results and failures go
    to ``output``, through ``mask`` (the broker URL holds the database password).
    """

    def __init__(
        self,
        broker_url: str,
        output: Callable[[str], None],
        mask: Callable[[str], str],
        interval: float = PURGE_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Purge ``broker_url`` every ``interval`` s from now on (the start purged already)."""
        self.broker_url = broker_url
        self.output = output
        self.mask = mask
        self.interval = interval
        self.clock = clock
        self.due = clock() + interval
        self.thread: threading.Thread | None = None

    def tick(self) -> bool:
        """Start a purge if one is due and none runs; return whether one started."""
        if self.clock() < self.due or (self.thread is not None and self.thread.is_alive()):
            return False
        self.due = self.clock() + self.interval
        self.thread = threading.Thread(target=self._purge, name="mlwf-broker-purge", daemon=True)
        self.thread.start()
        return True

    def _purge(self) -> None:
        try:
            deleted = purge_consumed_messages(self.broker_url)
        except Exception as err:  # any driver error: reported, retried at the next interval
            self.output(f"database broker: purging consumed messages failed: {self.mask(str(err))}")
            return
        if deleted:
            self.output(f"database broker: deleted {deleted} consumed message row(s)")
