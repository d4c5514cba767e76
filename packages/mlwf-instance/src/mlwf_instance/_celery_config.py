"""Celery configuration of an mlwf instance, loaded by Airflow's Celery provider.

An instance sets ``[celery] celery_config_options = mlwf_instance._celery_config.CELERY_CONFIG``.
:data:`CELERY_CONFIG` is Airflow's own default (``DEFAULT_CELERY_CONFIG`` of the Celery
provider, built from the instance's ``[celery]`` options) with these changes:

- Tasks are acknowledged late and a worker reserves one message per pool slot
  (``task_acks_late``, ``worker_prefetch_multiplier = 1``), whatever ``[celery]`` says: a killed
  worker strands only the tasks it was running, and Airflow's task heartbeat timeout retries them.
- On kombu's SQLAlchemy transport (broker URL ``sqla+<database URL>``, the instance's own
  database) the transport polls the message table every ``[mlwf_instance] celery_poll_interval``
  seconds (default 0.1) instead of kombu's 1 s, which would add about a second to every task.
  kombu takes the interval only from its transport class: every broker transport option,
  ``polling_interval`` included, is handed to ``sqlalchemy.create_engine``, which refuses the
  ones it does not know. So importing this module sets the class attribute
  ``kombu.transport.sqlalchemy.Transport.polling_interval`` (its one side effect, and only
  for a database broker), and the options that are not engine arguments are moved out of
  ``broker_transport_options`` (``polling_interval`` becomes the interval, the rest is dropped).
- On PostgreSQL, idle workers wait for a ``NOTIFY`` of a new message between two polls and
  fetch it at once (:mod:`mlwf_instance._broker_wakeup`); the polling stays as the fallback.
- Each worker imports the task supervisor's modules (:data:`WORKER_PRELOAD`) before it forks
  its pool, next to the modules Airflow preloads (Celery's ``import_modules`` signal; Airflow's
  receiver then freezes the garbage collector): a pool process that runs its first task no longer imports them
  (measured: 50 to 75 ms of the 0.2 s extra latency of a pool process's first task).
- A database broker or result backend URL without a driver gets the one mlwf installs
  (``postgresql+psycopg``, ``mysql+pymysql``); SQLAlchemy would pick ``mysqldb`` for MySQL.

The result backend is Airflow's default: the metadata database (``db+<sql_alchemy_conn>``).
"""

from __future__ import annotations

import importlib
import logging
import math
from collections.abc import Mapping
from typing import Any

from airflow.configuration import conf
from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
from celery.signals import import_modules  # type: ignore[import-untyped]

from mlwf_instance._broker_wakeup import enable_wakeup
from mlwf_instance._celery import is_database_broker, with_driver
from mlwf_instance._database import database_kind
from mlwf_instance._errors import CeleryConfigError as CeleryConfigError

log = logging.getLogger(__name__)

#: Airflow option (section, key) of the database broker's polling interval in seconds.
POLL_INTERVAL_OPTION = ("mlwf_instance", "celery_poll_interval")
#: Default polling interval of the database broker, in seconds.
DEFAULT_POLL_INTERVAL = 0.1
#: Transport options of other transports (Redis, SQS, …) that ``create_engine`` refuses.
_NOT_ENGINE_OPTIONS = frozenset(
    {
        "polling_interval",
        "visibility_timeout",
        "sentinel_kwargs",
        "fanout_prefix",
        "fanout_patterns",
        "global_keyprefix",
        "priority_steps",
        "sep",
        "queue_order_strategy",
        "region",
        "predefined_queues",
        "confirm_publish",
    }
)


#: Modules a Celery worker imports before forking its pool: what the task supervisor of
#: ``execute_workload`` imports on its first task and Airflow does not preload.
WORKER_PRELOAD = (
    "airflow.sdk.execution_time.supervisor",
    "airflow.sdk.definitions.connection",
)


def preload_worker_modules(*args: Any, **kwargs: Any) -> None:
    """Import :data:`WORKER_PRELOAD` in a starting worker (Celery's ``import_modules`` signal).

    Connected when Airflow's executor module loads this configuration, so before Airflow's own
    receiver, which freezes the garbage collector after its imports: these modules are then
    shared with the pool processes instead of copied into each.
    """
    for name in WORKER_PRELOAD:
        importlib.import_module(name)


import_modules.connect(preload_worker_modules)


def parse_poll_interval(value: object) -> float:
    """Return ``value`` as a polling interval in seconds (positive, at most 60), or raise."""
    section, key = POLL_INTERVAL_OPTION
    try:
        seconds = float(value)  # type: ignore[arg-type]  # str, int or float; others raise
    except (TypeError, ValueError):
        raise CeleryConfigError(
            f"[{section}] {key} must be a number of seconds, got {value!r}"
        ) from None
    if not math.isfinite(seconds) or not 0 < seconds <= 60:
        raise CeleryConfigError(f"[{section}] {key} must be > 0 and <= 60 seconds, got {value!r}")
    return seconds


def split_transport_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], float | None]:
    """Return the SQLAlchemy transport's usable options and a ``polling_interval`` found among them.

    Options that would make ``create_engine`` raise are dropped with a warning naming them.
    """
    kept: dict[str, Any] = {}
    interval: float | None = None
    for key, value in options.items():
        if key == "polling_interval":
            interval = parse_poll_interval(value)
        elif key in _NOT_ENGINE_OPTIONS:
            log.warning(
                "[celery_broker_transport_options] %s is ignored: kombu's SQLAlchemy transport "
                "would pass it to sqlalchemy.create_engine, which refuses it",
                key,
            )
        else:
            kept[key] = value
    return kept, interval


def build_celery_config(
    base: Mapping[str, Any], *, poll_interval: float
) -> tuple[dict[str, Any], float | None]:
    """Return mlwf's Celery configuration (``base``, Airflow's default, changed) and its poll interval.

    The interval is that of the database broker: ``poll_interval``, or a ``polling_interval``
    found in the broker transport options; None when the broker is not the database. Pure:
    nothing outside the result changes (:func:`apply_poll_interval` sets the interval).
    """
    config = dict(base)
    config["task_acks_late"] = True
    config["worker_prefetch_multiplier"] = 1
    broker_url = str(config.get("broker_url", ""))
    result_backend = str(config.get("result_backend", ""))
    if result_backend.startswith("db+"):
        config["result_backend"] = "db+" + with_driver(result_backend.removeprefix("db+"))
    if not is_database_broker(broker_url):
        return config, None
    prefix, _, url = broker_url.partition("+")
    config["broker_url"] = f"{prefix}+{with_driver(url)}"
    options, interval = split_transport_options(config.get("broker_transport_options") or {})
    config["broker_transport_options"] = options
    return config, poll_interval if interval is None else interval


def apply_poll_interval(seconds: float) -> None:
    """Set kombu's SQLAlchemy transport's polling interval (class attribute ``polling_interval``).

    Must run before the worker's broker connection is created: kombu reads it then.
    """
    # Imported only for a database broker (it needs SQLAlchemy); kombu ships no type information.
    from kombu.transport.sqlalchemy import Transport  # type: ignore[import-untyped]

    Transport.polling_interval = seconds


def _configured_poll_interval() -> float:
    section, key = POLL_INTERVAL_OPTION
    return parse_poll_interval(conf.get(section, key, fallback=str(DEFAULT_POLL_INTERVAL)))


_config, _interval = build_celery_config(
    DEFAULT_CELERY_CONFIG, poll_interval=_configured_poll_interval()
)
#: The instance's Celery configuration (``[celery] celery_config_options`` points here).
CELERY_CONFIG: dict[str, Any] = _config
#: The database broker's polling interval in effect (None: the broker is not the database).
POLL_INTERVAL: float | None = _interval
if POLL_INTERVAL is not None:
    apply_poll_interval(POLL_INTERVAL)
    if database_kind(str(CELERY_CONFIG["broker_url"]).partition("+")[2]) == "postgresql":
        # Idle workers wake at the NOTIFY of a new message instead of the next poll.
        enable_wakeup()
