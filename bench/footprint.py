"""4. Cold import of each handler module relative to `import boto3` (fresh interpreters), and the zip size."""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import zipfile
from pathlib import Path

import hcl2
from hcl2 import SerializationOptions

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


def core_not_imported(package_tf: Path = ROOT / "modules" / "internal" / "package.tf") -> dict[str, list[str]]:
    """modules/internal/package.tf's `core_not_imported`: per service, the core modules left out of its zip."""
    with package_tf.open(encoding="utf-8") as handle:
        blocks = hcl2.load(handle, serialization_options=SerializationOptions(strip_string_quotes=True))
    for block in blocks["locals"]:
        if "core_not_imported" in block:
            return {str(service): [str(m) for m in modules] for service, modules in block["core_not_imported"].items()}
    raise KeyError(f"{package_tf} has no local core_not_imported")


def package_files(package: str, source: Path = ROOT / "lambda_src") -> list[Path]:
    """The files of one module's function package as modules/internal/package.tf selects them (archive_file): the
    core and `ops_automation/<package>` only, without the core modules the package never imports (its
    `core_not_imported`), no __pycache__ / *.pyc."""
    modules = source / "ops_automation"
    shipped = {"core", package}
    left_out = {f"{name}.py" for name in core_not_imported().get(package.replace("_", "-"), [])}
    files = []
    for path in sorted(source.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        inside = path.relative_to(modules).parts if path.is_relative_to(modules) else ()
        if len(inside) > 1 and inside[0] not in shipped:
            continue
        if len(inside) == 2 and inside[0] == "core" and inside[1] in left_out:
            continue
        files.append(path)
    return files


def zip_bytes(package: str, source: Path = ROOT / "lambda_src") -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in package_files(package, source):
            archive.write(path, path.relative_to(source).as_posix())
    return len(buffer.getvalue())


def largest_zip_bytes(source: Path = ROOT / "lambda_src") -> int:
    """The largest of the modules' function packages (`cli` is the operator's, never a function's)."""
    packages = [
        p.parent.name for p in (source / "ops_automation").glob("*/__init__.py") if p.parent.name not in {"core", "cli"}
    ]
    return max(zip_bytes(package, source) for package in packages)
