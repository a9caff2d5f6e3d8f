"""Tier 1: the Terraform parses, every input and output is documented, constrained inputs are validated."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from tests.support.hcl_tree import load_module, load_tf, public_modules, terraform_dirs, tf_files
from tests.support.terraform_env import PACKAGE_FILE, repo_root

ROOT = repo_root()
PUBLIC = public_modules()
# Inputs of every public module whose valid range is narrower than their type, by name or naming convention:
# numbers are covered by test_numeric_public_inputs_are_bounded.
_CONSTRAINED_INPUT = re.compile(r"^(name|schedule_expression|log_retention_days|regions|.*_ids|.*_arns?)$")
CONSTRAINED = [
    (module_dir, name)
    for module_dir in PUBLIC
    for name in load_module(module_dir).variables
    if _CONSTRAINED_INPUT.match(name) and name not in {"tags"}
]
# More than one sentence: a sentence end followed by a capitalised word (`e.g. The` is no sentence end).
_SECOND_SENTENCE = re.compile(r"(?<!\be\.g)(?<!\bi\.e)[.!?]\s+[A-Z]")


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _ids(dirs: list[Path]) -> list[str]:
    return [_rel(d) for d in dirs]


TF_FILES = tf_files()
TF_DIRS = terraform_dirs()


def test_the_tree_has_terraform() -> None:
    assert (ROOT / "modules" / "internal").is_dir(), "modules/internal is missing"
    assert PUBLIC, "no public module under modules/"
    assert any(_rel(d).startswith("examples/") for d in TF_DIRS), "no example under examples/ has .tf files"


@pytest.mark.parametrize("path", TF_FILES, ids=_ids(TF_FILES))
def test_file_parses(path: Path) -> None:
    parsed = load_tf(path)
    assert isinstance(parsed, dict)


def _description_problem(description: object) -> str | None:
    if not isinstance(description, str) or not description.strip():
        return "has no description"
    text = " ".join(description.split())
    if not text[0].isupper():
        return f"description does not start with a capital letter: {text!r}"
    if not text.endswith("."):
        return f"description is not a sentence ending with '.': {text!r}"
    if _SECOND_SENTENCE.search(text):
        return f"description is more than one sentence: {text!r}"
    return None


@pytest.mark.parametrize("module_dir", TF_DIRS, ids=_ids(TF_DIRS))
def test_variables_are_typed_and_described(module_dir: Path) -> None:
    problems = []
    for name, body in load_module(module_dir).variables.items():
        if "type" not in body:
            problems.append(f"variable {name}: has no type")
        if problem := _description_problem(body.get("description")):
            problems.append(f"variable {name}: {problem}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("module_dir", TF_DIRS, ids=_ids(TF_DIRS))
def test_outputs_are_described(module_dir: Path) -> None:
    problems = [
        f"output {name}: {problem}"
        for name, body in load_module(module_dir).outputs.items()
        if (problem := _description_problem(body.get("description")))
    ]
    assert not problems, "\n".join(problems)


def _validations(body: dict[str, object]) -> list[dict[str, object]]:
    validations = body.get("validation", [])
    return validations if isinstance(validations, list) else [validations]  # type: ignore[list-item]


@pytest.mark.parametrize(("module_dir", "variable"), CONSTRAINED, ids=[f"{m.name}/{v}" for m, v in CONSTRAINED])
def test_constrained_public_input_is_validated(module_dir: Path, variable: str) -> None:
    variables = load_module(module_dir).variables
    validations = _validations(variables[variable])
    assert validations, f"variable {variable} has no validation block"
    for validation in validations:
        assert f"var.{variable}" in str(validation.get("condition", "")), (
            f"a validation of {variable} does not test var.{variable}: {validation}"
        )
        assert str(validation.get("error_message", "")).strip(), f"a validation of {variable} has no error_message"


@pytest.mark.parametrize("module_dir", public_modules(), ids=_ids(public_modules()))
def test_numeric_public_inputs_are_bounded(module_dir: Path) -> None:
    """A number input of a public module always has a valid range; without validation the user finds it at apply."""
    unbounded = [
        name
        for name, body in load_module(module_dir).variables.items()
        if str(body.get("type")) == "number" and not _validations(body)
    ]
    assert not unbounded, f"number inputs without validation: {unbounded}"


def _uses_archive_provider(parsed: dict[str, Any]) -> bool:
    """An archive_* data source/resource, or hashicorp/archive in required_providers (comments excluded)."""
    blocks = [*parsed.get("data", []), *parsed.get("resource", [])]
    if any(kind.startswith("archive_") for block in blocks for kind in block):
        return True
    return "hashicorp/archive" in str([block.get("required_providers") for block in parsed.get("terraform", [])])


def test_archive_provider_only_in_package_file() -> None:
    """The tier-2/3 harness swaps one file to drop the (not mirrored) archive provider; nothing else may use it."""
    package = ROOT / PACKAGE_FILE
    assert package.is_file(), f"{PACKAGE_FILE} is missing"
    offenders = [_rel(path) for path in TF_FILES if path != package and _uses_archive_provider(load_tf(path))]
    assert not offenders, f"archive provider used outside {PACKAGE_FILE}: {offenders}"
    parsed = load_tf(package)
    assert set(parsed) <= {"data", "locals", "terraform"}, f"{PACKAGE_FILE} declares more than packaging: {set(parsed)}"
    data_sources = {kind for block in parsed.get("data", []) for kind in block}
    assert data_sources == {"archive_file"}, f"{PACKAGE_FILE} data sources: {data_sources}"
    defined = {name for block in parsed.get("locals", []) for name in block}
    assert {"package_file", "package_hash"} <= defined, f"{PACKAGE_FILE} must define local.package_file/package_hash"


def test_package_file_locals_are_self_contained() -> None:
    """The stand-in defines only package_file and package_hash; other locals of package.tf would vanish with it."""
    package_locals = {name for block in load_tf(ROOT / PACKAGE_FILE).get("locals", []) for name in block}
    extra = package_locals - {"package_file", "package_hash"}
    module_dir = ROOT / PACKAGE_FILE.parent
    used_elsewhere = sorted(
        name
        for name in extra
        for path in module_dir.glob("*.tf")
        if path.name != PACKAGE_FILE.name and re.search(rf"\blocal\.{re.escape(name)}\b", path.read_text("utf-8"))
    )
    assert not used_elsewhere, f"locals of {PACKAGE_FILE} used by other files: {used_elsewhere}"


MODULES = sorted(p for p in (ROOT / "modules").iterdir() if p.is_dir()) if (ROOT / "modules").is_dir() else []


@pytest.mark.parametrize("module_dir", MODULES, ids=[p.name for p in MODULES])
def test_module_has_mocked_terraform_tests(module_dir: Path) -> None:
    """Tier 2 runs `terraform test` per module; a module without test files would pass it vacuously."""
    test_files = sorted((module_dir / "tests").glob("*.tftest.hcl"))
    assert test_files, f"{_rel(module_dir)} has no tests/*.tftest.hcl"
    unmocked = [_rel(f) for f in test_files if not re.search(r'mock_provider\s+"aws"', f.read_text("utf-8"))]
    assert not unmocked, f'test files without mock_provider "aws" (they would need real credentials): {unmocked}'
