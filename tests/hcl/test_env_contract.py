"""Tier 1: every environment variable the Python reads is set by the modules, and every one they set is read."""

from __future__ import annotations

import re
from typing import Any

from tests.support.hcl_tree import Module, calls_to, load_module, resolve_locals
from tests.support.python_scan import ENV_NAME, env_var_reads
from tests.support.terraform_env import repo_root

ROOT = repo_root()
PACKAGE = ROOT / "lambda_src" / "ops_automation"
INTERNAL = ROOT / "modules" / "internal"
AMI_BACKUP = ROOT / "modules" / "ami-backup"

# Set by the module but never read by name in our code: Powertools reads them itself.
READ_BY_POWERTOOLS = {
    "POWERTOOLS_SERVICE_NAME": "Logger/Metrics service name (the `service` dimension)",
    "POWERTOOLS_METRICS_NAMESPACE": "Metrics namespace of the EMF records",
    "POWERTOOLS_LOG_LEVEL": "Logger level",
}
# Read by our code but set by the Lambda runtime, not by Terraform.
SET_BY_LAMBDA_RUNTIME = {"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_LAMBDA_FUNCTION_NAME"}

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


def function_environment(internal: Module) -> Any:
    functions = [body for (kind, _), body in internal.resources.items() if kind == "aws_lambda_function"]
    assert functions, "modules/internal defines no aws_lambda_function"
    return resolve_locals([fn.get("environment") for fn in functions], internal.locals)


def _passthrough_variables(environment: Any) -> set[str]:
    return set(re.findall(r"\bvar\.([a-z_][a-z0-9_]*)", str(environment)))


def module_set_env() -> dict[str, str]:
    """Env var name -> which module sets it (internal's own map, plus what ami-backup passes in)."""
    internal = load_module(INTERNAL)
    environment = function_environment(internal)
    found = dict.fromkeys(env_keys(environment), "modules/internal")
    caller = load_module(AMI_BACKUP)
    calls = calls_to(caller, "internal")
    assert calls, "modules/ami-backup does not call modules/internal"
    for variable in _passthrough_variables(environment) & set(internal.variables):
        for call in calls:
            if variable in call:
                value = resolve_locals(call[variable], caller.locals)
                found.update(dict.fromkeys(env_keys(value), "modules/ami-backup"))
    return found


def test_env_key_extraction_reads_maps_and_expressions() -> None:
    value = [{"variables": '${merge(var.environment, {OPS_A = var.x, "OPS_B" = "1", lower = 2})}'}, {"OPS_C": "x"}]
    assert env_keys(value) == {"OPS_A", "OPS_B", "OPS_C"}


def test_every_variable_the_code_reads_is_set_by_the_module() -> None:
    reads = env_var_reads(PACKAGE)
    assert reads, "the env scan found no variable at all: the scan or the package is broken"
    set_by_module = module_set_env()
    missing = {
        name: where for name, where in reads.items() if name not in set_by_module and name not in SET_BY_LAMBDA_RUNTIME
    }
    assert not missing, f"read by the code but set by no module: {missing}"


def test_every_variable_the_module_sets_is_read() -> None:
    reads = env_var_reads(PACKAGE)
    unread = {
        name: module
        for name, module in module_set_env().items()
        if name not in reads and name not in READ_BY_POWERTOOLS
    }
    assert not unread, f"set by the module but read by nothing: {unread}"


def test_powertools_variables_are_set() -> None:
    """The exemption above only holds if the module really sets them (Powertools falls back silently)."""
    missing = set(READ_BY_POWERTOOLS) - set(module_set_env())
    assert not missing, f"Powertools variables not set by modules/internal: {sorted(missing)}"
