"""A throwaway package index on loopback: pypiserver over a temporary folder, owned by its PID.

Used by the release tests and by `release_check.py`: packages are uploaded to it with twine
(`release.py publish`) and installed from it with uv, exactly as from a real index. Upload
needs a user name but checks no password (`-a . -P .`): the index lives for one run on
127.0.0.1 only.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["LocalIndexError", "free_port", "local_index"]


class LocalIndexError(Exception):
    """The local index did not start."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _server_command() -> str:
    # pypiserver is installed beside this Python (the dev group); a PATH lookup might find another.
    found = shutil.which("pypi-server", path=str(Path(sys.executable).parent))
    if found is None:
        raise LocalIndexError(
            f"pypi-server is not installed beside {sys.executable}: "
            "run through nox (`uv run nox -s release_check`) or `uv sync` the dev group"
        )
    return found


@contextmanager
def local_index(packages: Path, *, timeout: float = 30.0) -> Iterator[str]:
    """Serve `packages` (a folder, created if missing) as an index; yield its base URL.

    The URL ends with `/`: upload to it, install from `<url>simple/`. The server is stopped by
    its PID when the block ends, and its log is in `packages/../pypiserver.log`.
    """
    packages.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = packages.parent / "pypiserver.log"
    command = [_server_command(), "run", "-i", "127.0.0.1", "-p", str(port)]
    command += ["-a", ".", "-P", ".", str(packages)]
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if server.poll() is not None:
                raise LocalIndexError(
                    f"pypi-server exited with {server.returncode}: "
                    f"{log_path.read_text(errors='replace')[-2000:]}"
                )
            try:
                with urllib.request.urlopen(f"{url}simple/", timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise LocalIndexError(
                        f"pypi-server did not answer on {url} in {timeout} s"
                    ) from None
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
