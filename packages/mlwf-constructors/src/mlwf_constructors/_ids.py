"""Instance ids: they become DAG ids and file names, so only a safe alphabet is accepted."""

from __future__ import annotations

import re

from mlwf_constructors._errors import InvalidInstanceIdError

#: ASCII letters, digits, ``_``, ``.`` and ``-``; starts with a letter, digit or ``_``; ≤ 100 chars.
INSTANCE_ID_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")


def check_instance_id(instance_id: object) -> str:
    """Return ``instance_id`` if it is a safe DAG id and file name, else raise InvalidInstanceIdError."""
    if not isinstance(instance_id, str):
        raise InvalidInstanceIdError(
            f"instance id must be a string, got {type(instance_id).__name__}"
        )
    # fullmatch, not match: ``$`` would accept a trailing newline.
    if not INSTANCE_ID_PATTERN.fullmatch(instance_id) or ".." in instance_id:
        raise InvalidInstanceIdError(
            f"invalid instance id {instance_id[:120]!r}: use 1-100 ASCII letters, digits, '_', '.' "
            "or '-', starting with a letter, digit or '_', without '..'"
        )
    return instance_id
