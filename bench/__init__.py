"""`make bench`: the cost and call figures of issues 5 (ami-backup) and 6 (ebs-snapshot), each next to a baseline
modelled on the origin design.

Run as `python -m bench` from the repository root (lambda_src and tests/python are put on the path here)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "lambda_src", ROOT / "tests" / "python", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
