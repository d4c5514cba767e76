"""``mlwf constructors --url URL …``: the same commands against a remote instance's HTTP API.

The session logs in with the user's Kerberos ticket through :func:`mlwf_auth.client.kerberos_session`
(``pip install 'mlwf-constructors[remote]'``; ``kinit`` first), so the server's auth manager decides,
as for the UI: the server checks every DAG involved and records the user and groups as owners.
Nothing here reads the local store or DAG folder.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlsplit

from mlwf_constructors._errors import ConstructorsError

#: Where the constructors plugin is mounted on the API server.
PREFIX = "/mlwf/constructors"


class RemoteError(ConstructorsError):
    """The instance refused the request or could not be reached; the message says why."""


class Remote:
    """The constructors API of the instance at ``url``, as the user holding the Kerberos ticket."""

    def __init__(self, url: str, *, session: Any = None, timeout: float = 60.0) -> None:
        """Talk to ``url`` (``https://host[:port]``) with ``session`` (default: a Kerberos one)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RemoteError(f"--url {url!r}: expected http(s)://host[:port] of the API server")
        if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
            # The session's bearer token would cross the network in clear, replayable.
            raise RemoteError(f"--url {url!r}: use https:// (http:// only on this machine)")
        self.url = url.rstrip("/")
        self.timeout = timeout
        if session is None:
            try:
                from mlwf_auth.client import kerberos_session
            except ImportError as err:
                raise RemoteError(
                    "--url needs mlwf-auth with Kerberos: pip install 'mlwf-constructors[remote]' "
                    f"({err})"
                ) from None
            session = kerberos_session(self.url)
        self.session = session

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        import requests

        try:
            answer = self.session.request(
                method, f"{self.url}{PREFIX}{path}", json=body, timeout=self.timeout
            )
        except requests.RequestException as err:
            raise RemoteError(f"{self.url}: {err}") from None
        except ConstructorsError:
            raise
        except Exception as err:  # mlwf_auth.client.TokenError: the ticket was refused
            raise RemoteError(f"{self.url}: {err}") from None
        if answer.status_code >= 400:
            try:
                found = answer.json()
            except ValueError:
                found = None
            detail: Any = answer.text[:300]
            if isinstance(found, dict):
                detail = found.get("detail", found)
                if found.get("parameter"):
                    detail = f"{found['parameter']}: {detail}"
            raise RemoteError(f"{method} {PREFIX}{path} answered {answer.status_code}: {detail}")
        return None if answer.status_code == 204 else answer.json()

    def constructors(self) -> list[dict[str, Any]]:
        """The registered constructors."""
        return list(self._call("GET", "/constructors")["constructors"])

    def instances(self) -> list[dict[str, Any]]:
        """The instances the user may read."""
        return list(self._call("GET", "/instances")["instances"])

    def create(
        self, instance_id: str, constructor: str, values: dict[str, Any], *, enabled: bool
    ) -> dict[str, Any]:
        """Create an instance; return it as the server stored it."""
        body = {
            "instance_id": instance_id,
            "constructor": constructor,
            "values": values,
            "enabled": enabled,
        }
        return dict(self._call("POST", "/instances", body))

    def delete(self, instance_id: str) -> None:
        """Delete an instance."""
        self._call("DELETE", f"/instances/{quote(instance_id, safe='')}")


def print_listing(constructors: list[dict[str, Any]], instances: list[dict[str, Any]]) -> None:
    """Print constructors and instances as ``mlwf constructors list`` does locally."""
    print("constructors:")
    for entry in constructors:
        params = ", ".join(entry.get("schema", {}).get("properties", {}))
        print(f"  {entry['name']} {entry['version']} ({params}) from {entry.get('source', '?')}")
    print("instances:")
    for record in instances:
        state = "enabled" if record["enabled"] else "disabled"
        print(
            f"  {record['instance_id']}: {record['constructor']} {record['constructor_version']} "
            f"{state} {json.dumps(record['values'], sort_keys=True)}"
        )
