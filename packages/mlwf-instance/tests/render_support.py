"""Shared by the ``test_render*`` modules: example specs and a strict Kubernetes model loader.

The official client's ``ApiClient.deserialize`` ignores keys it does not know, so a misspelt
field (``contaners``) would load silently. :func:`load_strict` walks the model classes'
``openapi_types`` and ``attribute_map`` itself: an unknown key, a value of the wrong type or a
missing required field raises :class:`ManifestError` naming the path.
"""

from __future__ import annotations

import datetime
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes.client.models as k8s_models
from mlwf_instance._render_model import HELM_CHART_VERSION
from mlwf_instance._spec import InstanceSpec, load_spec, parse_spec

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "instances"

#: A known secret value per kind of secret reference; none may appear in any rendered file.
KNOWN_SECRETS = {
    "literal": "Lit3ral-Secret-Value-4242",
    "env": "Env-Secret-Value-9191",
    "inline_db": "Inline-Db-Password-7373",
    "inline_broker": "Inline-Broker-Password-5656",
    "keytab_path": "/very/secret/keytab-path-3131.keytab",
    "ldap": "Ldap-Bind-Password-8080",
}

#: Specs built here until the spec helper's examples/instances/*.json are merged.
SPECS: dict[str, dict[str, Any]] = {
    "team-postgres": {
        "name": "recsys",
        "service_account": "svc-recsys",
        "groups": {"admin": ["recsys-admins"], "users": ["recsys"]},
        "database": {
            "url": "postgresql://recsys@db.example.com/recsys_airflow",
            "password": {"env": "RECSYS_DB_PASSWORD"},
        },
        "executor": "celery",
        "celery": {"workers": 3, "concurrency": 8, "queues": ["default", "gpu"]},
        "resources": {
            "worker": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}},
            "api_server": {"requests": {"cpu": "250m", "memory": "1Gi"}},
        },
        "dag_folders": ["dags", {"path": "more/pipelines", "name": "pipelines"}],
    },
    "team-mariadb": {
        "name": "fraud",
        "database": {"url": "mariadb://fraud@mariadb.example.com:3306/fraud_airflow"},
        "executor": "celery",
        "celery": {"workers": 2},
    },
    "team-redis": {
        "name": "search",
        "database": {"url": "postgresql://search@db.example.com/search"},
        "executor": "celery",
        "celery": {"broker": "redis://redis.example.com:6379/0", "workers": 4},
        "metrics": {"port": 9112},
    },
    "team-amqp-kerberos": {
        "name": "vision",
        "service_account": "vision-airflow",
        "database": {"url": "postgresql://vision@db.example.com/vision"},
        "executor": "celery",
        "celery": {"broker": "amqp://vision@rabbit.example.com:5672/vision", "workers": 1},
        "kerberos": {"principal": "vision@EXAMPLE.COM", "keytab": {"file": "vision.keytab"}},
        "groups": {"admin": ["vision-admins"], "users": ["vision"]},
        "ldap": {
            "url": "ldaps://ldap.example.com",
            "user_base": "ou=people,dc=example,dc=com",
            "group_base": "ou=groups,dc=example,dc=com",
            "bind_dn": "cn=vision-airflow,ou=services,dc=example,dc=com",
            "bind_password": {"env": "VISION_LDAP_PASSWORD"},
        },
    },
    "team-local-executor": {
        "name": "small",
        "database": {"url": "mysql://small@mysql.example.com/small"},
        "executor": "local",
        "resources": {"scheduler": {"limits": {"cpu": "2", "memory": "3Gi"}}},
    },
}


def built_spec(name: str, base: Path) -> InstanceSpec:
    """Return one of :data:`SPECS`, its relative paths made absolute against ``base``."""
    from mlwf_instance._spec import rebase_spec

    return rebase_spec(parse_spec(SPECS[name], name), base)


def example_specs() -> dict[str, InstanceSpec]:
    """Return every ``examples/instances/*.json``, loaded (there must be some)."""
    specs = {path.stem: load_spec(path) for path in sorted(EXAMPLES.glob("*.json"))}
    assert specs, f"no example specs in {EXAMPLES}"
    return specs


class ManifestError(AssertionError):
    """A manifest does not fit the Kubernetes API model (the message names the path)."""


#: kind → (apiVersion, model class) of every kind the renderer writes.
KINDS = {
    "ServiceAccount": ("v1", k8s_models.V1ServiceAccount),
    "ConfigMap": ("v1", k8s_models.V1ConfigMap),
    "Secret": ("v1", k8s_models.V1Secret),
    "Service": ("v1", k8s_models.V1Service),
    "PersistentVolumeClaim": ("v1", k8s_models.V1PersistentVolumeClaim),
    "Deployment": ("apps/v1", k8s_models.V1Deployment),
    "StatefulSet": ("apps/v1", k8s_models.V1StatefulSet),
    "Job": ("batch/v1", k8s_models.V1Job),
}

# Both spellings of the client's type strings: ``list[X]``/``dict(str, X)`` (older releases) and
# ``List[X]``/``Dict[str, X]`` (pydantic models, kubernetes>=35).
_LIST = re.compile(r"^[Ll]ist\[(.+)\]$")
_DICT = re.compile(r"^(?:dict\((\w+), (.+)\)|Dict\[(\w+), (.+)\])$")


def _load(value: Any, kind: str, path: str) -> Any:
    """Return ``value`` loaded as the client type ``kind`` (``str``, ``list[V1Container]``, …)."""
    if (match := _LIST.match(kind)) is not None:
        if not isinstance(value, list):
            raise ManifestError(f"{path}: expected a list, got {type(value).__name__}")
        return [_load(item, match.group(1), f"{path}[{i}]") for i, item in enumerate(value)]
    if (match := _DICT.match(kind)) is not None:
        if not isinstance(value, dict):
            raise ManifestError(f"{path}: expected a mapping, got {type(value).__name__}")
        return {
            str(key): _load(item, match.group(2) or match.group(4), f"{path}.{key}")
            for key, item in value.items()
        }
    simple: dict[str, tuple[type, ...]] = {
        "str": (str,),
        "int": (int,),
        "float": (int, float),
        "bool": (bool,),
        "datetime": (str, datetime.datetime),
        "date": (str, datetime.date),
    }
    if kind in simple:
        wrong_bool = kind in ("int", "float") and isinstance(value, bool)
        if not isinstance(value, simple[kind]) or wrong_bool:
            raise ManifestError(f"{path}: expected {kind}, got {type(value).__name__} {value!r}")
        return value
    if kind == "object":  # IntOrString and free-form fields
        if not isinstance(value, (str, int, dict, list)) or isinstance(value, bool):
            raise ManifestError(f"{path}: expected a string or number, got {value!r}")
        return value
    model = getattr(k8s_models, kind, None)
    if model is None:
        raise ManifestError(f"{path}: the client has no model {kind}")
    return load_model(value, model, path)


def load_model(document: Any, model: type, path: str = "") -> Any:
    """Return ``document`` as an instance of the client's ``model``, refusing unknown fields."""
    if not isinstance(document, dict):
        raise ManifestError(f"{path or '(top)'}: expected a mapping for {model.__name__}")
    by_json_key = {json_key: attr for attr, json_key in model.attribute_map.items()}
    kwargs = {}
    for key, value in document.items():
        where = f"{path}.{key}" if path else key
        attr = by_json_key.get(key)
        if attr is None:
            raise ManifestError(f"{where}: unknown field of {model.__name__}")
        kwargs[attr] = _load(value, model.openapi_types[attr], where)
    try:
        # The client checks required fields here (pydantic models since kubernetes 35).
        return model(**kwargs)
    except ValueError as err:
        raise ManifestError(f"{path or '(top)'}: {model.__name__}: {err}") from None


def load_strict(manifest: dict[str, Any]) -> Any:
    """Return a manifest loaded into its kind's model class; ManifestError on any misfit."""
    kind = manifest.get("kind")
    if kind not in KINDS:
        raise ManifestError(f"kind: {kind!r} is not one the renderer writes")
    api_version, model = KINDS[kind]
    if manifest.get("apiVersion") != api_version:
        raise ManifestError(f"apiVersion: {manifest.get('apiVersion')!r}, expected {api_version}")
    return load_model(manifest, model)


HELM_SCHEMA = (
    Path(__file__).parent / "data" / f"helm-chart-{HELM_CHART_VERSION}" / "values.schema.json"
)


@cache
def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(HELM_SCHEMA.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _unknown_keys(value: Any, node: dict[str, Any], path: str) -> list[str]:
    """Return keys of ``value`` the schema ``node`` does not define, also where it allows extras.

    The chart's schema leaves some objects open (the top level, ``kerberos``): Helm would
    silently ignore a misspelt key there, so a key the schema never names is an error here.
    """
    schema = node
    if "$ref" in schema:
        target = _validator().schema
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        schema = target
    found: list[str] = []
    if isinstance(value, dict) and "properties" in schema:
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if key not in schema["properties"]:
                found.append(f"{where}: not a key of the chart's values")
            else:
                found += _unknown_keys(item, schema["properties"][key], where)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            found += _unknown_keys(item, schema["items"], f"{path}[{index}]")
    return found


def helm_schema_errors(values: dict[str, Any]) -> list[str]:
    """Return every error of ``values`` against the chart's values.schema.json, unknown keys included."""
    found = [
        f"{'.'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in _validator().iter_errors(values)
    ]
    return found + _unknown_keys(values, _validator().schema, "")
