"""``python -m mlwf_instance``: the ``mlwf`` command, without relying on the console script."""

from __future__ import annotations

import sys

from mlwf_instance._cli import main

if __name__ == "__main__":
    sys.exit(main())
