"""The spec reference page (``docs/mlwf-instance/spec.md``), generated from the JSON schema.

A public module (the repository's ``tooling/gen_spec_docs.py`` writes the page with
:func:`render_reference`), not imported by ``import mlwf_instance``.

Every table row comes from a field's ``description`` and the schema's types and defaults, so the
page cannot drift from the code: a test regenerates it and compares it with the committed file.
Regenerate with ``uv run python tooling/gen_spec_docs.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlwf_instance._cli_spec import summary
from mlwf_instance._spec import SpecError, load_spec, parse_spec, spec_json_schema
from mlwf_instance._spec_owned import OWNED_AIRFLOW_OPTIONS

#: The command that rewrites the page, named in the page and in the test's failure message.
REGENERATE = "uv run python tooling/gen_spec_docs.py"

#: A spec with typical mistakes, and the errors `mlwf instance validate` prints for it.
_BAD_EXAMPLE = {
    "name": "RecSys",
    "database": {"url": "postgresql+psycopg://recsys@db/recsys", "password": 1234},
    "executor": "celery",
    "celery": {"broker": "kafka://broker:9092", "wokers": 2},
    "airflow_config": {"core": {"executor": "CeleryExecutor", "parallelism": 16}},
}


def _anchor(name: str) -> str:
    return f"#{name.lower()}"


def _type(schema: dict[str, Any]) -> str:
    """Return a field's type as Markdown: ``string``, ``list of [Celery](#celery)``, …"""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}]({_anchor(name)})"
    if "anyOf" in schema:
        kinds = [_type(s) for s in schema["anyOf"] if s.get("type") != "null"]
        return " or ".join(dict.fromkeys(kinds))
    if "enum" in schema:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {_type(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"mapping of string to {_type(schema['additionalProperties'])}"
    if kind == "string" and schema.get("format") == "path":
        return "path"
    return str(kind)


def _limits(schema: dict[str, Any]) -> str:
    """Return the bounds of a field (``1 to 64``, ``at most 64 entries``) or an empty string."""
    inner = next((s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"), schema)
    if "minimum" in inner or "maximum" in inner:
        return f"{inner.get('minimum', '…')} to {inner.get('maximum', '…')}"
    if "maxItems" in inner or "maxProperties" in inner:
        return f"at most {inner.get('maxItems', inner.get('maxProperties'))} entries"
    return ""


def _default(name: str, schema: dict[str, Any], required: list[str]) -> str:
    if name in required:
        return "**required**"
    if "$ref" in schema:
        return "its keys' defaults"
    default = schema.get("default")
    return "none" if default is None else f"`{json.dumps(default)}`"


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(model: dict[str, Any]) -> list[str]:
    required = model.get("required", [])
    rows = ["| key | type | default | description |", "|---|---|---|---|"]
    for name, field in model.get("properties", {}).items():
        description = field.get("description", "")
        limits = _limits(field)
        if limits:
            description += f" ({limits})"
        rows.append(
            f"| `{name}` | {_type(field)} | {_default(name, field, required)} "
            f"| {_escape(description)} |"
        )
    return rows


def _object_form(model: dict[str, Any]) -> dict[str, Any]:
    """Return the object branch of a model that may also be written as a string."""
    for branch in model.get("anyOf", []):
        if branch.get("type") == "object" and "properties" in branch:
            return dict(branch)
    return model


def _section_order(schema: dict[str, Any]) -> list[str]:
    """Return the schema's definitions in the order a reader meets them, depth first."""
    order: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                name = ref.rsplit("/", 1)[-1]
                if name not in order:
                    order.append(name)
                    visit(schema["$defs"][name])
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schema.get("properties", {}))
    return order


def _secret_section(model: dict[str, Any]) -> list[str]:
    lines = [model.get("description", ""), "", "| written as | meaning |", "|---|---|"]
    for branch in model["anyOf"]:
        if branch["type"] == "string":
            lines.append(f'| `"…"` | {_escape(branch["description"])} |')
        else:
            key, field = next(iter(branch["properties"].items()))
            placeholder = "NAME" if key == "env" else "PATH"
            lines.append(f'| `{{"{key}": "{placeholder}"}}` | {_escape(field["description"])} |')
    return lines


def _owned_options() -> list[str]:
    rows = ["| option | set by |", "|---|---|"]
    for (section, key), owner in sorted(OWNED_AIRFLOW_OPTIONS.items()):
        rows.append(f"| `[{section}] {key}` | {owner} |")
    return rows


def _bad_example() -> list[str]:
    try:
        parse_spec(_BAD_EXAMPLE, "bad.json")
    except SpecError as err:
        errors = str(err)
    else:  # pragma: no cover - the example is wrong on purpose
        raise AssertionError("the bad example spec validated")
    return [
        "```json",
        json.dumps(_BAD_EXAMPLE, indent=2),
        "```",
        "",
        "`mlwf instance validate bad.json` prints every problem at once and exits with status 1:",
        "",
        "```text",
        errors,
        "```",
    ]


def _examples(folder: Path) -> list[str]:
    lines: list[str] = []
    for path in sorted(folder.glob("*.json")):
        spec = load_spec(path)
        lines += [
            f"### `{path.name}`",
            "",
            f"`mlwf instance validate` says: {path.name}: {summary(spec)}.",
            "",
            "```json",
            path.read_text(encoding="utf-8").rstrip("\n"),
            "```",
            "",
        ]
    return lines


def render_reference(examples: Path) -> str:
    """Return the Markdown of the spec reference page; ``examples`` is ``examples/instances``."""
    schema = spec_json_schema()
    lines = [
        "# Instance spec reference",
        "",
        f"<!-- Generated from the JSON schema by `{REGENERATE}`: do not edit by hand. -->",
        "",
        "An instance spec is a short JSON file that describes one team's Airflow instance: its "
        "name, service account, groups, metadata database, executor and Celery broker, DAG "
        "folders, identity services, metrics and Kubernetes resources. Everything but `name` has "
        "a default. `mlwf instance validate SPEC` checks a file, `mlwf instance schema` prints "
        "the JSON schema this page is generated from (point your editor at it for completion).",
        "",
        "Relative paths (DAG folders, `home`, secret files, the keytab) are relative to the spec "
        "file's folder. Unknown keys are errors, so a misspelt key never silently means its "
        "default.",
        "",
        "## Top level",
        "",
        *_table(schema),
        "",
    ]
    for name in _section_order(schema):
        model = schema["$defs"][name]
        lines += [f"## {name} {{#{name.lower()}}}", ""]
        if name == "SecretRef":
            lines += [*_secret_section(model), ""]
            continue
        obj = _object_form(model)
        description = model.get("description") or obj.get("description", "")
        lines += [_escape(description), ""]
        if "anyOf" in model:
            string = next(b for b in model["anyOf"] if b.get("type") == "string")
            lines += [f"Written as a string, it is {string['description']}.", ""]
        lines += [*_table(obj), ""]
    lines += [
        "## Options the spec owns {#owned-options}",
        "",
        "`airflow_config` adds Airflow options the spec has no field for. These it refuses, "
        "naming who sets them (the `_cmd` and `_secret` variants too, in any letter case):",
        "",
        *_owned_options(),
        "",
        "## Errors",
        "",
        *_bad_example(),
        "",
        "A secret's value is never part of a message: errors and `--resolve-secrets` name where "
        "it comes from (an environment variable, a file).",
        "",
        "## Examples {#examples}",
        "",
        "The specs in `examples/instances/` (validated by the tests):",
        "",
        *_examples(examples),
    ]
    return "\n".join(lines).rstrip("\n") + "\n"
