"""4. Cold import of every function's handler module relative to `import boto3` (fresh interpreters, interleaved,
median of several runs), and the zip size of every module's function package.

`python -m bench.footprint` measures, writes bench/results/footprint.json and prints the Markdown."""

from __future__ import annotations

import compileall
import io
import json
import os
import py_compile
import statistics
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import hcl2
from aws_harness import (
    REGION,
    cleanup_function_env,
    copy_function_env,
    ebs_function_env,
    function_env,
    runcommand_function_env,
    scheduler_function_env,
)
from hcl2 import SerializationOptions
from tests.support.hcl_tree import automation_modules, internal_call, module_functions

from . import ROOT

HANDLER_MODULES = ("ops_automation.ami_backup.handlers",)  # the figure bench/__main__.py reports by name
IMPORT_TARGET = 1.5  # issue 14: a handler's cold import at most 1.5x `import boto3`
ZIP_TARGET_BYTES = 100 * 1024  # issue 14: every function package under 100 KB
RESULTS_FILE = ROOT / "bench" / "results" / "footprint.json"
RUNS = 5
# What Lambda does before the first event: import the handler's module, then look the handler up in it. Only that
# is timed (not the interpreter's start); a handler the module lacks fails the probe.
PROBE = (
    "import importlib, json, time\n"
    "t = time.perf_counter()\n"
    "module = importlib.import_module({module!r})\n"
    "handler = getattr(module, {name!r}) if {name!r} else None\n"
    "seconds = time.perf_counter() - t\n"
    "print(json.dumps({{'seconds': seconds, 'callable': handler is None or callable(handler)}}))\n"
)
# The OPS_* variables the internal module gives every function of a module (tests/python/aws_harness.py renders the
# same contract for the tests): the import-time configuration paths read them.
MODULE_ENVIRONMENTS: dict[str, Callable[[], dict[str, str]]] = {
    "ami-backup": function_env,
    "ebs-snapshot": ebs_function_env,
    "deregister-cleanup": cleanup_function_env,
    "snapshot-copy": copy_function_env,
    "instance-scheduler": scheduler_function_env,
    "ssm-runcommand": runcommand_function_env,
}


@dataclass(frozen=True)
class DeployedFunction:
    """One function a module's HCL deploys (the `functions` map it passes to modules/internal)."""

    module: str  # the module's folder, e.g. ami-backup
    key: str  # planner, worker, ...
    handler: str  # ops_automation.ami_backup.handlers.plan_handler
    service_name: str  # POWERTOOLS_SERVICE_NAME

    @property
    def handler_module(self) -> str:
        return self.handler.rsplit(".", 1)[0]

    @property
    def handler_name(self) -> str:
        return self.handler.rsplit(".", 1)[1]

    @property
    def package(self) -> str:
        """The function package's folder under ops_automation (modules/internal/package.tf)."""
        return self.handler.split(".")[1]


def deployed_functions(root: Path = ROOT) -> list[DeployedFunction]:
    """Every function of every module, from the HCL (restore planners included: deployed with restore_test)."""
    found = []
    for module_dir in automation_modules(root):
        service = str(internal_call(module_dir).get("service_name"))
        found += [DeployedFunction(f.module, f.key, f.handler, service) for f in module_functions(module_dir)]
    return found


def function_environment(function: DeployedFunction) -> dict[str, str]:
    """The function's environment as Lambda gives it: the module's OPS_* contract, the internal module's own
    variables (modules/internal/main.tf `function_environment`) and the runtime's."""
    return {
        **MODULE_ENVIRONMENTS[function.module](),
        "POWERTOOLS_SERVICE_NAME": function.service_name,
        "POWERTOOLS_METRICS_NAMESPACE": "OpsAutomation",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "AWS_STS_REGIONAL_ENDPOINTS": "regional",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_LAMBDA_FUNCTION_NAME": f"{function.module}-{function.key}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
    }


def _process_environment(function_env: Mapping[str, str], path: Path) -> dict[str, str]:
    """This process's environment without what could change an import (no OPS_*, POWERTOOLS_*, AWS_*, MOTO_* or
    PYTHONPATH of ours), the function's over it, `path` alone on the path, and no bytecode written: Lambda's
    /var/task is read-only, so code shipped without .pyc is compiled at every cold start (boto3 and Powertools come
    compiled, as installed here)."""
    kept = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OPS_", "POWERTOOLS_", "AWS_", "PYTHONPATH", "MOTO_"))
    }
    return {**kept, **function_env, "PYTHONPATH": str(path), "PYTHONDONTWRITEBYTECODE": "1"}


def probe_seconds(module: str, handler_name: str, env: Mapping[str, str], path: Path = ROOT / "lambda_src") -> float:
    """One fresh interpreter importing `module` (and looking `handler_name` up) from `path`: the import's
    seconds."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module, name=handler_name)],
        env=_process_environment(env, path),
        cwd=path,
        capture_output=True,
        text=True,
        check=True,
    )
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    if not answer["callable"]:
        raise RuntimeError(f"{module}.{handler_name} is not callable")
    return float(answer["seconds"])


def import_seconds(module: str, runs: int = RUNS) -> float:
    """Median seconds of `import module` in fresh interpreters (lambda_src on the path, ami-backup's environment)."""
    env = function_environment(DeployedFunction("ami-backup", "planner", f"{module}.x", "ami-backup"))
    return statistics.median(probe_seconds(module, "", env) for _run in range(runs))


@contextmanager
def unpacked(packages: Iterable[str], precompiled: bool = False) -> Iterator[dict[str, Path]]:
    """Each package's zip contents (`package_files`) in a directory of its own, as Lambda unpacks it; with
    `precompiled`, .pyc files beside them (unchecked-hash, this interpreter's version): what shipping them would
    save."""
    source = ROOT / "lambda_src"
    with tempfile.TemporaryDirectory(prefix="ops-automation-zip-") as tmp:
        roots = {}
        for package in sorted(set(packages)):
            root = Path(tmp) / package
            for path in package_files(package, source):
                target = root / path.relative_to(source)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(path.read_bytes())
            if precompiled:
                compileall.compile_dir(root, quiet=1, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
            roots[package] = root
        yield roots


@dataclass(frozen=True)
class FunctionImport:
    module: str
    key: str
    handler: str
    runs: int
    seconds: float  # median cold import of the handler's module (boto3 and Powertools included)
    boto3_seconds: float  # median `import boto3` of the probes paired with this function's
    ratio: float  # median of each pair's handler seconds / boto3 seconds
    precompiled: bool = False  # the zip with .pyc (not what package.tf ships today)

    @property
    def meets_target(self) -> bool:
        return self.ratio <= IMPORT_TARGET


def function_imports(
    runs: int = RUNS, functions: Sequence[DeployedFunction] | None = None, precompiled: bool = False
) -> list[FunctionImport]:
    """Each function's import from its own package's files next to an `import boto3` in the same environment
    right before or after it (the order alternates by round), so load drift on this machine hits both sides of each
    ratio alike."""
    functions = list(functions if functions is not None else deployed_functions())
    samples: dict[DeployedFunction, list[tuple[float, float]]] = {f: [] for f in functions}
    with unpacked((f.package for f in functions), precompiled) as roots:
        for round_ in range(runs):
            boto3_first = round_ % 2 == 0
            for function in functions if boto3_first else functions[::-1]:
                env, path = function_environment(function), roots[function.package]
                boto3_before = probe_seconds("boto3", "", env, path) if boto3_first else 0.0
                handler_s = probe_seconds(function.handler_module, function.handler_name, env, path)
                boto3_s = boto3_before if boto3_first else probe_seconds("boto3", "", env, path)
                samples[function].append((handler_s, boto3_s))
    return [
        FunctionImport(
            module=f.module,
            key=f.key,
            handler=f.handler,
            runs=runs,
            seconds=statistics.median(h for h, _b in pairs),
            boto3_seconds=statistics.median(b for _h, b in pairs),
            ratio=statistics.median(h / b for h, b in pairs),
            precompiled=precompiled,
        )
        for f, pairs in samples.items()
    ]


def import_figures(imports: Sequence[FunctionImport]) -> dict[str, float]:
    """Flat figures: `boto3_s`; per handler module `<module>_s` / `<module>_ratio` (its slowest function: the
    keys bench/__main__.py reads); per function `<module folder>/<key>_s` / `_ratio`."""
    result: dict[str, float] = {"boto3_s": statistics.median(i.boto3_seconds for i in imports)}
    for i in imports:
        module = i.handler.rsplit(".", 1)[0]
        result[f"{module}_s"] = max(result.get(f"{module}_s", 0.0), i.seconds)
        result[f"{module}_ratio"] = max(result.get(f"{module}_ratio", 0.0), i.ratio)
        result[f"{i.module}/{i.key}_s"] = i.seconds
        result[f"{i.module}/{i.key}_ratio"] = i.ratio
    return result


def cold_imports(runs: int = RUNS) -> dict[str, float]:
    """Median seconds per handler module and its ratio to boto3 in the same run, for every deployed function."""
    return import_figures(function_imports(runs))


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


def zip_bytes_by_module(functions: Sequence[DeployedFunction] | None = None) -> dict[str, int]:
    """Each module's function package (all of a module's functions share one zip)."""
    functions = functions if functions is not None else deployed_functions()
    packages = {f.module: f.package for f in functions}
    return {module: zip_bytes(package) for module, package in packages.items()}


def measure(runs: int = RUNS) -> dict[str, Any]:
    functions = deployed_functions()
    imports = function_imports(runs, functions)
    one_each = list({f.module: f for f in reversed(functions)}.values())  # each module's first function
    precompiled = function_imports(runs, one_each, precompiled=True)
    return {
        "runs": runs,
        "functions": [asdict(i) for i in imports],
        "precompiled": [asdict(i) for i in precompiled],
        "imports": import_figures(imports),
        "zip_bytes": zip_bytes_by_module(functions),
    }


def _verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def markdown(results: Mapping[str, Any]) -> list[str]:
    functions = results["functions"]
    precompiled = {f["module"]: f for f in results.get("precompiled", [])}
    zips = results["zip_bytes"]
    rows = [
        "| module | function | handler | cold import | `import boto3` (paired) | "
        f"ratio (target ≤ {IMPORT_TARGET:g}x) | | ratio if the zip shipped .pyc |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in functions:
        compiled = precompiled.get(f["module"])
        shipped_pyc = f"{compiled['ratio']:.2f}x ({compiled['key']})" if compiled else ""
        rows.append(
            f"| {f['module']} | {f['key']} | `{f['handler']}` | {f['seconds'] * 1000:,.0f} ms | "
            f"{f['boto3_seconds'] * 1000:,.0f} ms | {f['ratio']:.2f}x | {_verdict(f['ratio'] <= IMPORT_TARGET)} | "
            f"{shipped_pyc} |"
        )
    rows += [
        "",
        f"| module | function package (zip) | target < {ZIP_TARGET_BYTES // 1024} KB |",
        "|---|---|---|",
        *(
            f"| {module} | {size / 1024:.1f} KB | {_verdict(size < ZIP_TARGET_BYTES)} |"
            for module, size in sorted(zips.items())
        ),
    ]
    return [
        *rows,
        "",
        "Cold import: each function's handler module imported (and its handler looked up) in a fresh interpreter "
        f"({sys.version.split()[0]}) from its package's files alone (what modules/internal/package.tf zips: no "
        ".pyc, and none written, as on Lambda's read-only /var/task, so our code is compiled at every cold start "
        "while boto3 and Powertools come compiled), with that function's environment (its module's OPS_* "
        "variables, POWERTOOLS_*, the region); right before or after it (alternating by round) an `import boto3` "
        f"in the same environment and interpreter; {results['runs']} rounds. Ratio: the median of each pair's "
        "handler / boto3 seconds (the handler's import includes boto3's and Powertools'); interpreter start is not "
        "timed. Last column: the same for each module's first function with .pyc compiled beside the sources "
        "(unchecked-hash), which package.tf does not do. Zip: that package, deflated.",
    ]


def main() -> None:
    results = measure()
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print("\n".join(markdown(results)))


if __name__ == "__main__":
    main()
