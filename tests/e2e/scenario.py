"""The tier-3 harness shared by every module's simulated series and by `make demo`: examples applied with
Terraform to one local AWS, and the AWS services moto cannot run, played in-process against what was deployed.

What the harness stands in for:

* EventBridge Scheduler: it invokes the planner with each slot's `scheduled_time`, rendered from the deployed
  schedule's own input template (`DeployedPolicy.plan`);
* the Lambda service: it polls the deployed work queue, invokes the worker in-process with the function's
  deployed environment and handler, and deletes what the worker did not report as failed (`poll_once`);
* the AWS service that emits state events (EC2 for AMIs and EBS snapshots): each module's scenario publishes the
  events AWS would emit with PutEvents on the local default bus (`put_events`), and the rule Terraform created
  routes them to the work queue - or does not, which the scenarios check.

Time is simulated: moto stamps images and snapshots with the simulated clock and SQS measures delays and
visibility timeouts with it (`tests/support/moto_fidelity.py`, E4, E11 and D4, through
`aws.fidelity.simulated_time`), so delayed checks come due without waiting 15 real minutes, retention sees one
backup per slot instead of a series made within seconds, and the eventual-consistency windows and snapshot
completion of the patches run on the same clock.

Every example a run needs is applied to one local AWS at the start, all at once (`applied_together`), each of its
providers - the default one and any aliased one (snapshot-copy's destination region) - pointed at that AWS, which
serves every region (`provider_override`): the provider waits ~25 s for each SQS queue and queue policy to settle
on moto, so applies and destroys in parallel cost about as much as one. The scenarios then run one after the
other (the simulated clock is process-wide), each on an empty EC2 account (`fresh_ec2`), and each example is
destroyed in the background as soon as its scenario is done.

The deployment is always the one Terraform applied (`deployment_from_terraform`): a hand-written copy of a
module's resources and environment would drift from the HCL silently, which is what tier 3 exists to rule out.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

from moto.ec2.models import ec2_backends
from scripts.local_aws import DEFAULT_REGION, Aws, LambdaContext, LocalAws, handler_environment
from tests.support import terraform_env
from tests.support.hcl_tree import load_module, load_tf
from tests.support.moto_fidelity import MotoFidelity

REPO_ROOT = Path(__file__).resolve().parents[2]
OVERRIDE_FILE = "zz_e2e_override.tf"
# Every service the modules and their examples use; the provider sends each to the local AWS.
PROVIDER_SERVICES = (
    "iam",
    "lambda",
    "sqs",
    "dynamodb",
    "scheduler",
    "events",
    "cloudwatch",
    "logs",
    "sns",
    "sts",
    "ec2",
    "kms",
    "s3",
    "ssm",
)

# Upper bound of SQS DelaySeconds: the longest a delayed check can wait before it is due.
SQS_MAX_DELAY = timedelta(seconds=900)
MAX_QUEUE_ROUNDS_PER_SLOT = 50

# What a handler module caches across warm invocations: every module-level lazy holder (an object with
# `install(value)` and `_value`, like ops_automation.core.runtime.Lazy), and a plain `_runtime` attribute if the
# module has one. Saved and restored per function (each Lambda function keeps its own warm container) and emptied
# between invocations, so nothing cached by another function or an earlier test leaks in.
WARM_STATE = "_runtime"
DAILY_CRON = re.compile(r"^cron\((\d{1,2}) (\d{1,2}) \* \* \? \*\)$")


# ---------------------------------------------------------------------------------------------------------------
# Simulated clock
# ---------------------------------------------------------------------------------------------------------------


class SimulatedClock:
    """Simulated time that flows with the real clock from wherever it was last set (so nothing that waits on
    it can wait forever), and can jump ahead."""

    def __init__(self, start: datetime) -> None:
        self._offset = timedelta(0)
        self._held: datetime | None = None
        self.set(start)

    def set(self, moment: datetime) -> None:
        self._offset = moment - datetime.now(UTC)
        if self._held is not None:
            self._held = moment

    def advance(self, delta: timedelta) -> None:
        self._offset += delta
        if self._held is not None:
            self._held += delta

    def now(self) -> datetime:
        return self._held if self._held is not None else datetime.now(UTC) + self._offset

    @contextmanager
    def held(self) -> Iterator[None]:
        """Time stands still in the block (it still jumps with `advance`), and flows on from there afterwards:
        for steps that must happen within seconds of each other however slow the machine is."""
        if self._held is not None:
            yield
            return
        self._held = self.now()
        try:
            yield
        finally:
            moment, self._held = self._held, None
            self.set(moment)

    def epoch_millis(self) -> float:
        return self.now().timestamp() * 1000


@contextmanager
def simulated_aws_time(aws: Aws, clock: SimulatedClock) -> Iterator[MotoFidelity]:
    """EC2 image and snapshot timestamps, snapshot completion, the EC2 eventual-consistency windows and SQS
    delays/visibility run on `clock` (the fidelity patches `local_aws()` installed for the server's whole life)."""
    with aws.fidelity.simulated_time(clock.now, sqs=True) as fidelity:
        yield fidelity


def daily_slots(expression: str, timezone: str, days: int, now: datetime) -> list[datetime]:
    """The last `days` occurrences of a daily `cron(M H * * ? *)` schedule in `timezone` that lie at least an
    hour before `now` (so the simulated series never runs ahead of the real clock), in UTC."""
    match = DAILY_CRON.match(expression)
    if match is None:
        raise ValueError(f"the scenarios simulate daily schedules, cron(M H * * ? *); got {expression!r}")
    minute, hour = int(match.group(1)), int(match.group(2))
    local_now = (now - timedelta(hours=1)).astimezone(ZoneInfo(timezone))
    last = local_now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if last > local_now:
        last -= timedelta(days=1)
    # Arithmetic on datetimes of one zone keeps the wall-clock time across daylight-saving changes, as Scheduler.
    local_slots = [last - timedelta(days=days - 1 - index) for index in range(days)]
    return [slot.astimezone(UTC) for slot in local_slots]


def format_slot(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Kept by `fresh_ec2`: the VPC-level resources of the examples' networks, by the backend attribute moto keeps them
# in (besides `vpcs`, `subnets` by Availability Zone and `groups` by VPC).
NETWORK_ATTRIBUTES = ("route_tables", "network_acls", "vpc_end_points")


def _kept_network(backend: Any) -> dict[str, Any]:
    vpcs = {vpc_id: vpc for vpc_id, vpc in backend.vpcs.items() if not getattr(vpc, "is_default", False)}
    subnets = {
        zone: {subnet_id: subnet for subnet_id, subnet in by_id.items() if subnet.vpc_id in vpcs}
        for zone, by_id in backend.subnets.items()
    }
    kept: dict[str, Any] = {
        "vpcs": vpcs,
        "subnets": {zone: by_id for zone, by_id in subnets.items() if by_id},
        "groups": {vpc_id: dict(groups) for vpc_id, groups in backend.groups.items() if vpc_id in vpcs},
    }
    for name in NETWORK_ATTRIBUTES:
        kept[name] = {key: item for key, item in getattr(backend, name).items() if item.vpc_id in vpcs}
    ids = set(vpcs).union(*(kept[name] for name in NETWORK_ATTRIBUTES))
    ids = ids.union(*kept["subnets"].values(), *kept["groups"].values())
    kept["tags"] = {resource_id: dict(backend.tags[resource_id]) for resource_id in ids if resource_id in backend.tags}
    return kept


def _put_back(backend: Any, kept: Mapping[str, Any]) -> None:
    backend.vpcs.update(kept["vpcs"])
    for zone, by_id in kept["subnets"].items():
        backend.subnets[zone].update(by_id)
    for vpc_id, groups in kept["groups"].items():
        backend.groups[vpc_id].update(groups)
    for name in NETWORK_ATTRIBUTES:
        getattr(backend, name).update(kept[name])
    for resource_id, tags in kept["tags"].items():
        backend.tags[resource_id].update(tags)


def fresh_ec2(aws: Aws) -> None:
    """Empty the local account's EC2 (every region) and what the fidelity patches remembered about it, so each
    scenario starts from an account of its own although the examples share one local AWS. Only EC2: the
    deployments (IAM, Lambda, SQS, DynamoDB, EventBridge, SNS) stay - and so do the networks the examples create
    (examples/ami-backup and examples/ebs-snapshot: the isolated VPC, subnet and security group of their restore
    tests): every non-default VPC, its subnets, security groups, route tables, network ACLs, endpoints and their
    tags are put back after the reset (`reset()` keeps the backend object, so what the kept models refer to stays
    valid). Instances, images, snapshots and volumes go."""
    for account in list(ec2_backends.values()):
        kept = {region: _kept_network(backend) for region, backend in list(account.items())}
        account.reset()
        for region, backend in account.items():
            if region in kept:
                _put_back(backend, kept[region])
    aws.fidelity.forget()


# ---------------------------------------------------------------------------------------------------------------
# Deployment: what the handlers need to know about a deployed policy
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    policy_name: str
    generations: int
    planner_function: str
    worker_function: str
    planner_handler: str  # Lambda handler setting, `package.module.function` (terraform output)
    worker_handler: str
    planner_role: str  # IAM role name of the function, as deployed (its Role ARN's last part)
    worker_role: str
    planner_environment: Mapping[str, str]
    worker_environment: Mapping[str, str]
    work_queue_url: str
    dlq_url: str
    ledger_table: str
    schedule_arn: str
    schedule_expression: str
    schedule_timezone: str
    # The Scheduler target input, with Scheduler's `<aws.scheduler.*>` placeholders.
    schedule_input: str
    how: str


@dataclass
class TerraformRun:
    """An example applied against a local AWS; `destroyed` is set once `terraform destroy` succeeded."""

    example: Path
    workdir: Path
    outputs: dict[str, Any]
    apply_seconds: float = 0.0
    destroy_seconds: float = 0.0
    destroyed: bool = False


@dataclass(frozen=True)
class Variant:
    """A second deployment of an example: a copy of its folder in the staged tree (`path`, beside the example, so
    relative module sources still resolve) with `override` added as a Terraform override file - which can change
    a variable's default (the policy name, so resources do not collide) and a module block's arguments. For a
    setting the example has no variable for (deregister-cleanup's `dry_run`, `cloudtrail_events`), without a
    hand-written copy of the example."""

    example: Path
    suffix: str
    override: str

    @property
    def path(self) -> Path:
        return self.example.parent / f"{self.example.name}--{self.suffix}"


VARIANT_OVERRIDE_FILE = "zz_e2e_variant_override.tf"

MODULE_OUTPUTS_FILE = "zz_e2e_module_outputs.tf"
MODULE_OUTPUT_PREFIX = "e2e_module_"


def example_region(example: Path) -> str:
    """The region the example deploys to by default: the local AWS serves that region."""
    return str(load_module(REPO_ROOT / example).variables.get("region", {}).get("default") or DEFAULT_REGION)


def provider_aliases(example: Path) -> list[str]:
    """The aliases of the example's `provider "aws"` blocks besides the default one (snapshot-copy's `osaka`)."""
    aliases = {
        str(body["alias"])
        for tf in sorted((REPO_ROOT / example).glob("*.tf"))
        for block in load_tf(tf).get("provider", [])
        for name, body in block.items()
        if name == "aws" and isinstance(body, dict) and body.get("alias")
    }
    return sorted(aliases)


def _provider_block(endpoint: str, region: str | None, alias: str | None) -> str:
    endpoints = "\n".join(f'    {service} = "{endpoint}"' for service in PROVIDER_SERVICES)
    return (
        'provider "aws" {\n'
        + (f'  alias                       = "{alias}"\n' if alias else "")
        + (f'  region                      = "{region}"\n' if region else "")
        + '  access_key                  = "testing"\n'
        '  secret_key                  = "testing"\n'
        "  skip_credentials_validation = true\n"
        "  skip_metadata_api_check     = true\n"
        "  skip_requesting_account_id  = true\n"
        # The local AWS answers S3 at its address, not at <bucket>.<address> (ssm-runcommand's output bucket).
        "  s3_use_path_style           = true\n"
        "\n"
        "  endpoints {\n"
        f"{endpoints}\n"
        "  }\n"
        "}\n"
    )


def provider_override(endpoint: str, region: str, aliases: Sequence[str] = ()) -> str:
    """An override file merging into the example's `provider "aws"` blocks (Terraform merges an override's provider
    block into the block of the same name and alias): every service of the default provider and of each aliased one
    to `endpoint`, the default in `region`; an aliased provider keeps the example's own region (its destination
    region), which the one local AWS serves too."""
    blocks = [_provider_block(endpoint, region, None), *(_provider_block(endpoint, None, alias) for alias in aliases)]
    return "# Written by tests/e2e/scenario.py: the example's providers, pointed at a local AWS (moto).\n" + "\n".join(
        blocks
    )


def module_outputs_file(example: Path) -> str:
    """A Terraform file added to the staged copy of an example: every output of each of its module calls, as one
    output `e2e_module_<name>` (an object keyed by the module's output names). For what a scenario drives that the
    example exposes no output of - the ebs-snapshot policy inside examples/snapshot-copy, its copy policy's
    schedule - still read from what Terraform applied. Sensitive, so that a module output derived from a sensitive
    value is allowed; `terraform output -json` shows it anyway."""
    names = sorted(load_module(REPO_ROOT / example).module_calls)
    blocks = [
        f'output "{MODULE_OUTPUT_PREFIX}{name}" {{\n  value     = module.{name}\n  sensitive = true\n}}\n'
        for name in names
    ]
    return "# Written by tests/e2e/scenario.py: the outputs of the example's modules, for the scenarios.\n" + "\n".join(
        blocks
    )


def module_outputs(run: TerraformRun, module: str) -> dict[str, Any]:
    """The outputs of the example's `module "<module>"` block, as applied (see `module_outputs_file`)."""
    return dict(run.outputs[f"{MODULE_OUTPUT_PREFIX}{module}"])


def work_queue_urls(run: TerraformRun) -> list[str]:
    """Every work queue an applied example holds: its own `work_queue_url` output, and each module block's (an
    example composing several modules, such as examples/complete or examples/landing-zone, has none of its own). The
    rules of all of them route the events another scenario puts on the shared bus."""
    urls = [str(run.outputs["work_queue_url"])] if "work_queue_url" in run.outputs else []
    for name, value in run.outputs.items():
        if name.startswith(MODULE_OUTPUT_PREFIX) and isinstance(value, Mapping) and value.get("work_queue_url"):
            urls.append(str(value["work_queue_url"]))
    return list(dict.fromkeys(urls))


def _output_values(raw: str) -> dict[str, Any]:
    return {name: output["value"] for name, output in json.loads(raw).items()}


class AppliedExamples:
    """Examples applied to one local AWS from one staged copy of the repository, each in its own region's view
    of that AWS. Built by `applied_together`; destroys run in the background once started."""

    def __init__(
        self,
        aws: LocalAws,
        workdir: Path,
        examples: Sequence[Path],
        variants: Sequence[Variant] = (),
        holders: Mapping[Path, int] | None = None,
    ) -> None:
        self.aws = aws
        self._variants = {variant.path: variant for variant in variants}
        self.examples = tuple(dict.fromkeys([*examples, *self._variants]))
        # How many users (test modules) must be done with an example before `start_destroy` destroys it.
        self._holders: Counter[Path] = Counter({example: 1 for example in self.examples})
        self._holders.update({example: count - 1 for example, count in (holders or {}).items() if count > 1})
        _, mirror = terraform_env.require_terraform()
        self._env = terraform_env.terraform_env(terraform_env.write_cli_config(workdir / "cli", mirror))
        staged = terraform_env.staged_copy(workdir / "repo")
        for variant in self._variants.values():
            shutil.copytree(staged / variant.example, staged / variant.path)
            (staged / variant.path / VARIANT_OVERRIDE_FILE).write_text(variant.override, encoding="utf-8")
        self._runs: dict[Path, TerraformRun] = {}
        for example in self.examples:
            folder = staged / example
            source = self._source_of(example)
            override = provider_override(aws.endpoint, self.region_of(example), provider_aliases(source))
            (folder / OVERRIDE_FILE).write_text(override, encoding="utf-8")
            (folder / MODULE_OUTPUTS_FILE).write_text(module_outputs_file(source), encoding="utf-8")
            # One after the other: `init` is quick, and the plugin cache is not safe for concurrent use.
            terraform_env.run_terraform(["init", "-input=false", "-no-color"], folder, self._env)
            self._runs[example] = TerraformRun(example=example, workdir=folder, outputs={})
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(self.examples)), thread_name_prefix="terraform")
        self._applies: dict[Path, Future[TerraformRun]] = {}
        self._destroys: dict[Path, Future[TerraformRun]] = {}

    def _source_of(self, example: Path) -> Path:
        """The example folder of the repository an example (or variant) was staged from."""
        variant = self._variants.get(example)
        return variant.example if variant is not None else example

    def region_of(self, example: Path) -> str:
        return example_region(self._source_of(example))

    def aws_for(self, example: Path, region: str | None = None) -> LocalAws:
        """The local AWS as seen from the example's region (or from `region`: an aliased provider's, such as
        snapshot-copy's destination)."""
        return dataclasses.replace(self.aws, region=region or self.region_of(example))

    def live(self) -> list[Path]:
        """The examples applied and not being destroyed (their rules still route events)."""
        return [example for example in self.examples if example not in self._destroys]

    def start_applies(self) -> None:
        for example in self.examples:
            self._applies[example] = self._pool.submit(self._apply, self._runs[example])

    def run(self, example: Path) -> TerraformRun:
        """The example's run once its apply finished (raises the apply's error)."""
        return self._applies[example].result()

    def start_destroy(self, example: Path) -> None:
        """One user of the example is done with it: destroyed in the background once every user is."""
        self._holders[example] -= 1
        if self._holders[example] <= 0:
            self._begin_destroy(example)

    def _begin_destroy(self, example: Path) -> None:
        if example not in self._destroys:
            self._destroys[example] = self._pool.submit(self._destroy, self._runs[example])

    def wait_destroyed(self, example: Path) -> TerraformRun:
        """Start the example's destroy unless it is running, and wait for it (raises the destroy's error)."""
        self._begin_destroy(example)
        return self._destroys[example].result()

    def close(self) -> None:
        """Destroy whatever is still applied (in parallel) and wait; the first error is raised after all ended."""
        errors: list[BaseException] = []
        for example, apply in self._applies.items():
            try:
                apply.result()
            except BaseException as error:  # an apply that failed half-way still gets its destroy
                errors.append(error)
            self._begin_destroy(example)
        for destroy in self._destroys.values():
            try:
                destroy.result()
            except BaseException as error:
                errors.append(error)
        self._pool.shutdown(wait=True)
        if errors:
            raise errors[0]

    def _apply(self, run: TerraformRun) -> TerraformRun:
        started = time.monotonic()
        apply = ["apply", "-auto-approve", "-input=false", "-no-color"]
        try:
            terraform_env.run_terraform(apply, run.workdir, self._env)
        finally:
            run.apply_seconds = time.monotonic() - started
        run.outputs = _output_values(terraform_env.run_terraform(["output", "-json"], run.workdir, self._env).stdout)
        return run

    def _destroy(self, run: TerraformRun) -> TerraformRun:
        started = time.monotonic()
        try:
            terraform_env.run_terraform(
                ["destroy", "-auto-approve", "-input=false", "-no-color"], run.workdir, self._env
            )
        finally:
            run.destroy_seconds = time.monotonic() - started
        run.destroyed = True
        return run


@contextmanager
def applied_together(
    aws: LocalAws,
    workdir: Path,
    examples: Sequence[Path],
    variants: Sequence[Variant] = (),
    holders: Mapping[Path, int] | None = None,
) -> Iterator[AppliedExamples]:
    """`terraform apply` every example (and variant, by its `path`) on `aws` at once (from a staged copy in
    `workdir`); on exit, `terraform destroy` those not destroyed yet, at once. `run(example)` waits for one
    example's apply. `holders`: how many users must call `start_destroy(example)` before it is destroyed (1).

    Raises `terraform_env.TerraformUnavailable` when terraform or the provider mirror is missing."""
    applied = AppliedExamples(aws, workdir, examples, variants, holders)
    try:
        applied.start_applies()
        yield applied
    finally:
        applied.close()


def business_policies(aws: Aws, deployment: Deployment) -> dict[str, dict[str, Any]]:
    """The business IAM documents of the planner and worker roles as deployed, keyed planner/worker."""
    iam = aws.client("iam")
    roles = {"planner": deployment.planner_role, "worker": deployment.worker_role}
    return {
        function: iam.get_role_policy(RoleName=role, PolicyName="business")["PolicyDocument"]
        for function, role in roles.items()
    }


def deployment_from_terraform(
    aws: Aws, outputs: Mapping[str, Any], example: Path, scheduled: str = "planner"
) -> Deployment:
    """What Terraform deployed, read back from the local AWS the way the Lambda service would see it.

    `scheduled` names the function the schedule invokes (`planner`, or `sweeper` for deregister-cleanup): the
    outputs `<scheduled>_function_name` / `<scheduled>_handler` and `worker_*` describe the two functions, kept
    in the `planner_*` / `worker_*` fields. The handler strings must be the handlers the deployed functions
    really have. `generations` is 0 for a module without retention (no OPS_GENERATIONS)."""
    lambda_ = aws.client("lambda")
    planner = outputs[f"{scheduled}_function_name"]
    worker = outputs["worker_function_name"]
    configurations = {name: lambda_.get_function_configuration(FunctionName=name) for name in (planner, worker)}
    handlers = {}
    for function, output in ((planner, f"{scheduled}_handler"), (worker, "worker_handler")):
        if output not in outputs:
            raise KeyError(f"{example} has no output {output!r}; the scenario takes the handler from it")
        handlers[function] = str(outputs[output])
        deployed = configurations[function]["Handler"]
        if deployed != handlers[function]:
            raise ValueError(f"output {output} = {handlers[function]!r}, but {function} is deployed with {deployed!r}")
    environments = {name: configuration["Environment"]["Variables"] for name, configuration in configurations.items()}
    schedule_name = outputs["schedule_arn"].rsplit("/", 1)[-1]
    schedule = aws.client("scheduler").get_schedule(Name=schedule_name)
    return Deployment(
        policy_name=environments[planner]["OPS_POLICY_NAME"],
        generations=int(environments[planner].get("OPS_GENERATIONS", "0")),
        planner_function=planner,
        worker_function=worker,
        planner_handler=handlers[planner],
        worker_handler=handlers[worker],
        planner_role=configurations[planner]["Role"].rsplit("/", 1)[-1],
        worker_role=configurations[worker]["Role"].rsplit("/", 1)[-1],
        planner_environment=environments[planner],
        worker_environment=environments[worker],
        work_queue_url=outputs["work_queue_url"],
        dlq_url=outputs["dlq_url"],
        ledger_table=outputs["ledger_table_name"],
        schedule_arn=outputs["schedule_arn"],
        schedule_expression=schedule["ScheduleExpression"],
        schedule_timezone=schedule.get("ScheduleExpressionTimezone", "UTC"),
        schedule_input=schedule["Target"]["Input"],
        how=f"terraform apply of {example.as_posix()} against a local AWS (moto server on 127.0.0.1)",
    )


# ---------------------------------------------------------------------------------------------------------------
# What a slot's run and the handlers left
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class HandlerLog:
    """The JSON log lines the handlers wrote (CloudWatch Logs would hold them), by level."""

    lines: list[dict[str, Any]] = field(default_factory=list)

    def at(self, *levels: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("level") in levels]


@dataclass
class SlotReport:
    """One scheduled slot's run: what the worker was handed, what it reported failed, how often time jumped."""

    slot: str
    messages: Counter[str] = field(default_factory=Counter)
    # The distinct SQS messages of each kind: `messages` counts deliveries, and SQS delivers a message again when
    # the worker handed it back (batchItemFailures) or its visibility timeout ran out.
    message_ids: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    failed_records: list[str] = field(default_factory=list)
    clock_advances: int = 0


def message_kind(body: str) -> str:
    """A label for the slot's message count: the work item's `kind` (check, create_snapshot, any new kind as
    is), an event's `detail-type`, else `unknown`/`malformed`. Never raises: counting must not fail on a kind
    it has not seen."""
    try:
        payload = json.loads(body)
    except (TypeError, ValueError):
        return "malformed"
    if not isinstance(payload, dict):
        return "malformed"
    kind = payload.get("kind") or payload.get("detail-type")
    return kind if isinstance(kind, str) and kind else "unknown"


def sqs_event(messages: Sequence[Mapping[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event the Lambda service builds from received messages (shape of `events/sqs-event-standard.json`)."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": message.get("MessageAttributes", {}),
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


def _substituted(value: Any, attributes: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        for placeholder, replacement in attributes.items():
            value = value.replace(placeholder, replacement)
        return value
    if isinstance(value, list):
        return [_substituted(item, attributes) for item in value]
    if isinstance(value, dict):
        return {key: _substituted(item, attributes) for key, item in value.items()}
    return value


def scheduler_input(template: str, slot: datetime, schedule_arn: str, execution: int) -> dict[str, Any]:
    """Scheduler's rendering of a JSON target input: context attributes replaced for this invocation.

    The input is decoded first: Terraform's `jsonencode` writes `<` and `>` as `\u003c`/`\u003e`, so the
    placeholders only appear in the decoded values."""
    attributes = {
        "<aws.scheduler.scheduled-time>": format_slot(slot),
        "<aws.scheduler.schedule-arn>": schedule_arn,
        "<aws.scheduler.execution-id>": f"e2e-{execution:08d}",
        "<aws.scheduler.attempt-number>": "1",
    }
    return dict(_substituted(json.loads(template), attributes))


def _stream_handlers() -> list[logging.StreamHandler[Any]]:
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    return [
        handler
        for logger in loggers
        if isinstance(logger, logging.Logger)
        for handler in logger.handlers
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)
    ]


@contextmanager
def captured_output(sink: HandlerLog) -> Iterator[None]:
    """Collect what a handler writes to stdout and stderr (CloudWatch Logs would get both): at the
    file-descriptor level, and through every log handler that writes to `sys.stdout`/`sys.stderr`. The Powertools
    logger holds the stream it found when the handler module was imported, which is not file descriptor 1 when
    pytest was capturing output then (at the collection of the tier-1 tests, say). Import the handler module
    before the block: a logger made inside it would not be redirected."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    standard = {id(stream) for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__) if stream}
    handlers = [handler for handler in _stream_handlers() if id(handler.stream) in standard]
    with tempfile.TemporaryFile(mode="w+b") as buffer:
        # A duplicate of the buffer's descriptor shares its offset: lines written either way do not overwrite.
        text = open(os.dup(buffer.fileno()), "w", encoding="utf-8", buffering=1)  # noqa: SIM115
        previous = [(handler, handler.setStream(text)) for handler in handlers]
        for fd in saved:
            os.dup2(buffer.fileno(), fd)
        try:
            yield
        finally:
            for handler, stream in previous:
                handler.setStream(stream)
            text.close()
            for fd, original in saved.items():
                os.dup2(original, fd)
                os.close(original)
            buffer.seek(0)
            for raw in buffer.read().decode("utf-8", "replace").splitlines():
                try:
                    line = json.loads(raw)
                except json.JSONDecodeError:
                    line = {"level": "RAW", "message": raw}
                if isinstance(line, dict) and "_aws" not in line:  # EMF metric documents are not log lines
                    sink.lines.append(line)


def _lazy_holders(module: Any) -> dict[str, Any]:
    return {
        name: value
        for name, value in vars(module).items()
        if not isinstance(value, type) and callable(getattr(value, "install", None)) and hasattr(value, "_value")
    }


def _install_warm_state(module: Any, container: Mapping[str, Any]) -> None:
    """Put a function's warm state (empty on its cold start) into the handler module."""
    for name, holder in _lazy_holders(module).items():
        holder.install(container.get(name))
    if hasattr(module, WARM_STATE):
        setattr(module, WARM_STATE, container.get(WARM_STATE))


def _take_warm_state(module: Any) -> dict[str, Any]:
    """Take the function's warm state out of the handler module, leaving it cold for the next function."""
    state = {}
    for name, holder in _lazy_holders(module).items():
        state[name] = holder._value
        holder.install(None)
    if hasattr(module, WARM_STATE):
        state[WARM_STATE] = getattr(module, WARM_STATE)
        setattr(module, WARM_STATE, None)
    return state


# ---------------------------------------------------------------------------------------------------------------
# Scheduler, the Lambda service and EventBridge, for one deployed policy
# ---------------------------------------------------------------------------------------------------------------


class DeployedPolicy:
    """Runs a deployed policy's functions as AWS would: the planner on its schedule's input, the worker on
    batches polled from its work queue; and puts events on the local default bus for the deployed rule."""

    def __init__(
        self,
        aws: Aws,
        deployment: Deployment,
        clock: SimulatedClock,
        handler_clock: bool = False,
        kinds: Callable[[str], str] | None = None,
    ) -> None:
        self.aws = aws
        self.deployment = deployment
        self.clock = clock
        # How the messages handed to the worker are counted (`SlotReport.messages`): `message_kind` unless given.
        self.kinds = kinds or message_kind
        # The handlers read the time from their runtime's clock (the wall clock). With `handler_clock`, the
        # runtime a cold start builds gets the simulated clock instead, so what the handlers compute from "now"
        # (purge deadlines, deregister-cleanup's grace period) runs on the simulated days.
        self.handler_clock = handler_clock
        self.sqs = aws.client("sqs")
        self.events = aws.client("events")
        self.queue_arn = self.sqs.get_queue_attributes(QueueUrl=deployment.work_queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.log = HandlerLog()
        # One warm container per function, as Lambda keeps them: each has its own cached runtime.
        self._containers: dict[str, dict[str, Any]] = {}
        self._invocations = 0

    def _invoke(self, function: str, handler: str, environment: Mapping[str, str], event: Any) -> Any:
        """Run `handler` as Lambda would: imported inside the function's environment (Powertools reads its
        settings at import), with the function's own warm state (the handler module's cached runtime)."""
        self._invocations += 1
        context = LambdaContext(
            function_name=function,
            region=self.aws.region,
            aws_request_id=f"00000000-0000-4000-8000-{self._invocations:012d}",
        )
        module_name, _, attribute = handler.rpartition(".")
        with handler_environment(self.aws, environment):
            # Imported before the output is captured: the logger it makes must write where captured_output looks.
            module = importlib.import_module(module_name)
            with captured_output(self.log), self._clock_of(module):
                container = self._containers.setdefault(function, {})
                _install_warm_state(module, container)
                try:
                    return getattr(module, attribute)(event, context)
                finally:
                    container.update(_take_warm_state(module))

    @contextmanager
    def _clock_of(self, module: Any) -> Iterator[None]:
        build = getattr(module, "build_runtime", None)
        if not self.handler_clock or build is None:
            yield
            return
        with mock.patch.object(module, "build_runtime", functools.partial(build, clock=self.clock.now)):
            yield

    def plan(self, slot: datetime) -> dict[str, Any]:
        """The planner, invoked as the deployed schedule would invoke it for `slot`."""
        event = scheduler_input(self.deployment.schedule_input, slot, self.deployment.schedule_arn, self._invocations)
        return dict(
            self._invoke(
                self.deployment.planner_function,
                self.deployment.planner_handler,
                self.deployment.planner_environment,
                event,
            )
        )

    def poll_once(self, report: SlotReport) -> int:
        """One Lambda poll: receive a batch, invoke the worker, delete all but the reported failures."""
        received = self.sqs.receive_message(
            QueueUrl=self.deployment.work_queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not received:
            return 0
        for message in received:
            kind = self.kinds(message["Body"])
            report.messages[kind] += 1
            report.message_ids[kind].add(message["MessageId"])
        response = self._invoke(
            self.deployment.worker_function,
            self.deployment.worker_handler,
            self.deployment.worker_environment,
            sqs_event(received, self.queue_arn, self.aws.region),
        )
        failed = {item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])}
        report.failed_records.extend(
            f"{message['MessageId']}: {message['Body']}" for message in received if message["MessageId"] in failed
        )
        done = [message for message in received if message["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.deployment.work_queue_url,
                Entries=[{"Id": str(index), "ReceiptHandle": m["ReceiptHandle"]} for index, m in enumerate(done)],
            )
        return len(received)

    def queue_depths(self) -> tuple[int, int]:
        """(delayed, in flight) messages of the work queue."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.deployment.work_queue_url,
            AttributeNames=["ApproximateNumberOfMessagesDelayed", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessagesDelayed"]), int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def visibility_timeout(self) -> timedelta:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.deployment.work_queue_url, AttributeNames=["VisibilityTimeout"]
        )["Attributes"]
        return timedelta(seconds=int(attributes["VisibilityTimeout"]))

    def put_events(self, entries: Sequence[Mapping[str, Any]]) -> int:
        """PutEvents on the local default bus, as the emitting AWS service would (AWS reserves the `aws.*`
        sources for its services; moto accepts them, which is what lets the harness stand in for them)."""
        for start in range(0, len(entries), 10):
            response = self.events.put_events(Entries=list(entries[start : start + 10]))
            if response.get("FailedEntryCount"):
                raise RuntimeError(f"put_events rejected entries: {response['Entries']}")
        return len(entries)

    def drain(
        self,
        report: SlotReport,
        announce: Callable[[], int],
        next_change: Callable[[], timedelta | None] = lambda: None,
    ) -> None:
        """Work the queue until it is empty: poll; let AWS announce what changed (`announce` publishes the
        events and returns how many); else let simulated time run until the next delayed or returning message
        is due, or until `next_change` (the time until AWS changes something by itself, such as a pending
        snapshot completing), whichever comes first."""
        for _round in range(MAX_QUEUE_ROUNDS_PER_SLOT):
            while self.poll_once(report):
                pass
            if announce():
                continue
            delayed, in_flight = self.queue_depths()
            if not delayed and not in_flight:
                return
            step = SQS_MAX_DELAY if delayed else self.visibility_timeout()
            sooner = next_change()
            if sooner is not None:
                step = min(step, max(sooner, timedelta(0)))
            self.clock.advance(step + timedelta(seconds=1))
            report.clock_advances += 1
        raise RuntimeError(f"work queue not drained after {MAX_QUEUE_ROUNDS_PER_SLOT} rounds on {report.slot}")


# ---------------------------------------------------------------------------------------------------------------
# What is left
# ---------------------------------------------------------------------------------------------------------------


def plain_item(item: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A DynamoDB item with its type wrappers removed (lists of strings and numbers as lists)."""
    return {name: next(iter(value.values())) for name, value in item.items()}


def ledger_items(aws: Aws, table: str) -> list[dict[str, Any]]:
    return [
        plain_item(item)
        for page in aws.client("dynamodb").get_paginator("scan").paginate(TableName=table)
        for item in page["Items"]
    ]


def queue_total(sqs: Any, url: str) -> int:
    """Every message of the queue: visible, delayed and in flight."""
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesDelayed",
        "ApproximateNumberOfMessagesNotVisible",
    ]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


def purge_work_queues(sqs: Any, urls: Sequence[str]) -> int:
    """Empty the queues of what other scenarios' events put there; returns how many messages went. Test harness
    only (SQS PurgeQueue; moto empties at once where AWS takes up to 60 seconds)."""
    purged = 0
    for url in urls:
        try:
            purged += queue_total(sqs, url)
            sqs.purge_queue(QueueUrl=url)
        except sqs.exceptions.QueueDoesNotExist:
            continue
    return purged
