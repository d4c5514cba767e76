"""Terminal output of the long-running commands (``mlwf up``, ``mlwf instance up``)."""

from __future__ import annotations

import contextlib
import os
from typing import TextIO


def write(stream: TextIO, text: str) -> None:
    """Write to the terminal or pipe, never raising: a reader that went away must not stop a stop.

    ``mlwf up | tee up.log`` then Ctrl-C kills ``tee`` too; writing then fails with EPIPE. The
    stream is pointed at /dev/null so that later writes (and the final flush) fail no more.
    """
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):
        silence(stream)


def silence(stream: TextIO) -> None:
    """Point ``stream``'s file descriptor at /dev/null."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
