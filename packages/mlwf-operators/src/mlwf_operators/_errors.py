"""The exceptions of mlwf-operators' ML workflow: training, validation, artifacts, serving, load tests.

Each one stays importable from the module that raises it (``mlwf_operators.artifacts``,
``mlwf_operators.processes``, ``mlwf_operators.trainers`` …), which is where users find it. This
module imports nothing, neither from the package nor from Airflow: the trainer and service child
processes and DAG files import it for free. The hooks' errors (Airflow exceptions) are in
:mod:`mlwf_operators.hooks._errors`.
"""

from __future__ import annotations

# Model files and artifacts (mlwf_operators.model_files, mlwf_operators.artifacts)


class ModelFileError(Exception):
    """A model directory's model file is unsafe to load: bad name, outside the directory, or wrong hash."""


class ArtifactStoreError(Exception):
    """An artifact URI cannot be stored or fetched."""


class ArtifactNotFoundError(ArtifactStoreError):
    """No artifact exists at a URI."""


# Training (mlwf_operators.trainers) and validation (mlwf_operators.operators.validation)


class TrainerError(Exception):
    """A training run failed."""


class TrainerCrashedError(TrainerError):
    """The trainer process exited with a non-zero code or was killed by a signal."""


class TrainerTimeoutError(TrainerError):
    """The trainer ran longer than its timeout; its process tree was killed."""


class ContractError(Exception):
    """The entry point cannot be loaded or does not follow the trainer contract."""


class ModelValidationError(Exception):
    """A model missed one or more metric thresholds."""


# Child processes (mlwf_operators.processes)


class HealthCheckError(Exception):
    """A started server did not come up: it exited, or did not answer in time."""

    def __init__(self, message: str, url: str) -> None:
        super().__init__(message)
        #: The health URL that was polled.
        self.url = url


class ServerExitedError(HealthCheckError):
    """The server process exited before its health URL answered."""

    def __init__(self, url: str, returncode: int | None, message: str | None = None) -> None:
        super().__init__(
            message or f"the server exited with code {returncode} before {url} answered", url
        )
        #: The process's exit code (None if it was not ours to wait for).
        self.returncode = returncode


class PortTakenError(ServerExitedError):
    """The server exited while another process listened on its port: it could not bind it."""

    def __init__(self, url: str, returncode: int | None, port: int, pid: int | None) -> None:
        holder = "another process" if pid is None else f"another process (pid {pid})"
        super().__init__(
            url,
            returncode,
            f"port {port} was taken by {holder} before the server listened on it: the server "
            f"exited with code {returncode} and {url} would have reached the other process; "
            "choose another port",
        )
        #: The port the server was to listen on.
        self.port = port
        #: The process listening there instead (None if psutil cannot tell: another user's).
        self.pid = pid


class ServerNotHealthyError(HealthCheckError):
    """The server's health URL did not answer 2xx within the timeout."""

    def __init__(self, url: str, timeout: float, reason: str = "") -> None:
        super().__init__(
            f"{url} did not answer with a 2xx status within {timeout:g} s"
            + (f": {reason}" if reason else ""),
            url,
        )
        #: The timeout, in seconds.
        self.timeout = timeout
        #: Why, when known (e.g. another process holds the port), else "".
        self.reason = reason


# Serving (mlwf_operators.serving)


class ServingError(Exception):
    """The prediction service could not be started or stopped."""


class ModelNotFoundError(ServingError):
    """The model URI names no model artifact."""


class ServiceStartError(ServingError):
    """The service process died or did not become healthy in time."""


# Load tests (mlwf_operators.loadgen, mlwf_operators.operators.load_test)


class LoadGenError(Exception):
    """A load run could not measure the target."""


class ServiceUnreachableError(LoadGenError):
    """The load test target refuses connections."""


class SLOMissedError(Exception):
    """A load test result missed a declared service-level objective."""
