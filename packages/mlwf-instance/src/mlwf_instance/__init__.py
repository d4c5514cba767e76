"""ML Workflows instances: the ``mlwf`` command, team instances from a spec and ``mlwf up``."""

from __future__ import annotations

from importlib.metadata import version as _version

from mlwf_operators.processes import terminate_trees

from mlwf_instance._api import get_api_token, get_health
from mlwf_instance._broker import BrokerSetupError
from mlwf_instance._database import DatabaseUnavailableError
from mlwf_instance._errors import (
    AuthenticationError,
    ComponentDiedError,
    CredentialsUnavailableError,
    HealthTimeoutError,
    InstanceAlreadyRunningError,
    InvalidConfigError,
    MlwfInstanceError,
    PortInUseError,
    PortTakenError,
    UnknownComponentError,
)
from mlwf_instance._home import Credentials, InstanceConfig, InstanceHome
from mlwf_instance._instance import EmbeddedInstance, Instance
from mlwf_instance._spec import InstanceSpec, load_spec, parse_spec, spec_json_schema
from mlwf_instance._spec_errors import SpecError
from mlwf_instance._supervisor import StopRequested, Supervisor
from mlwf_instance._topology import COMPONENTS

__version__ = _version("mlwf-instance")

__all__ = [
    "__version__",
    # instances (a spec's, and the laptop's)
    "Instance",
    "EmbeddedInstance",
    "COMPONENTS",
    # the instance spec
    "InstanceSpec",
    "load_spec",
    "parse_spec",
    "spec_json_schema",
    "SpecError",
    "Credentials",
    "InstanceHome",
    "InstanceConfig",
    # REST API helpers
    "get_api_token",
    "get_health",
    # process supervision
    "Supervisor",
    "terminate_trees",
    "StopRequested",
    # errors
    "MlwfInstanceError",
    "InvalidConfigError",
    "InstanceAlreadyRunningError",
    "PortInUseError",
    "ComponentDiedError",
    "PortTakenError",
    "UnknownComponentError",
    "HealthTimeoutError",
    "CredentialsUnavailableError",
    "AuthenticationError",
    "DatabaseUnavailableError",
    "BrokerSetupError",
]
