"""Prepare the database broker before any component starts: kombu's tables and queue rows.

kombu's SQLAlchemy transport creates its tables (``kombu_queue``, ``kombu_message``) and a
queue's row on first use, in every process, with no guard between processes: its
get-or-create catches only OperationalError. Two workers starting together on MariaDB then
both insert queue ``default`` and the second dies on the unique key (``IntegrityError 1062
Duplicate entry 'default' for key 'name'``, seen here); concurrent ``CREATE TABLE`` races the
same way. The instance therefore creates the tables and one row per queue once, from the
supervising process, before the scheduler and the workers start; afterwards every process
only finds them. On PostgreSQL it also installs the trigger that wakes idle workers when a
message arrives (:mod:`mlwf_instance._broker_wakeup`).
"""

from __future__ import annotations

from collections.abc import Sequence

from mlwf_instance._broker_wakeup import install_notify_trigger
from mlwf_instance._database import database_kind
from mlwf_instance._errors import BrokerSetupError as BrokerSetupError


def _install_wakeup(sync_url: str) -> None:
    """Add the NOTIFY trigger that wakes idle workers (see :mod:`mlwf_instance._broker_wakeup`)."""
    import sqlalchemy as sa

    engine = sa.create_engine(sync_url)
    try:
        with engine.begin() as connection:
            install_notify_trigger(connection)
    finally:
        engine.dispose()


def prepare_database_broker(sync_url: str, queues: Sequence[str]) -> None:
    """Create kombu's tables and a row for each of ``queues`` in the database at ``sync_url``.

    Uses kombu's own channel (same table definitions as the workers). Idempotent; raises
    BrokerSetupError (never showing the URL, which holds the password).
    """
    from kombu import Connection  # type: ignore[import-untyped]  # kombu ships no types
    from kombu.transport.sqlalchemy import Channel  # type: ignore[import-untyped]
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with Connection(f"sqla+{sync_url}") as connection:
            channel = connection.channel()
            try:
                for name in queues:
                    channel._get_or_create(name)
            finally:
                channel.close()
        if database_kind(sync_url) == "postgresql":
            _install_wakeup(sync_url)
    except SQLAlchemyError as err:
        orig = getattr(err, "orig", None) or err
        first = str(orig).splitlines()[0] if str(orig) else ""
        raise BrokerSetupError(
            f"cannot create the Celery broker's tables in the metadata database: "
            f"{type(orig).__name__}: {first}"
        ) from None
    finally:
        # kombu caches one engine per URL for the life of the process: ours is done with it.
        cached = Channel._engines.pop(sync_url, None)
        if cached is not None:
            cached[0].dispose()
