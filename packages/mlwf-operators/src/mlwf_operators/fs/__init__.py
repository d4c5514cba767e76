"""Airflow filesystems (``ObjectStoragePath`` schemes) that mlwf-operators registers.

Each module holds ``schemes`` and ``get_fs(conn_id, storage_options)``, the protocol Airflow's
``airflow.sdk.io`` reads from the ``filesystems`` list of :mod:`mlwf_operators.get_provider_info`.
"""
