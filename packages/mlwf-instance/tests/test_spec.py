"""InstanceSpec: defaults, every error at once with its JSON path, bounds, secrets never shown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mlwf_instance._spec import (
    MAX_DEPTH,
    MAX_SECRET_BYTES,
    MAX_SPEC_BYTES,
    OWNED_AIRFLOW_OPTIONS,
    InstanceSpec,
    SecretRef,
    SpecError,
    default_home,
    load_spec,
    parse_spec,
    rebase_spec,
    spec_json_schema,
)

SECRET = "hunter2-Xq9"


def errors_of(document: object) -> dict[str, str]:
    """Return the errors of an invalid document as {json_path: message}."""
    with pytest.raises(SpecError) as caught:
        parse_spec(document, "t.json")
    return dict(caught.value.errors)


def write(tmp_path: Path, document: Any, name: str = "spec.json") -> Path:
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def test_a_name_alone_is_a_complete_spec() -> None:
    """Issue 11: every field but name has a default: sqlite, local executor, DAG folder "dags"."""
    spec = parse_spec({"name": "recsys"})
    assert spec.database.kind == "sqlite"
    assert spec.executor == "local"
    assert [str(f.path) for f in spec.dag_folders] == ["dags"]
    assert spec.celery.broker == "database" and spec.celery.workers == 2
    assert spec.api.port == 8080 and spec.metrics.enabled


def test_short_forms_of_database_dag_folders_and_secrets() -> None:
    """Issue 11: a URL string is a database, a path string a DAG folder, a string a literal secret."""
    spec = parse_spec(
        {
            "name": "ab",
            "database": "postgresql://u@db.example.com:5432/airflow",
            "dag_folders": ["a", {"path": "b", "name": "bee"}],
            "celery": {"broker": "redis://r:6379/0", "broker_password": {"env": "REDIS_PW"}},
        }
    )
    assert spec.database.kind == "postgresql"
    assert [(str(f.path), f.name) for f in spec.dag_folders] == [("a", None), ("b", "bee")]
    assert spec.celery.broker_kind == "redis"
    assert spec.celery.broker_password == SecretRef(env="REDIS_PW")
    assert parse_spec({"name": "ab", "database": "mariadb://u@h/d"}).database.kind == "mysql"


def test_every_error_is_reported_at_once_with_its_json_path() -> None:
    """Issue 11: a spec with many mistakes gets all of them, each named by its JSON path."""
    errors = errors_of(
        {
            "name": "Recsys",
            "executor": "celeri",
            "celery": {"wokers": 3, "broker": "kafka://k:9092", "queues": []},
            "database": {"url": "postgresql+psycopg://u@h/db"},
            "dag_folders": ["a", 5],
            "resources": {"worker": {"requests": {"gpu": "1", "cpu": "lots"}}},
            "api": {"port": 70000, "base_url": "ftp://x"},
            "groups": {"admin": "admins"},
            "kerberos": {"principal": "airflow"},
        }
    )
    assert errors == {
        "name": "lowercase letters, digits and dashes, 2 to 40 characters, starting with a "
        "letter and not ending with a dash",
        "executor": "must be 'local' or 'celery'",
        "celery.wokers": "unknown key (did you mean 'workers'?)",
        "celery.broker": 'kafka:// is not a broker: use "database", redis://… or amqp://…',
        "celery.queues": "needs at least 1 entry",
        "database.url": "give the URL without a driver (postgresql://…, not "
        "postgresql+psycopg://…): mlwf picks the drivers Airflow needs",
        "dag_folders[1]": 'must be a path string or {"path": …, "name": …}',
        "resources.worker.requests.gpu": "unknown key (expected 'cpu' or 'memory')",
        "resources.worker.requests.cpu": 'a Kubernetes quantity, e.g. "500m", "2", "1Gi"',
        "api.port": "must be at most 65535",
        "api.base_url": "must be an http:// or https:// URL",
        "groups.admin": "must be a list ([…])",
        "kerberos.principal": "a Kerberos principal: primary[/instance]@REALM",
        "kerberos.keytab": "required",
    }


def test_an_unknown_key_without_a_close_match_lists_the_known_keys() -> None:
    """Issue 11: an unknown top-level key names the keys that exist when no key is close."""
    message = errors_of({"name": "ab", "zzz": 1})["zzz"]
    assert message.startswith("unknown key (the keys here are: name, service_account, groups")
    assert errors_of({"name": "ab", "dag_folder": ["d"]}) == {
        "dag_folder": "unknown key (did you mean 'dag_folders'?)"
    }


def test_combinations_that_cannot_run_are_refused() -> None:
    """Issue 11: celery on sqlite, duplicate or reserved bundle names, clashing ports are errors."""
    assert errors_of({"name": "ab", "executor": "celery"}) == {
        "executor": '"celery" needs a server database (database: postgresql://… or mysql://…), '
        "not sqlite"
    }
    assert errors_of(
        {
            "name": "ab",
            "dag_folders": [
                {"path": "a", "name": "x"},
                {"path": "b", "name": "x"},
                "a",
                {"path": "c", "name": "mlwf-constructed"},
            ],
            "metrics": {"port": 8080},
        }
    ) == {
        "dag_folders[1].name": "dag_folders[0] has the same name",
        "dag_folders[2].path": "dag_folders[0] is the same folder",
        "dag_folders[3].name": "'mlwf-constructed' is reserved for the DAGs of constructor instances",
        "metrics.port": "the API server already listens on port 8080",
    }
    # Celery's autoscaler hangs workers on the database broker (seen: a burst never finished).
    autoscale = {"celery": {"Worker_Autoscale_cmd": "echo 4,1"}}
    assert errors_of(
        {
            "name": "ab",
            "database": "postgresql://u@h/d",
            "executor": "celery",
            "airflow_config": autoscale,
        }
    ) == {
        "airflow_config.celery.Worker_Autoscale_cmd": "Celery's autoscaler hangs the workers of "
        "the database broker (docs/mlwf-instance/operations.md, 'Scaling workers')"
    }
    for allowed in (
        {"executor": "celery", "celery": {"broker": "redis://r:6379/0"}},
        {"executor": "local"},
    ):
        parse_spec(
            {"name": "ab", "database": "postgresql://u@h/d", "airflow_config": autoscale, **allowed}
        )


def test_passwords_in_two_places_or_without_a_use_are_refused() -> None:
    """Issue 11: a password both in the URL and in password, on sqlite, or on the database broker is an error."""
    assert errors_of(
        {
            "name": "ab",
            "database": {"url": "postgresql://u:pw@h/d", "password": {"env": "P"}},
            "celery": {"broker_password": {"env": "B"}},
            "ldap": {"url": "ldap://l", "user_base": "u", "group_base": "g", "bind_password": "x"},
        }
    ) == {
        "database.password": "the URL carries a password too: give it in one place",
        "celery.broker_password": 'the "database" broker uses database.password',
        "ldap.bind_password": "given without bind_dn",
    }
    assert errors_of({"name": "ab", "database": {"password": {"env": "P"}}}) == {
        "database.password": "sqlite has no password: remove it"
    }


@pytest.mark.parametrize(
    ("option", "owner"),
    [
        ("core.executor", 'the spec\'s "executor" field'),
        ("database.sql_alchemy_conn", 'the spec\'s "database" field'),
        ("database.sql_alchemy_conn_cmd", 'the spec\'s "database" field'),
        ("celery.broker_url", 'the spec\'s "celery.broker" field'),
        ("celery.result_backend", 'the spec\'s "database" field (results are kept there)'),
        (
            "core.auth_manager",
            'the spec\'s "ldap" field (mlwf-auth with it, else SimpleAuthManager)',
        ),
        ("dag_processor.dag_bundle_config_list", 'the spec\'s "dag_folders" field'),
        ("core.fernet_key", "mlwf: a secret generated and kept in the instance home"),
        ("api.secret_key", "mlwf: a secret generated and kept in the instance home"),
        ("api_auth.jwt_secret_secret", "mlwf: a secret generated and kept in the instance home"),
        ("CORE.DAGS_FOLDER", 'the spec\'s "dag_folders" field'),
    ],
)
def test_airflow_config_refuses_options_the_spec_owns(option: str, owner: str) -> None:
    """Issue 11: an airflow_config option the spec sets is refused, naming the field that sets it."""
    section, key = option.split(".")
    assert errors_of({"name": "ab", "airflow_config": {section: {key: "x"}}}) == {
        f"airflow_config.{section}.{key}": f"set by {owner}"
    }


def test_airflow_config_takes_free_options_and_text_of_numbers() -> None:
    """Issue 11: options the spec does not own pass, numbers and booleans becoming Airflow's text."""
    spec = parse_spec(
        {
            "name": "ab",
            "airflow_config": {
                "core": {"parallelism": 8, "load_examples": False},
                "database": {"sql_alchemy_connect_args": "x.y"},
            },
        }
    )
    assert spec.airflow_config == {
        "core": {"parallelism": "8", "load_examples": "False"},
        "database": {"sql_alchemy_connect_args": "x.y"},
    }
    assert ("core", "executor") in OWNED_AIRFLOW_OPTIONS
    assert errors_of({"name": "ab", "airflow_config": {"a b": {}, "core": {"x-y": "1"}}}) == {
        'airflow_config["a b"]': "not a section name: letters, digits and single underscores "
        "(an Airflow option name)",
        'airflow_config.core["x-y"]': "not an option name: letters, digits and single "
        "underscores (an Airflow option name)",
    }


@pytest.mark.parametrize(
    "document",
    [
        {"name": "ab", "database": {"url": "postgresql://u@h/d", "password": 12345}},
        {"name": "ab", "database": {"url": "postgresql://u@h/d", "password": [SECRET]}},
        {
            "name": "ab",
            "database": {"url": "postgresql://u@h/d", "password": {"value": SECRET, "env": "X"}},
        },
        {"name": "ab", "database": {"url": "postgresql://u@h/d", "password": {"vaule": SECRET}}},
        {
            "name": "ab",
            "database": {"url": "postgresql://u@h/d", "password": "x" * (MAX_SECRET_BYTES + 1)},
        },
        {"name": "ab", "celery": {"broker": f"redis://u:{SECRET}@r:99999/0"}},
        {"name": "ab", "database": f"kafka://u:{SECRET}@h/d"},
        {"name": "ab", "database": {"url": f"postgresql+psycopg://u:{SECRET}@h/d"}},
        {"name": "ab", "airflow_config": {"core": {"fernet_key": SECRET}}},
    ],
)
def test_no_error_message_echoes_a_secret(document: dict[str, Any]) -> None:
    """Issue 11: a wrong-typed or misplaced secret is reported without its value."""
    with pytest.raises(SpecError) as caught:
        parse_spec(document)
    assert "12345" not in str(caught.value)
    assert SECRET not in str(caught.value)
    assert "xxxxxxxx" not in str(caught.value)


def test_repr_of_a_spec_shows_no_secret() -> None:
    """Issue 11: repr of a spec shows where secrets come from, never the secrets themselves."""
    spec = parse_spec(
        {
            "name": "ab",
            "database": {"url": f"postgresql://u:{SECRET}@h/d"},
            "executor": "celery",
            "celery": {"broker": "redis://r/0", "broker_password": SECRET},
        }
    )
    assert SECRET not in repr(spec)
    assert "SecretRef(a literal value in the spec)" in repr(spec)


def test_secrets_resolve_from_env_and_file_naming_the_source_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11: env and file secrets resolve; failures name the variable or file, never a value."""
    monkeypatch.setenv("MLWF_T_PW", SECRET)
    assert SecretRef(env="MLWF_T_PW").resolve() == SECRET
    (tmp_path / "pw").write_text(SECRET + "\n")
    assert SecretRef(file=Path("pw")).resolve(tmp_path) == SECRET
    monkeypatch.delenv("MLWF_T_PW")
    with pytest.raises(
        SpecError, match=r"database\.password: environment variable MLWF_T_PW is not set"
    ):
        SecretRef(env="MLWF_T_PW").resolve(where="database.password")
    with pytest.raises(SpecError, match=r"cannot read file .*missing: No such file"):
        SecretRef(file=tmp_path / "missing").resolve()
    (tmp_path / "big").write_text(SECRET * (MAX_SECRET_BYTES // len(SECRET) + 1))
    with pytest.raises(SpecError, match=f"larger than {MAX_SECRET_BYTES} bytes") as caught:
        SecretRef(file=tmp_path / "big").resolve()
    assert SECRET not in str(caught.value)
    (tmp_path / "bin").write_bytes(b"\xff\xfe" + SECRET.encode())
    with pytest.raises(SpecError, match="is not UTF-8 text") as caught:
        SecretRef(file=tmp_path / "bin").resolve()
    assert SECRET not in str(caught.value)


def test_load_spec_makes_relative_paths_relative_to_the_spec_folder(tmp_path: Path) -> None:
    """Issue 11: DAG folders, home and secret files of a loaded spec are relative to its folder."""
    folder = tmp_path / "team"
    folder.mkdir()
    path = write(
        folder,
        {
            "name": "ab",
            "dag_folders": ["../dags", "/abs/dags"],
            "home": "state",
            "database": {"url": "postgresql://u@h/d", "password": {"file": "pw"}},
            "kerberos": {"principal": "airflow/h@R", "keytab": {"file": "k.keytab"}},
        },
    )
    spec = load_spec(path)
    assert [f.path for f in spec.dag_folders] == [folder / "../dags", Path("/abs/dags")]
    assert spec.home == folder / "state"
    assert spec.database.password is not None and spec.database.password.file == folder / "pw"
    assert spec.kerberos is not None and spec.kerberos.keytab_path() == folder / "k.keytab"
    assert rebase_spec(spec, Path("/elsewhere")) == spec  # absolute paths stay


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "{",
            "not valid JSON (line 1 column 2: Expecting property name enclosed in double quotes)",
        ),
        ('{"name": "ab", "api": {"port": NaN}}', "not valid JSON (NaN is not a JSON value)"),
        ('{"name": "ab", "x": ' + "1" * 5000 + "}", "not valid JSON (Exceeds the limit"),
        (b"\xff\xfe{}", "not valid JSON (not UTF-8 text)"),
        ("[" * 100_000 + "]" * 100_000, "nested more than"),
        ("x" * (MAX_SPEC_BYTES + 1), f"the file is larger than {MAX_SPEC_BYTES} bytes"),
    ],
)
def test_hostile_files_get_one_clear_error_and_no_traceback(
    tmp_path: Path, content: str | bytes, message: str
) -> None:
    """Issue 11: broken, huge, deeply nested or non-UTF-8 files raise SpecError, not a traceback."""
    path = tmp_path / "spec.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert caught.value.errors[0][1].startswith(message)


def test_nesting_and_duplicate_keys_are_reported_with_their_path(tmp_path: Path) -> None:
    """Issue 11: a key given twice and nesting beyond MAX_DEPTH are errors naming the path."""
    path = write(tmp_path, '{"name": "ab", "celery": {"workers": 2, "workers": 3}, "name": "cd"}')
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert dict(caught.value.errors) == {
        "name": "the key appears more than once",
        "celery.workers": "the key appears more than once",
    }
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(MAX_DEPTH + 5):
        node["a"] = {}
        node = node["a"]
    errors = errors_of({"name": "ab", "airflow_config": deep})
    assert list(errors.values()) == [f"nested more than {MAX_DEPTH} levels deep"]


def test_bounds_on_lists_strings_and_error_count() -> None:
    """Issue 11: list lengths, string lengths and the number of listed errors are bounded."""
    errors = errors_of(
        {
            "name": "ab",
            "dag_folders": [f"d{i}" for i in range(65)],
            "groups": {"users": ["g" * 257]},
            "database": "postgresql://u@h/" + "d" * 3000,
            "ldap": {"url": "ldap://l", "user_base": "u" * 2000, "group_base": "g"},
        }
    )
    assert errors == {
        "groups.users[0]": "too long: at most 256 characters",
        "database.url": "too long: at most 2048 characters",
        "ldap.user_base": "too long: at most 1024 characters",
        "dag_folders": "at most 64 entries allowed",
    }
    many = errors_of({"name": "ab", **{f"k{i}": 1 for i in range(200)}})
    assert len(many) == 51 and many[""] == "… and 150 more errors not shown"


def test_default_home_follows_xdg_state_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Issue 11: an instance's default home is $XDG_STATE_HOME/mlwf/NAME."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_home("recsys") == tmp_path / "mlwf" / "recsys"


def test_the_json_schema_documents_every_field_and_the_short_forms() -> None:
    """Issue 11: every property of the schema has a description, and short forms are in it."""
    schema = spec_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["name"]
    models = [schema, *schema["$defs"].values()]
    undocumented = []
    for model in models:
        for branch in model.get("anyOf", [model]):
            for key, field in branch.get("properties", {}).items():
                if not field.get("description"):
                    undocumented.append(f"{model.get('title')}.{key}")
    assert undocumented == []
    assert {b.get("type") for b in schema["$defs"]["Database"]["anyOf"]} == {"string", "object"}
    assert len(schema["$defs"]["SecretRef"]["anyOf"]) == 3
    assert schema["properties"]["dag_folders"]["default"] == [{"path": "dags"}]
    assert InstanceSpec.model_json_schema()["additionalProperties"] is False


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("postgresql://u@h/d?sslmode=verify-full&connect_timeout=5&application_name=a", None),
        ("mysql://u@h/d?connect_timeout=5", None),
        (
            "postgresql://u@h/d?password=x",
            "query parameter 'password' is not supported; a postgresql URL may carry "
            "application_name, connect_timeout, sslmode",
        ),
        (
            "mysql://u@h/d?ssl_ca=/ca.pem",
            "query parameter 'ssl_ca' is not supported; a mysql URL may carry connect_timeout",
        ),
        (
            "postgresql://u@h/d?sslmode=maybe",
            "sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full",
        ),
        (
            "postgresql://u@h/d?connect_timeout=-1",
            "connect_timeout must be a whole number of seconds, 1 to 3600",
        ),
        (
            "postgresql://u@h/d?sslmode=require&sslmode=disable",
            "query parameter 'sslmode' is given twice",
        ),
        ("postgresql://u@h/d?sslmode", "the URL's ?query is not name=value pairs joined by &"),
        ("postgresql://u@h/d#x", "the URL must not have a #fragment"),
    ],
)
def test_database_url_query_parameters_are_a_short_allow_list(url: str, error: str | None) -> None:
    """TLS and timeouts may ride on a database URL; anything else is refused by name, no value shown."""
    if error is None:
        assert parse_spec({"name": "ab", "database": url}).database.url == url
    else:
        assert errors_of({"name": "ab", "database": url}) == {"database.url": error}
