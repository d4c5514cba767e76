"""Request and response models of the constructors HTTP API (its typed OpenAPI, read by mlwf-ui).

Requests are strict: a field of the wrong JSON type is refused, not coerced (``"1"`` is no
integer, ``1`` no boolean), and unknown fields are refused. Parameter values stay a free JSON
object here: each constructor validates its own parameters (its schema is in ``/constructors``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ConstructorInfo",
    "ConstructorList",
    "CreateInstanceRequest",
    "ErrorResponse",
    "InstanceList",
    "InstanceResponse",
    "UpdateInstanceRequest",
]

_STRICT = ConfigDict(extra="forbid", strict=True)


class CreateInstanceRequest(BaseModel):
    """Body of ``POST /instances``."""

    model_config = _STRICT

    instance_id: str = Field(
        description="The instance's id: also the id of the DAG it defines (letters, digits, _ . -)"
    )
    constructor: str = Field(description="Reference of a registered constructor")
    values: dict[str, Any] | None = Field(
        default=None, description="Parameter values (validated by the constructor); none: {}"
    )
    enabled: bool | None = Field(default=None, description="Write the DAG file (default true)")


class UpdateInstanceRequest(BaseModel):
    """Body of ``PATCH /instances/{instance_id}``."""

    model_config = _STRICT

    values: dict[str, Any] | None = Field(
        default=None, description="Parameter values merged over the stored ones"
    )
    enabled: bool | None = Field(default=None, description="Write (true) or remove the DAG file")


class InstanceResponse(BaseModel):
    """A stored instance."""

    instance_id: str
    constructor: str
    constructor_version: str
    values: dict[str, Any]
    owner: str
    owner_groups: list[str] = Field(
        description="The creator's groups, which own the instance (with mlwf-auth: every action "
        "on its DAGs)"
    )
    enabled: bool
    created_at: datetime
    updated_at: datetime


class InstanceList(BaseModel):
    """Answer of ``GET /instances``: the instances whose DAG the user may read."""

    instances: list[InstanceResponse]


class ConstructorInfo(BaseModel):
    """A registered constructor and the JSON schema of its parameters."""

    model_config = ConfigDict(populate_by_name=True)

    name: str
    version: str
    description: str
    source: str = Field(description="'entry point <distribution>' or 'bundle module <name>'")
    parameters_schema: dict[str, Any] = Field(
        alias="schema", description="JSON schema (an object schema) of the parameters"
    )


class ConstructorList(BaseModel):
    """Answer of ``GET /constructors``."""

    constructors: list[ConstructorInfo]


class ErrorResponse(BaseModel):
    """A 4xx answer: what is wrong and, when one field is at fault, which."""

    detail: str
    parameter: str | None = Field(
        default=None,
        description="The request field or constructor parameter at fault, when there is one",
    )
