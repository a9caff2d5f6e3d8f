"""Tier 1: for every public module, every environment variable its handlers' code reads is set, and every one
it sets is read.

What a module sets comes from modules/internal: its own variables, the OPS_* of each typed group (scope,
targets, retention, completion) the module passes, and the extras of `environment`. What the code reads is
scanned in the code its handlers run on (`ops_automation/<module>/` and the shared `core/`).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from tests.support.hcl_tree import Module, automation_modules, internal_call, load_module, module_functions
from tests.support.python_scan import ENV_NAME, env_var_reads, handler_code
from tests.support.terraform_env import repo_root

ROOT = repo_root()
PACKAGE = ROOT / "lambda_src" / "ops_automation"
INTERNAL = ROOT / "modules" / "internal"
MODULES = automation_modules()

# Set by the module but never read by name in our code: Powertools reads them itself.
READ_BY_POWERTOOLS = {
    "POWERTOOLS_SERVICE_NAME": "Logger/Metrics service name (the `service` dimension)",
    "POWERTOOLS_METRICS_NAMESPACE": "Metrics namespace of the EMF records",
    "POWERTOOLS_LOG_LEVEL": "Logger level",
}
# Set by the module but read by botocore, not by name in our code: the STS endpoint of every AssumeRole (Regional:
# its session tokens are valid in opt-in regions too; modules/internal main.tf says why).
READ_BY_BOTOCORE = {"AWS_STS_REGIONAL_ENDPOINTS": "the STS endpoint botocore calls (regional)"}
# Read by our code but set by the Lambda runtime, not by Terraform.
SET_BY_LAMBDA_RUNTIME = {"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_LAMBDA_FUNCTION_NAME"}
GROUPS = ("scope", "targets", "retention", "completion", "restore_test")
# The reader of each group in core/config.py: a module's config composes the groups it uses, and the scan of the
# shared core sees every reader, so a group's variables are required only of a module whose package uses its reader.
GROUP_READERS = {
    "scope": ("ScopeConfig",),
    "targets": ("InstanceTargetConfig", "VolumeTargetConfig"),
    "retention": ("RetentionConfig",),
    "completion": ("CompletionConfig",),
    # Restore tests (issue 13): OPS_RESTORE_TEST, one JSON object (core/restore.py RestoreTestConfig.from_env).
    "restore_test": ("RestoreTestConfig",),
}

# `KEY = value` inside an HCL object expression that python-hcl2 left as a string (merge({...}), etc.).
_OBJECT_KEY_IN_EXPRESSION = re.compile(r'(?:(?<=[{,\s])|^)"?([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)"?\s*=(?!=)')


def env_keys(value: Any) -> set[str]:
    """Environment variable names in an (unevaluated) HCL map value."""
    if isinstance(value, dict):
        keys = {key for key in value if ENV_NAME.match(key)}
        return keys | {key for item in value.values() for key in env_keys(item)}
    if isinstance(value, list):
        return {key for item in value for key in env_keys(item)}
    if isinstance(value, str):
        return set(_OBJECT_KEY_IN_EXPRESSION.findall(value))
    return set()


def _internal() -> Module:
    return load_module(INTERNAL)


def internal_always() -> set[str]:
    """What internal sets for every function: the literal map inside local.function_environment."""
    environment = _internal().locals.get("function_environment")
    assert environment, "modules/internal has no local.function_environment"
    return env_keys(environment)


def group_variables(group: str) -> set[str]:
    value = _internal().locals.get(f"{group}_environment")
    assert value is not None, f"modules/internal has no local.{group}_environment"
    return env_keys(value)


def module_set_env(module_dir: Any) -> dict[str, str]:
    """Env var name -> where it comes from, for one public module."""
    call = internal_call(module_dir)
    found = dict.fromkeys(internal_always(), "modules/internal")
    for group in GROUPS:
        if group in call:
            found.update(dict.fromkeys(group_variables(group), f"modules/internal ({group})"))
    found.update(dict.fromkeys(env_keys(call.get("environment", {})), f"modules/{module_dir.name} (environment)"))
    return found


def code_reads(module_dir: Any) -> dict[str, list[str]]:
    handlers = {fn.handler for fn in module_functions(module_dir)}
    paths = {path for handler in handlers for path in handler_code(PACKAGE, handler)}
    missing = sorted(h for h in handlers if not handler_code(PACKAGE, h))
    assert not missing, f"{module_dir.name}: handler modules not found in {PACKAGE.relative_to(ROOT)}: {missing}"
    reads = env_var_reads(*sorted(paths))
    assert reads, f"{module_dir.name}: the env scan found no variable at all: the scan or the package is broken"
    return reads


def test_env_key_extraction_reads_maps_and_expressions() -> None:
    value = [{"variables": '${merge(var.environment, {OPS_A = var.x, "OPS_B" = "1", lower = 2})}'}, {"OPS_C": "x"}]
    assert env_keys(value) == {"OPS_A", "OPS_B", "OPS_C"}


def test_internal_encodes_every_group() -> None:
    for group in GROUPS:
        assert group in _internal().variables, f"modules/internal has no variable {group!r}"
        assert group_variables(group), f"local.{group}_environment sets no variable"
    assert "OPS_ALERT_TOPIC_ARN" in internal_always()
    assert "OPS_IDEMPOTENCY_TABLE" not in internal_always()


def groups_composed(module_dir: Any) -> set[str]:
    """The groups whose reader the module's own package names (its config composes them)."""
    packages = {PACKAGE / fn.handler.split(".")[1] for fn in module_functions(module_dir)}
    text = "\n".join(path.read_text(encoding="utf-8") for package in packages for path in package.glob("*.py"))
    return {group for group, readers in GROUP_READERS.items() if any(re.search(rf"\b{r}\b", text) for r in readers)}


def test_groups_composed_sees_the_readers_a_module_uses() -> None:
    by_name = {module_dir.name: groups_composed(module_dir) for module_dir in MODULES}
    assert by_name["ebs-snapshot"] == set(GROUPS)
    assert by_name["ami-backup"] == set(GROUPS)
    if "deregister-cleanup" in by_name:
        assert by_name["deregister-cleanup"] == {"scope"}
    if "snapshot-copy" in by_name:
        assert by_name["snapshot-copy"] == {"scope", "retention", "completion"}


@pytest.mark.parametrize("module_dir", MODULES, ids=[p.name for p in MODULES])
def test_every_variable_the_code_reads_is_set_by_the_module(module_dir: Any) -> None:
    set_by_module = module_set_env(module_dir)
    unused_groups = set(GROUPS) - groups_composed(module_dir)
    not_needed = {name for group in unused_groups for name in group_variables(group)}
    missing = {
        name: where
        for name, where in code_reads(module_dir).items()
        if name not in set_by_module and name not in SET_BY_LAMBDA_RUNTIME and name not in not_needed
    }
    assert not missing, f"{module_dir.name}: read by the code but set by no module: {missing}"


@pytest.mark.parametrize("module_dir", MODULES, ids=[p.name for p in MODULES])
def test_every_variable_the_module_sets_is_read(module_dir: Any) -> None:
    reads = code_reads(module_dir)
    unread = {
        name: origin
        for name, origin in module_set_env(module_dir).items()
        if name not in reads and name not in READ_BY_POWERTOOLS and name not in READ_BY_BOTOCORE
    }
    assert not unread, f"{module_dir.name}: set by the module but read by nothing: {unread}"


def test_botocore_variables_are_set() -> None:
    """The exemption above only holds if internal really sets them."""
    environment = internal_always()
    assert set(READ_BY_BOTOCORE) <= environment, sorted(set(READ_BY_BOTOCORE) - environment)


def test_powertools_variables_are_set() -> None:
    """The exemption above only holds if internal really sets them (Powertools falls back silently)."""
    missing = set(READ_BY_POWERTOOLS) - internal_always()
    assert not missing, f"Powertools variables not set by modules/internal: {sorted(missing)}"
