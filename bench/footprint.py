"""4. Cold import of each handler module relative to `import boto3` (fresh interpreters), and the zip size."""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import zipfile
from pathlib import Path

from . import ROOT

HANDLER_MODULES = ("ops_automation.ami_backup.handlers",)
PROBE = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


def import_seconds(module: str, runs: int = 5) -> float:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "lambda_src"),
        "POWERTOOLS_SERVICE_NAME": "ami-backup",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    times = []
    for _run in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", PROBE.format(module=module)], env=env, capture_output=True, text=True, check=True
        )
        times.append(float(out.stdout.strip()))
    return statistics.median(times)


def cold_imports(runs: int = 5) -> dict[str, float]:
    """Median seconds per module and its ratio to boto3 in the same run."""
    boto3_s = import_seconds("boto3", runs)
    result: dict[str, float] = {"boto3_s": boto3_s}
    for module in HANDLER_MODULES:
        seconds = import_seconds(module, runs)
        result[f"{module}_s"] = seconds
        result[f"{module}_ratio"] = seconds / boto3_s
    return result


def zip_bytes(source: Path = ROOT / "lambda_src") -> int:
    """The function package as modules/internal/package.tf builds it (archive_file, no __pycache__ / *.pyc)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(source.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                archive.write(path, path.relative_to(source).as_posix())
    return len(buffer.getvalue())
