"""Housekeeping of the database broker: kombu's SQLAlchemy transport never deletes a message.

kombu's SQLAlchemy transport stores each published message as a row of ``kombu_message``. A
worker that fetches a message sets its ``visible`` column to false and keeps the message in
memory until the task is acknowledged; acknowledging deletes nothing, and an invisible row is
never read again (a worker that shuts down cleanly publishes its unacknowledged messages anew,
as new rows; a killed worker's messages are simply lost, and Airflow's task heartbeat timeout
retries their tasks). So invisible rows are dead weight that grows by one row per task, and
deleting them is safe at any time: :func:`purge_consumed_messages`.
"""

from __future__ import annotations

import sqlalchemy as sa

from mlwf_instance._celery_config import DATABASE_BROKER_PREFIXES, with_driver

#: kombu's default table names (``queue_tablename`` / ``message_tablename`` transport options).
MESSAGE_TABLE = "kombu_message"


def purge_consumed_messages(broker_url: str, *, message_table: str = MESSAGE_TABLE) -> int:
    """Delete the messages workers have fetched from the database broker; return how many.

    ``broker_url`` is the ``sqla+<database URL>`` broker URL. Messages still waiting for a
    worker (visible) are kept. A broker whose table does not exist yet (no worker ever
    connected) has nothing to purge.
    """
    if not broker_url.startswith(DATABASE_BROKER_PREFIXES):
        raise ValueError(
            f"[celery] broker_url is not a database broker (sqla+…): {broker_url.split('://')[0]}://…"
        )
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
