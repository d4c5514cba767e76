"""Exception classes of mlwf-types."""

from __future__ import annotations


class MlwfTypesError(Exception):
    """Base class of every error raised by mlwf-types."""


class TypeDeclarationError(MlwfTypesError, TypeError):
    """A ``@typed`` declaration or a TaskFlow annotation is itself wrong (unknown argument, not a type)."""


class XComTypeError(MlwfTypesError, TypeError):
    """At run time, a task received or produced a value that does not match its declared type.

    Raised before ``execute`` for inputs and before the XCom is stored for outputs, so the bad
    value is never pushed.
    """


class InvalidModeError(MlwfTypesError, ValueError):
    """``[mlwf_types] mode`` holds something other than error, warn or off."""
