"""Which policy is deployed how: the functions' configuration as Lambda holds it (or as `terraform output -json`
reports it), parsed by the same `*Config.from_env` the functions run, so the CLI never re-implements a setting."""

from __future__ import annotations

import importlib
import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from ..core.config import CommonConfig, ScopeConfig
from ..core.errors import ConfigError, error_code
from ..core.organization import resolve_targets
from ..core.scope import Target
from .context import CannotLook, Operator, clients_for, looking

WORKER = "worker"
NOT_FOUND = "ResourceNotFoundException"


@dataclass(frozen=True)
class Module:
    """A Terraform module as the CLI sees it: `name` is the handlers' SERVICE (and the ledger's key prefix);
    `scheduled` are the keys of its scheduled functions (`function_name = "${var.name}-${key}"` in
    modules/internal/functions.tf)."""

    name: str
    package: str
    scheduled: tuple[str, ...]
    config_class: str

    def config_of(self, environment: Mapping[str, str]) -> Any:
        decisions = importlib.import_module(f"ops_automation.{self.package}.decisions")
        return getattr(decisions, self.config_class).from_env(environment)


MODULES: dict[str, Module] = {
    module.name: module
    for module in (
        Module("ami-backup", "ami_backup", ("planner",), "AmiBackupConfig"),
        Module("ebs-snapshot", "ebs_snapshot", ("planner",), "EbsSnapshotConfig"),
        Module("snapshot-copy", "snapshot_copy", ("planner",), "SnapshotCopyConfig"),
        Module("deregister-cleanup", "deregister_cleanup", ("sweeper",), "DeregisterCleanupConfig"),
        Module("instance-scheduler", "instance_scheduler", ("starter", "stopper"), "InstanceSchedulerConfig"),
        Module("ssm-runcommand", "ssm_runcommand", ("planner",), "RunCommandConfig"),
    )
}


@dataclass(frozen=True)
class FunctionInfo:
    name: str
    handler: str
    environment: Mapping[str, str]


@dataclass(frozen=True)
class Deployed:
    """One policy of one module as deployed. `functions` is keyed like the module's `functions` map (planner,
    worker, sweeper, starter, stopper); `schedule` is (expression, timezone) of its first scheduled function."""

    module: str
    policy: str
    functions: dict[str, FunctionInfo]
    common: CommonConfig
    scope: ScopeConfig
    targets: tuple[Target, ...]
    ledger_table: str
    schedule: tuple[str, str] | None
    source: str = field(default="", compare=False)

    @property
    def service(self) -> str:
        return self.module

    @property
    def environment(self) -> Mapping[str, str]:
        """Every function of a policy gets the same variables (modules/internal `function_environment`)."""
        return next(iter(self.functions.values())).environment

    def config(self) -> Any:
        return MODULES[self.module].config_of(self.environment)


def module_named(name: str) -> Module:
    try:
        return MODULES[name]
    except KeyError:
        raise CannotLook(f"unknown module {name!r}; one of {', '.join(MODULES)}") from None


def resolve(op: Operator, policy: str, module: str | None, from_state: Path | None = None) -> Deployed:
    """The deployed policy `policy`, read with lambda:GetFunctionConfiguration (and scheduler:GetSchedule), or
    from `terraform output -json` of `from_state` (a Terraform directory, or a file holding that output) when
    given. `module` None: whichever module the policy's scheduled function belongs to."""
    if from_state is not None:
        if module is None:
            raise CannotLook("--from-state needs the module (the outputs do not name it)")
        return _from_outputs(op, policy, module_named(module), _terraform_outputs(from_state), from_state)
    candidates = [module_named(module)] if module is not None else list(MODULES.values())
    lambda_ = op.factory.client("lambda", op.region)
    with looking(f"reading the functions of policy {policy!r}"):
        for candidate in candidates:
            functions = _functions(lambda_, policy, candidate)
            if functions:
                break
        else:
            names = sorted({f"{policy}-{key}" for c in candidates for key in c.scheduled})
            raise CannotLook(f"no function {' / '.join(names)} in {op.region}: is {policy!r} a deployed policy?")
        found = module_of_handler(next(iter(functions.values())).handler)
        if found != candidate.name:
            if module is not None:
                raise CannotLook(f"policy {policy!r} is a {found} policy, not {candidate.name}")
            # Several modules name their scheduled function `planner`: the handler says whose it is.
            candidate = MODULES[found]
            functions = _functions(lambda_, policy, candidate)
        schedule = _schedule(op, policy, candidate)
    return _deployed(op, policy, candidate, functions, schedule, "lambda:GetFunctionConfiguration")


def module_of_handler(handler: str) -> str:
    """`ops_automation.ami_backup.handlers.plan_handler` → `ami-backup`."""
    parts = handler.split(".")
    by_package = {module.package: module.name for module in MODULES.values()}
    if len(parts) < 3 or parts[0] != "ops_automation" or parts[1] not in by_package:
        raise CannotLook(f"handler {handler!r} is not an ops-automation handler")
    return by_package[parts[1]]


def _functions(lambda_: Any, policy: str, module: Module) -> dict[str, FunctionInfo]:
    functions: dict[str, FunctionInfo] = {}
    for key in (*module.scheduled, WORKER):
        name = f"{policy}-{key}"
        try:
            configuration = lambda_.get_function_configuration(FunctionName=name)
        except ClientError as error:
            if error_code(error) == NOT_FOUND:
                continue
            raise
        environment = dict(configuration.get("Environment", {}).get("Variables", {}))
        functions[key] = FunctionInfo(name=name, handler=str(configuration["Handler"]), environment=environment)
    # A worker alone is no policy of this module (another module's policy may share the name prefix).
    return functions if any(key in functions for key in module.scheduled) else {}


def _schedule(op: Operator, policy: str, module: Module) -> tuple[str, str] | None:
    scheduler = op.factory.client("scheduler", op.region)
    for key in module.scheduled:
        try:
            schedule = scheduler.get_schedule(Name=f"{policy}-{key}", GroupName="default")
        except ClientError as error:
            if error_code(error) == NOT_FOUND:
                continue
            raise
        return str(schedule["ScheduleExpression"]), str(schedule.get("ScheduleExpressionTimezone") or "UTC")
    return None


def _terraform_outputs(path: Path) -> dict[str, Any]:
    if path.is_file():
        text = path.read_text(encoding="utf-8")
    else:
        try:
            text = subprocess.run(
                ["terraform", f"-chdir={path}", "output", "-json"], check=True, capture_output=True, text=True
            ).stdout
        except (OSError, subprocess.CalledProcessError) as error:
            raise CannotLook(f"terraform output -json in {path} failed: {error}") from error
    try:
        outputs = json.loads(text)
    except json.JSONDecodeError as error:
        raise CannotLook(f"{path}: not the JSON of `terraform output -json` ({error.msg})") from error
    if not isinstance(outputs, dict):
        raise CannotLook(f"{path}: not the JSON of `terraform output -json`")
    return {
        name: output["value"] if isinstance(output, dict) and "value" in output else output
        for name, output in outputs.items()
    }


def _from_outputs(op: Operator, policy: str, module: Module, outputs: Mapping[str, Any], path: Path) -> Deployed:
    environment = outputs.get("function_environment_variables")
    if not isinstance(environment, dict):
        raise CannotLook(f"{path} has no output function_environment_variables: is it a {module.name} deployment?")
    environment = {name: str(value) for name, value in environment.items()}
    if environment.get("OPS_POLICY_NAME") != policy:
        raise CannotLook(f"{path} deploys policy {environment.get('OPS_POLICY_NAME')!r}, not {policy!r}")
    functions: dict[str, FunctionInfo] = {}
    for key in (*module.scheduled, WORKER):
        name = outputs.get(f"{key}_function_name")
        # instance-scheduler's two planners share one handler output.
        handler = outputs.get(f"{key}_handler") or outputs.get("planner_handler")
        if name and handler:
            functions[key] = FunctionInfo(name=str(name), handler=str(handler), environment=environment)
    if not functions:
        functions[module.scheduled[0]] = FunctionInfo(f"{policy}-{module.scheduled[0]}", "", environment)
    schedule = None
    schedules = outputs.get("schedules") or ({"planner": outputs["schedule"]} if outputs.get("schedule") else {})
    for key in module.scheduled:
        if isinstance(schedules.get(key), dict):
            schedule = (str(schedules[key]["expression"]), str(schedules[key].get("timezone") or "UTC"))
            break
    return _deployed(op, policy, module, functions, schedule, f"terraform output of {path}")


def _deployed(
    op: Operator,
    policy: str,
    module: Module,
    functions: dict[str, FunctionInfo],
    schedule: tuple[str, str] | None,
    source: str,
) -> Deployed:
    environment = next(iter(functions.values())).environment
    try:
        common = CommonConfig.from_env(environment)
        scope = ScopeConfig.from_env(environment)
        config = module.config_of(environment)
    except ConfigError as error:
        raise CannotLook(f"policy {policy!r}: its configuration does not parse: {error}") from error
    # Target accounts / OUs: resolved as the functions resolve them (Organizations through the deployment's
    # organizations_role_arn, each account's enabled regions for "all-enabled"), with the operator's credentials.
    unlisted: list[str] = []
    with looking(f"resolving the target accounts of policy {policy!r}"):
        targets = resolve_targets(clients_for(op, config), scope, op.region, unlisted)
    for failure in unlisted:
        op.err.print(f"warning: {failure}", markup=False, highlight=False)
    return Deployed(
        module=module.name,
        policy=policy,
        functions=functions,
        common=common,
        scope=scope,
        targets=tuple(targets),
        ledger_table=common.ledger_table,
        schedule=schedule,
        source=source,
    )
