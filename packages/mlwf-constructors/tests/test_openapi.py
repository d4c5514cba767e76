"""The OpenAPI document of the constructors API is typed (mlwf-ui generates its client from it)."""

from __future__ import annotations

from typing import Any

from mlwf_constructors._plugin import create_app


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    name = ref.removeprefix("#/components/schemas/")
    resolved: dict[str, Any] = document["components"]["schemas"][name]
    return resolved


def _json_schema(document: dict[str, Any], content: dict[str, Any]) -> dict[str, Any]:
    return _resolve(document, content["content"]["application/json"]["schema"])


def test_request_bodies_are_typed_models() -> None:
    """POST and PATCH bodies are object schemas with typed fields, required ones and no extras."""
    document = create_app().openapi()
    create = _json_schema(document, document["paths"]["/instances"]["post"]["requestBody"])
    assert create["required"] == ["instance_id", "constructor"]
    assert create["additionalProperties"] is False
    assert create["properties"]["instance_id"]["type"] == "string"
    assert {"type": "boolean"} in create["properties"]["enabled"]["anyOf"]
    assert {"type": "object", "additionalProperties": True} in create["properties"]["values"][
        "anyOf"
    ]
    patch = document["paths"]["/instances/{instance_id}"]["patch"]["requestBody"]
    assert set(_json_schema(document, patch)["properties"]) == {"values", "enabled"}


def test_responses_are_typed_models() -> None:
    """Every route's success and error answers have object schemas naming their fields."""
    document = create_app().openapi()
    paths = document["paths"]
    instance = _json_schema(document, paths["/instances"]["post"]["responses"]["201"])
    assert instance["properties"]["created_at"] == {
        "type": "string",
        "format": "date-time",
        "title": "Created At",
    }
    assert set(instance["required"]) >= {"instance_id", "constructor", "values", "enabled"}
    listing = _json_schema(document, paths["/instances"]["get"]["responses"]["200"])
    assert listing["properties"]["instances"]["items"] == {
        "$ref": "#/components/schemas/InstanceResponse"
    }
    constructors = _json_schema(document, paths["/constructors"]["get"]["responses"]["200"])
    info = _resolve(document, constructors["properties"]["constructors"]["items"])
    assert set(info["properties"]) == {"name", "version", "description", "source", "schema"}
    for path, operations in paths.items():
        for method, operation in operations.items():
            error = _json_schema(document, operation["responses"]["422"])
            assert error["properties"]["detail"]["type"] == "string", (method, path)
            assert "parameter" in error["properties"], (method, path)
            for status, answer in operation["responses"].items():
                if status != "204":
                    assert _json_schema(document, answer).get("type") == "object", (
                        method,
                        path,
                        status,
                    )
