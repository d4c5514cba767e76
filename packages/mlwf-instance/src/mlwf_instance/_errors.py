"""Exceptions raised by mlwf-instance; every message names the home, component or file at fault."""

from __future__ import annotations

from pathlib import Path


class MlwfInstanceError(Exception):
    """Base class of every error raised by mlwf-instance."""


class InvalidConfigError(MlwfInstanceError, ValueError):
    """An Airflow configuration override cannot be expressed as an ``AIRFLOW__SECTION__KEY`` variable."""


class InstanceAlreadyRunningError(MlwfInstanceError):
    """Another live ``mlwf up`` holds the home's pid file."""

    def __init__(self, home: Path, pid: int | None) -> None:
        who = f"process {pid}" if pid is not None else "another process"
        super().__init__(
            f"an mlwf instance is already running on home {home} ({who}); "
            f"stop it first (Ctrl-C in its terminal, or `kill {pid if pid is not None else '<pid>'}`)"
        )
        self.home = home
        self.pid = pid


class PortInUseError(MlwfInstanceError):
    """The API server port is taken by some other program."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(
            f"port {port} on {host} is already in use; choose another with --port "
            f"(or stop the program listening there)"
        )
        self.host = host
        self.port = port


class ComponentDiedError(MlwfInstanceError):
    """A supervised Airflow component exited when it should still be running."""

    def __init__(
        self,
        name: str,
        returncode: int | None,
        log_path: Path,
        log_tail: str,
        *,
        reason: str = "",
    ) -> None:
        code = "unknown" if returncode is None else str(returncode)
        why = f": {reason}" if reason else ""
        super().__init__(
            f"component {name!r} exited with code {code}{why}; last lines of {log_path}:\n{log_tail}"
        )
        self.name = name
        self.returncode = returncode
        self.log_path = log_path
        self.log_tail = log_tail


class PortTakenError(ComponentDiedError):
    """The api-server exited while another process listened on its port (taken after the start checks)."""

    def __init__(
        self,
        name: str,
        returncode: int | None,
        log_path: Path,
        log_tail: str,
        *,
        host: str,
        port: int,
        pid: int | None,
    ) -> None:
        holder = "another process" if pid is None else f"another process (pid {pid})"
        super().__init__(
            name,
            returncode,
            log_path,
            log_tail,
            reason=(
                f"port {port} on {host} was taken by {holder} while the instance started, so "
                "the api-server could not listen there; choose another port (--port, or "
                "api.port in the spec) or stop that process"
            ),
        )
        self.host = host
        self.port = port
        self.pid = pid


class UnknownComponentError(MlwfInstanceError, ValueError):
    """A component name that is not one of the instance's supervised Airflow components."""

    def __init__(self, name: object, known: tuple[str, ...]) -> None:
        super().__init__(f"unknown component {name!r}; the components are {', '.join(known)}")
        self.name = name
        self.known = known


class HealthTimeoutError(MlwfInstanceError):
    """The instance did not report healthy within the allowed time."""


class CredentialsUnavailableError(MlwfInstanceError):
    """The simple auth manager's passwords file is missing or holds no password for the user."""


class AuthenticationError(MlwfInstanceError):
    """The API server refused to issue a JWT for the given credentials."""


class DatabaseUnavailableError(MlwfInstanceError):
    """The metadata database cannot be reached, does not exist, or cannot be created."""


class BrokerSetupError(MlwfInstanceError):
    """The database broker's tables or queues could not be created."""


class CeleryConfigError(ValueError):
    """A Celery-related Airflow option of the instance is invalid (names the option)."""


class RenderError(MlwfInstanceError, ValueError):
    """A spec cannot be rendered for a target; the message names the spec field at fault."""
