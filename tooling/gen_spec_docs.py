"""Write docs/mlwf-instance/spec.md, the instance spec reference, from InstanceSpec's JSON schema.

Run `uv run python tooling/gen_spec_docs.py` after changing the spec models or the example
specs in examples/instances/; mlwf-instance's test_spec_docs fails while the page is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mlwf_instance.spec_docs import render_reference

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "mlwf-instance" / "spec.md"


def main() -> int:
    """Write the page; print what was done."""
    text = render_reference(ROOT / "examples" / "instances")
    if PAGE.is_file() and PAGE.read_text(encoding="utf-8") == text:
        print(f"{PAGE.relative_to(ROOT)} is up to date")
        return 0
    PAGE.write_text(text, encoding="utf-8")
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
