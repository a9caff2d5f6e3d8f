"""Tier 2: terraform fmt, init + validate of every module and example, and the modules' `terraform test` files.

Runs on a staged copy of the tree in which modules/internal/package.tf is replaced by a stand-in (the
archive provider is not mirrored), against the hashicorp/aws provider from a local filesystem mirror.
Without terraform or the mirror the tier is skipped with a loud reason, and fails on CI (CI=true).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import pytest
from tests.support.hcl_tree import terraform_dirs
from tests.support.terraform_env import (
    TerraformCommandError,
    TerraformUnavailable,
    find_terraform,
    repo_root,
    require_terraform,
    run_terraform,
    staged_copy,
    terraform_env,
    write_cli_config,
)

ROOT = repo_root()
TF_DIRS = [path.relative_to(ROOT) for path in terraform_dirs()]
TESTED_DIRS = [d for d in TF_DIRS if any((ROOT / d / "tests").glob("*.tftest.hcl"))]
FMT_TREES = [name for name in ("modules", "examples") if (ROOT / name).is_dir()]


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"TIER 2 CANNOT RUN ON CI: {reason}", pytrace=False)
    pytest.skip(f"TIER 2 NOT RUN: {reason}")


@dataclass
class TerraformSession:
    """The staged tree, every directory `terraform init`-ed once, and the `terraform test` runs under way."""

    stage: Path
    env: dict[str, str]
    init_errors: dict[Path, TerraformCommandError] = field(default_factory=dict)
    test_runs: dict[Path, Future[subprocess.CompletedProcess[str]]] = field(default_factory=dict)

    def directory(self, relative: Path) -> Path:
        if relative in self.init_errors:
            raise self.init_errors[relative]
        return self.stage / relative


@pytest.fixture(scope="session")
def terraform_binary() -> str:
    terraform = find_terraform()
    if terraform is None:
        _unavailable("no `terraform` binary on PATH (or $TERRAFORM)")
    return terraform


@pytest.fixture(scope="session")
def terraform_session(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TerraformSession]:
    try:
        _, mirror = require_terraform()
    except TerraformUnavailable as error:
        _unavailable(error.reason)
    base = tmp_path_factory.mktemp("tier2")
    cli_config = write_cli_config(base / "cli", mirror)
    session = TerraformSession(stage=staged_copy(base / "stage"), env=terraform_env(cli_config))
    # Inits run one after the other: Terraform does not promise a concurrency-safe plugin cache.
    for relative in TF_DIRS:
        try:
            run_terraform(
                ["init", "-backend=false", "-input=false", "-no-color"], session.stage / relative, session.env
            )
        except TerraformCommandError as error:
            session.init_errors[relative] = error
    # `terraform test` dominates the tier (a provider start per run block): start the selected ones now,
    # side by side, while the validate tests run.
    selected: list[Path] = [
        Path(str(item.callspec.params["relative"]))
        for item in request.session.items
        if isinstance(item, pytest.Function) and item.originalname == test_terraform_test.__name__
    ]
    with ThreadPoolExecutor(max_workers=max(1, min(len(TESTED_DIRS), os.cpu_count() or 1))) as pool:
        for relative in selected:
            if relative not in session.init_errors:
                session.test_runs[relative] = pool.submit(
                    run_terraform, ["test", "-no-color"], session.stage / relative, session.env, check=False
                )
        yield session


@pytest.mark.parametrize("tree", FMT_TREES)
def test_fmt(tree: str, terraform_binary: str) -> None:
    # fmt reads no providers, so it checks the real tree, not the staged copy.
    env = {key: value for key, value in os.environ.items() if key != "TF_CLI_CONFIG_FILE"} | {"CHECKPOINT_DISABLE": "1"}
    result = run_terraform(["fmt", "-check", "-recursive", "-diff", "-no-color", tree], ROOT, env, check=False)
    assert result.returncode == 0, f"terraform fmt would change files under {tree}/:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("relative", TF_DIRS, ids=[str(d) for d in TF_DIRS])
def test_init_and_validate(relative: Path, terraform_session: TerraformSession) -> None:
    run_terraform(["validate", "-no-color"], terraform_session.directory(relative), terraform_session.env)


@pytest.mark.parametrize("relative", TESTED_DIRS, ids=[str(d) for d in TESTED_DIRS])
def test_terraform_test(relative: Path, terraform_session: TerraformSession) -> None:
    terraform_session.directory(relative)
    result = terraform_session.test_runs[relative].result()
    assert result.returncode == 0, f"terraform test failed in {relative}:\n{result.stdout}\n{result.stderr}"
    summary = re.search(r"(\d+) passed, (\d+) failed", result.stdout)
    assert summary, result.stdout
    assert int(summary.group(1)) > 0 and int(summary.group(2)) == 0, result.stdout


def test_stand_in_replaced_the_archive_provider(terraform_session: TerraformSession) -> None:
    """The staged internal module must have installed no provider but hashicorp/aws."""
    directory = terraform_session.directory(Path("modules/internal"))
    providers = directory / ".terraform" / "providers" / "registry.terraform.io"
    installed = sorted(p.relative_to(providers).as_posix() for p in providers.glob("*/*"))
    assert installed == ["hashicorp/aws"], installed
