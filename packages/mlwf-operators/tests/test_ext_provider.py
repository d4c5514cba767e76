"""The provider metadata: what Airflow's ProvidersManager registers from it, and the version gate."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap

from airflow.providers_manager import ProvidersManager
from mlwf_operators.get_provider_info import get_provider_info

CONN_TYPES = {"mlwf_hdfs", "mlwf_jira", "mlwf_jenkins", "mlwf_mlflow"}


def test_every_declared_module_and_hook_class_imports() -> None:
    """Each module listed under hooks/operators/sensors imports, and each hook class has its conn_type."""
    info = get_provider_info()
    for section in ("hooks", "operators", "sensors"):
        for entry in info[section]:
            for module in entry["python-modules"]:
                importlib.import_module(module)
    for conn in info["connection-types"]:
        module, _, name = conn["hook-class-name"].rpartition(".")
        hook = getattr(importlib.import_module(module), name)
        assert hook.conn_type == conn["connection-type"]
        assert hook.hook_name == conn["hook-name"]


def test_providers_manager_registers_hooks_and_form_fields() -> None:
    """Airflow's ProvidersManager lists the provider, its four connection types and their form fields."""
    manager = ProvidersManager()
    assert manager.providers["mlwf-operators"].version == get_provider_info()["versions"][0]
    hooks = {k: v for k, v in manager.hooks.items() if k in CONN_TYPES}
    assert {k: v.package_name for k, v in hooks.items() if v} == dict.fromkeys(
        CONN_TYPES, "mlwf-operators"
    )
    assert manager.field_behaviours["mlwf_jenkins"]["relabeling"]["password"] == "API token"
    assert "extra__mlwf_jira__token" in manager.connection_form_widgets


def test_too_old_airflow_is_refused_with_a_clear_message() -> None:
    """Under an Airflow reporting version 3.2, importing the hooks fails naming the needed version."""
    code = textwrap.dedent(
        """
        import airflow
        airflow.__version__ = "3.2.1"
        try:
            import mlwf_operators.hooks
        except RuntimeError as error:
            print(error)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert "mlwf-operators needs Apache Airflow 3.3 or newer" in result.stdout
    assert "this environment has Airflow 3.2.1" in result.stdout
