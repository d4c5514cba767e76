"""This package's defaults on an mlwf instance (entry point group ``mlwf.instance.defaults``).

An mlwf instance keeps the generated DAG files of constructor instances in a DAG bundle of its
own home, never in a team's DAG folder (often a source checkout): ``[mlwf_constructors]
instances_folder`` and ``bundle_name`` point there. Imports nothing: mlwf-instance calls
:func:`instance_defaults` with a read-only context (see docs/mlwf-instance/defaults.md).
"""

from __future__ import annotations

from typing import Any


def instance_defaults(context: Any) -> dict[str, dict[str, dict[str, str]]]:
    """Return the ``[mlwf_constructors]`` options of the instance described by ``context``."""
    return {
        "airflow_config": {
            "mlwf_constructors": {
                "instances_folder": str(context.constructed_folder),
                "bundle_name": str(context.constructed_bundle),
            }
        }
    }
