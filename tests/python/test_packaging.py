"""Packaging of the operator CLI: the console script pyproject.toml declares, the lock files that pin it, and the
line between the CLI and the functions (no function zip holds it, no handler imports it, and an install leaves
nothing in lambda_src/, which every function zip is made from)."""

from __future__ import annotations

import ast
import configparser
import importlib
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from bench import footprint

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "lambda_src"
PACKAGE = SOURCE / "ops_automation"
CLI = "ops_automation.cli"


def _pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _pins(lock: str) -> dict[str, str]:
    text = (ROOT / lock).read_text(encoding="utf-8")
    return {name.lower(): version for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", text, re.M)}


def test_the_console_script_is_the_cli_entry_point(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    scripts = _pyproject()["project"]["scripts"]  # type: ignore[index]
    assert scripts == {"ops-automation": f"{CLI}.main:main"}
    module, _, attribute = scripts["ops-automation"].partition(":")
    main = getattr(importlib.import_module(module), attribute)
    monkeypatch.setattr(sys, "argv", ["ops-automation", "--help"])

    with pytest.raises(SystemExit) as exited:
        main()

    assert exited.value.code == 0
    usage = capsys.readouterr().out
    assert usage.startswith("Usage: ops-automation")
    for command in ("plan", "history", "report", "invoke"):
        assert re.search(rf"^  {command}\s", usage, re.M), f"{command} is not a command"


def test_lambda_src_holds_nothing_but_the_package() -> None:
    """An install writes its egg-info next to the packages unless setup.cfg moves it: it would ship in every zip."""
    assert sorted(path.name for path in SOURCE.iterdir() if path.name != "__pycache__") == ["ops_automation"]
    settings = configparser.ConfigParser()
    settings.read(ROOT / "setup.cfg")
    assert settings["egg_info"]["egg_base"] == "."


def _is_cli(module: str) -> bool:
    return module == CLI or module.startswith(f"{CLI}.")


def _imports(path: Path) -> set[str]:
    return _imports_in(path.read_text(encoding="utf-8"), ".".join(path.relative_to(SOURCE).with_suffix("").parts[:-1]))


def _imports_in(code: str, package: str) -> set[str]:
    """Every module the code of a module in `package` imports, relative imports made absolute."""
    found = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def test_no_function_code_imports_the_cli() -> None:
    """The CLI imports the functions' code, never the other way round: a function zip has no cli/ to import."""
    function_code = [path for path in PACKAGE.rglob("*.py") if "cli" not in path.relative_to(PACKAGE).parts[:1]]
    assert len(function_code) > 40
    offenders = {
        str(path.relative_to(SOURCE)): sorted(
            name for name in _imports(path) if name == CLI or name.startswith(CLI + ".")
        )
        for path in function_code
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_import_scan_sees_relative_and_absolute_imports() -> None:
    handlers = "ops_automation.ami_backup"
    assert f"{CLI}.plan" in _imports_in("from ..cli import plan\n", handlers)
    assert f"{CLI}.main" in _imports_in("from ..cli.main import cli\n", handlers)
    assert f"{CLI}.main" in _imports_in("import ops_automation.cli.main\n", handlers)
    assert not {name for name in _imports_in("from ..core import clients\n", handlers) if _is_cli(name)}


def test_no_function_package_ships_the_cli() -> None:
    for package in ("ami_backup", "ebs_snapshot", "snapshot_copy", "deregister_cleanup", "instance_scheduler"):
        files = footprint.package_files(package)
        assert files and not [path for path in files if "cli" in path.relative_to(PACKAGE).parts[:1]]
    assert footprint.largest_zip_bytes() == max(
        footprint.zip_bytes(package.parent.name)
        for package in PACKAGE.glob("*/__init__.py")
        if package.parent.name not in {"core", "cli"}
    )


def test_the_cli_requirements_are_read_by_pyproject_and_pinned_with_the_runtime_and_dev_locks() -> None:
    dynamic = _pyproject()["tool"]["setuptools"]["dynamic"]  # type: ignore[index]
    assert dynamic["optional-dependencies"]["cli"] == {"file": ["requirements-cli.in"]}
    specifiers = (ROOT / "requirements-cli.in").read_text(encoding="utf-8").splitlines()
    # pyproject reads the file as requirement lines: an option line (-c, -r) there breaks the build.
    assert not [line for line in specifiers if line.strip().startswith("-")]
    assert {line.split(">")[0].split("<")[0].strip() for line in specifiers if line and not line.startswith("#")} == {
        "click",
        "rich",
        "jinja2",
    }
    cli, dev, runtime = _pins("requirements-cli.txt"), _pins("requirements-dev.txt"), _pins("requirements.txt")
    assert {"click", "rich", "jinja2"} <= set(cli)
    for other in (dev, runtime):
        assert {name: (cli[name], other[name]) for name in cli.keys() & other.keys() if cli[name] != other[name]} == {}
    assert "-c requirements-cli.txt" in (ROOT / "requirements-dev.in").read_text(encoding="utf-8").splitlines()


def _core_modules_imported(package: str) -> set[str]:
    """The core modules the code of `ops_automation/<package>` imports, directly or through other core modules."""
    core = PACKAGE / "core"
    todo = list((PACKAGE / package).rglob("*.py"))
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports(path):
            parts = name.split(".")
            if parts[:2] == ["ops_automation", "core"] and len(parts) > 2 and (core / f"{parts[2]}.py").is_file():
                todo.append(core / f"{parts[2]}.py")
    return {path.stem for path in seen if path.parent == core}


def _function_packages() -> list[str]:
    return sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py") if p.parent.name not in {"core", "cli"})


def test_the_core_modules_left_out_of_each_zip_are_exactly_those_its_code_never_imports() -> None:
    """modules/internal/package.tf's `core_not_imported`: a module listed there but imported would fail on Lambda
    with ImportError; one missing only makes the zip bigger, but the list is kept exact so it is never stale."""
    core = {path.stem for path in (PACKAGE / "core").glob("*.py") if path.stem != "__init__"}
    listed = footprint.core_not_imported()
    assert sorted(listed) == sorted(package.replace("_", "-") for package in _function_packages())
    for package in _function_packages():
        assert sorted(listed[package.replace("_", "-")]) == sorted(core - _core_modules_imported(package)), package


def test_the_import_closure_follows_core_modules_through_each_other() -> None:
    """ssm_runcommand imports no purge directly nor through anything; ami_backup reaches restore through its own
    package and purge through the core (so the closure is not just the direct imports)."""
    assert "purge" not in _core_modules_imported("ssm_runcommand")
    assert {"restore", "purge", "ledger", "clients"} <= _core_modules_imported("ami_backup")


@pytest.mark.parametrize("package", _function_packages())
def test_every_handler_imports_from_its_zip_alone(package: str, tmp_path: Path) -> None:
    """What Lambda does on a cold start: the zip's files alone on the path (plus the installed boto3 and Powertools)
    and every handler module of the package imports."""
    for path in footprint.package_files(package):
        target = tmp_path / path.relative_to(SOURCE)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    modules = sorted(
        f"ops_automation.{package}.{path.stem}" for path in (PACKAGE / package).glob("*.py") if path.stem != "__init__"
    )
    assert f"ops_automation.{package}.handlers" in modules
    probe = f"import sys; sys.path.insert(0, {str(tmp_path)!r}); " + "; ".join(f"import {m}" for m in modules)
    probe += f"; assert sys.modules['ops_automation'].__file__.startswith({str(tmp_path)!r})"
    env = {"AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_SERVICE_NAME": package.replace("_", "-"), "PATH": ""}
    result = subprocess.run([sys.executable, "-I", "-c", probe], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
