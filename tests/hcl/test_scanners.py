"""Tier 1: the static scanners behind the contract tests find what they must, so those tests can fail."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.support.hcl_tree import resolve_locals
from tests.support.python_scan import env_var_reads, handler_code

ENV_CODE = """
import os
from os import getenv

NAME_VAR = "OPS_FROM_CONSTANT"

def settings(env):
    return _required(env, "OPS_VIA_HELPER"), env["OPS_SUBSCRIPT"], "OPS_MEMBERSHIP" in env

def more():
    return os.environ.get("OPS_GET"), os.getenv("AWS_REGION"), getenv("OPS_GETENV"), os.environ[NAME_VAR]

LABEL = "NOT_AN_ENV_READ"
MESSAGE = "mentions OPS_INLINE inside a sentence, not a name"
"""


def _package(tmp_path: Path, code: str) -> Path:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "mod.py").write_text(textwrap.dedent(code), encoding="utf-8")
    return package


def test_env_scan_finds_every_read_style(tmp_path: Path) -> None:
    reads = env_var_reads(_package(tmp_path, ENV_CODE))
    assert set(reads) == {
        "OPS_FROM_CONSTANT",
        "OPS_VIA_HELPER",
        "OPS_SUBSCRIPT",
        "OPS_MEMBERSHIP",
        "OPS_GET",
        "AWS_REGION",
        "OPS_GETENV",
    }


def test_handler_code_is_its_module_and_the_core(tmp_path: Path) -> None:
    package = tmp_path / "ops_automation"
    for folder in ("core", "ami_backup", "other"):
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("", encoding="utf-8")
    (package / "__init__.py").write_text("", encoding="utf-8")
    paths = handler_code(package, "ops_automation.ami_backup.handlers.plan_handler")
    assert set(paths) == {package / "ami_backup", package / "core", package / "__init__.py"}
    assert handler_code(package, "ops_automation.missing.handlers.plan_handler") == []
    assert handler_code(package, "elsewhere.ami_backup.handlers.plan_handler") == []


def test_locals_resolve_in_templates_and_expressions() -> None:
    locals_ = {"key": "ops:owner", "arns": ["arn:${local.partition}:ec2:*::image/*"], "partition": "aws"}
    assert resolve_locals("aws:ResourceTag/${local.key}", locals_) == "aws:ResourceTag/ops:owner"
    assert resolve_locals("${local.arns}", locals_) == ["arn:aws:ec2:*::image/*"]
    assert resolve_locals("${concat(local.arns, var.x)}", locals_) == '${concat(["arn:aws:ec2:*::image/*"], var.x)}'
    assert resolve_locals("${local.missing}", locals_) == "${local.missing}"
