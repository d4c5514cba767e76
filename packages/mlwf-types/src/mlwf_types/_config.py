"""The ``[mlwf_types] mode`` setting, read from Airflow's configuration (or its environment variable)."""

from __future__ import annotations

import os
from typing import Literal

# Re-exported: the error was defined here before it moved to _errors with the others.
from mlwf_types._errors import InvalidModeError as InvalidModeError

Mode = Literal["error", "warn", "off"]
MODES: tuple[Mode, ...] = ("error", "warn", "off")
DEFAULT_MODE: Mode = "error"
_BY_NAME: dict[str, Mode] = {m: m for m in MODES}
ENV_VAR = "AIRFLOW__MLWF_TYPES__MODE"


def parse_mode(raw: str) -> Mode:
    """Validate a mode string (case and surrounding blanks are ignored)."""
    value = _BY_NAME.get(raw.strip().lower())
    if value is None:
        raise InvalidModeError(
            f"[mlwf_types] mode must be one of {', '.join(MODES)}, not {raw!r} "
            f"(set in airflow.cfg or the {ENV_VAR} environment variable)"
        )
    return value


def current_mode() -> Mode:
    """The configured mode; ``error`` when unset."""
    raw = os.environ.get(ENV_VAR)
    if raw is None:
        try:
            from airflow.configuration import conf

            raw = conf.get("mlwf_types", "mode", fallback=DEFAULT_MODE)
        except ImportError:  # used without Airflow's core installed
            raw = DEFAULT_MODE
    return parse_mode(str(raw))
