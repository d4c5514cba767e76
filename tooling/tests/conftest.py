"""Make the tooling scripts importable as the top-level modules they are when run as scripts."""

import sys
from pathlib import Path

TOOLING = Path(__file__).resolve().parent.parent
if str(TOOLING) not in sys.path:
    sys.path.insert(0, str(TOOLING))
