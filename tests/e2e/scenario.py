"""A simulated week of AMI backups against a local AWS: shared by the tier-3 test and `make demo`.

The harness stands in for the AWS services that moto cannot run: EventBridge Scheduler (it invokes the planner
with each day's `scheduled_time`, rendered from the schedule's own input template), the Lambda service (it
polls the work queue, invokes the worker in-process with the function's deployed environment and deletes what
the worker reports as done) and EC2's event emitter (it publishes `EC2 AMI State Change` for each image that
became available, on the local EventBridge, whose rule routes it to the work queue).

Time is simulated: moto stamps images with the simulated clock and SQS measures delays and visibility timeouts
with it (`tests/support/moto_fidelity.py`, E4 and D4, through `aws.fidelity.simulated_time`), so the worker's
delayed messages (`check_image`, `purge_snapshots`, any other kind) come due without waiting 15 real minutes,
retention sees one backup per day instead of a week of backups made within one second, and the
eventual-consistency windows of the patches (E7: DeleteSnapshot refused for a while after DeregisterImage;
E9: deregistered AMIs still listed for a while) run on the same clock.

The deployment is always the one Terraform applied (`terraform_applied` + `deployment_from_terraform`). The
former in-process path (`in_process_deployment`, a hand-written Python copy of the module's resources and
environment) was dropped: a copy of the Terraform drifts from it silently, which is what the tier-3 test exists
to rule out.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from scripts.local_aws import DEFAULT_REGION, Aws, LambdaContext, LocalAws, handler_environment
from tests.support import terraform_env
from tests.support.hcl_tree import load_module
from tests.support.moto_fidelity import DEREGISTERED, MotoFidelity

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = Path("examples/ami-backup")
OVERRIDE_FILE = "zz_e2e_override.tf"
# Every service the module and its example use; the provider sends each to the local AWS.
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
)

BACKUP_TAG = {"Backup": "daily"}
FLEET_SIZE = 4
DAYS = 7
# The tagged instance that is terminated on this day (1-based), before that day's run.
TERMINATION_DAY = 4
# Upper bound of SQS DelaySeconds: the longest a delayed check can wait before it is due.
SQS_MAX_DELAY = timedelta(seconds=900)
MAX_QUEUE_ROUNDS_PER_DAY = 50

STATE_CHANGE = "EC2 AMI State Change"
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
        self.set(start)

    def set(self, moment: datetime) -> None:
        self._offset = moment - datetime.now(UTC)

    def advance(self, delta: timedelta) -> None:
        self._offset += delta

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def epoch_millis(self) -> float:
        return self.now().timestamp() * 1000


@contextmanager
def simulated_aws_time(aws: Aws, clock: SimulatedClock) -> Iterator[MotoFidelity]:
    """EC2 image timestamps, the EC2 eventual-consistency windows and SQS delays/visibility run on `clock`
    (the fidelity patches `local_aws()` installed for the server's whole life)."""
    with aws.fidelity.simulated_time(clock.now, sqs=True) as fidelity:
        yield fidelity


def daily_slots(expression: str, timezone: str, days: int, now: datetime) -> list[datetime]:
    """The last `days` occurrences of a daily `cron(M H * * ? *)` schedule in `timezone` that lie at least an
    hour before `now` (so the simulated week never runs ahead of the real clock), in UTC."""
    match = DAILY_CRON.match(expression)
    if match is None:
        raise ValueError(f"the scenario simulates daily schedules, cron(M H * * ? *); got {expression!r}")
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


# ---------------------------------------------------------------------------------------------------------------
# Deployment: what the handlers need to know about the deployed policy
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
    """The example applied against a local AWS; `destroyed` is set once `terraform destroy` succeeded."""

    workdir: Path
    outputs: dict[str, Any]
    apply_seconds: float = 0.0
    destroy_seconds: float = 0.0
    destroyed: bool = False


def example_region() -> str:
    """The region the example deploys to by default: the local AWS serves that region."""
    return str(load_module(REPO_ROOT / EXAMPLE).variables.get("region", {}).get("default") or DEFAULT_REGION)


def provider_override(endpoint: str, region: str) -> str:
    """An override file merging into the example's `provider "aws"` block: every service to `endpoint`."""
    endpoints = "\n".join(f'    {service} = "{endpoint}"' for service in PROVIDER_SERVICES)
    return (
        "# Written by tests/e2e/scenario.py: the example's provider, pointed at a local AWS (moto).\n"
        'provider "aws" {\n'
        f'  region                      = "{region}"\n'
        '  access_key                  = "testing"\n'
        '  secret_key                  = "testing"\n'
        "  skip_credentials_validation = true\n"
        "  skip_metadata_api_check     = true\n"
        "  skip_requesting_account_id  = true\n"
        "\n"
        "  endpoints {\n"
        f"{endpoints}\n"
        "  }\n"
        "}\n"
    )


def _output_values(raw: str) -> dict[str, Any]:
    return {name: output["value"] for name, output in json.loads(raw).items()}


@contextmanager
def terraform_applied(aws: LocalAws, workdir: Path) -> Iterator[TerraformRun]:
    """`terraform apply` the example on `aws` from a staged copy in `workdir`; `terraform destroy` on exit.

    Raises `terraform_env.TerraformUnavailable` when terraform or the provider mirror is missing."""
    _, mirror = terraform_env.require_terraform()
    cli_config = terraform_env.write_cli_config(workdir / "cli", mirror)
    env = terraform_env.terraform_env(cli_config)
    staged = terraform_env.staged_copy(workdir / "repo")
    example = staged / EXAMPLE
    (example / OVERRIDE_FILE).write_text(provider_override(aws.endpoint, aws.region), encoding="utf-8")
    terraform_env.run_terraform(["init", "-input=false", "-no-color"], example, env)
    started = time.monotonic()
    terraform_env.run_terraform(["apply", "-auto-approve", "-input=false", "-no-color"], example, env)
    run = TerraformRun(workdir=example, outputs={}, apply_seconds=time.monotonic() - started)
    try:
        run.outputs = _output_values(terraform_env.run_terraform(["output", "-json"], example, env).stdout)
        yield run
    finally:
        started = time.monotonic()
        terraform_env.run_terraform(["destroy", "-auto-approve", "-input=false", "-no-color"], example, env)
        run.destroy_seconds = time.monotonic() - started
        run.destroyed = True


def deployment_from_terraform(aws: Aws, outputs: Mapping[str, Any]) -> Deployment:
    """What Terraform deployed, read back from the local AWS the way the Lambda service would see it.

    The handler strings are the example's outputs `planner_handler` / `worker_handler`; each must be the
    handler the deployed function really has."""
    lambda_ = aws.client("lambda")
    planner = outputs["planner_function_name"]
    worker = outputs["worker_function_name"]
    configurations = {name: lambda_.get_function_configuration(FunctionName=name) for name in (planner, worker)}
    handlers = {}
    for function, output in ((planner, "planner_handler"), (worker, "worker_handler")):
        if output not in outputs:
            raise KeyError(f"examples/ami-backup has no output {output!r}; the scenario takes the handler from it")
        handlers[function] = str(outputs[output])
        deployed = configurations[function]["Handler"]
        if deployed != handlers[function]:
            raise ValueError(f"output {output} = {handlers[function]!r}, but {function} is deployed with {deployed!r}")
    environments = {name: configuration["Environment"]["Variables"] for name, configuration in configurations.items()}
    schedule_name = outputs["schedule_arn"].rsplit("/", 1)[-1]
    schedule = aws.client("scheduler").get_schedule(Name=schedule_name)
    return Deployment(
        policy_name=environments[planner]["OPS_POLICY_NAME"],
        generations=int(environments[planner]["OPS_GENERATIONS"]),
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
        how="terraform apply of examples/ami-backup against a local AWS (moto server on 127.0.0.1)",
    )


# ---------------------------------------------------------------------------------------------------------------
# Fleet
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fleet:
    backed_up: tuple[str, ...]  # tagged, running all week
    terminated: str  # tagged, terminated on TERMINATION_DAY
    untagged: str
    unmanaged_image: str  # someone's own AMI of a tagged instance: never ours to touch
    unmanaged_snapshots: tuple[str, ...]
    names: Mapping[str, str]  # instance id -> Name tag, for reports

    @property
    def tagged(self) -> tuple[str, ...]:
        return (*self.backed_up, self.terminated)


def _launch(ec2: Any, name: str, tags: Mapping[str, str]) -> str:
    tag_list = [{"Key": "Name", "Value": name}, *({"Key": k, "Value": v} for k, v in tags.items())]
    response = ec2.run_instances(
        ImageId="ami-12345678",
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        TagSpecifications=[{"ResourceType": "instance", "Tags": tag_list}],
    )
    return str(response["Instances"][0]["InstanceId"])


def create_fleet(aws: Aws) -> Fleet:
    ec2 = aws.client("ec2")
    names: dict[str, str] = {}
    for index in range(FLEET_SIZE):
        names[_launch(ec2, f"web-{index + 1}", BACKUP_TAG)] = f"web-{index + 1}"
    backed_up = tuple(names)
    terminated = _launch(ec2, "batch-1", BACKUP_TAG)
    untagged = _launch(ec2, "bastion", {})
    names.update({terminated: "batch-1", untagged: "bastion"})
    image_id = ec2.create_image(InstanceId=backed_up[0], Name="golden-web-manual")["ImageId"]
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    snapshots = tuple(m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m)
    return Fleet(backed_up, terminated, untagged, image_id, snapshots, names)


# ---------------------------------------------------------------------------------------------------------------
# The week
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backup:
    image_id: str
    instance_id: str
    slot: str
    snapshots: tuple[str, ...]


@dataclass
class DayReport:
    slot: str
    created: list[Backup] = field(default_factory=list)
    purged: list[Backup] = field(default_factory=list)
    kept: dict[str, list[str]] = field(default_factory=dict)
    messages: Counter[str] = field(default_factory=Counter)
    failed_records: list[str] = field(default_factory=list)
    clock_advances: int = 0


@dataclass
class HandlerLog:
    """The JSON log lines the handlers wrote (CloudWatch Logs would hold them), by level."""

    lines: list[dict[str, Any]] = field(default_factory=list)

    def at(self, *levels: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("level") in levels]


@dataclass
class WeekReport:
    deployment: Deployment
    fleet: Fleet
    days: list[DayReport]
    backups: dict[str, Backup]
    log: HandlerLog

    @property
    def purged(self) -> list[Backup]:
        return [backup for day in self.days for backup in day.purged]


def _message_kind(body: str) -> str:
    """A label for the day's message count: the work item's `kind` (check_image, purge_snapshots, any new
    kind as is), an event's `detail-type`, else `unknown`/`malformed`. Never raises: counting must not fail on
    a kind it has not seen."""
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


@contextmanager
def captured_output(sink: HandlerLog) -> Iterator[None]:
    """Collect what a handler writes to stdout and stderr (CloudWatch Logs would get both), at the
    file-descriptor level: the Powertools logger holds the stream it found at import time."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with tempfile.TemporaryFile(mode="w+b") as buffer:
        for fd in saved:
            os.dup2(buffer.fileno(), fd)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
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


def _registered(ec2: Any, **request: Any) -> list[dict[str, Any]]:
    """DescribeImages without the AMIs AWS still lists for a while after DeregisterImage (State
    `deregistered`, fidelity patch E9): what the account holds, as the report and the assertions need it."""
    pages = ec2.get_paginator("describe_images").paginate(**request)
    return [image for page in pages for image in page["Images"] if image["State"] != DEREGISTERED]


class Week:
    """Drives the deployed policy through simulated days."""

    def __init__(self, aws: Aws, deployment: Deployment, fleet: Fleet, clock: SimulatedClock) -> None:
        self.aws = aws
        self.deployment = deployment
        self.fleet = fleet
        self.clock = clock
        self.ec2 = aws.client("ec2")
        self.sqs = aws.client("sqs")
        self.events = aws.client("events")
        self.queue_arn = self.sqs.get_queue_attributes(QueueUrl=deployment.work_queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.backups: dict[str, Backup] = {}
        self.announced: set[str] = set()
        self.log = HandlerLog()
        # One warm container per function, as Lambda keeps them: each has its own cached runtime.
        self._containers: dict[str, dict[str, Any]] = {}
        self._invocations = 0

    # -- the Lambda service --------------------------------------------------------------------------------

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
        with handler_environment(self.aws, environment), captured_output(self.log):
            module = importlib.import_module(module_name)
            container = self._containers.setdefault(function, {})
            _install_warm_state(module, container)
            try:
                return getattr(module, attribute)(event, context)
            finally:
                container.update(_take_warm_state(module))

    def plan(self, slot: datetime) -> dict[str, Any]:
        event = scheduler_input(self.deployment.schedule_input, slot, self.deployment.schedule_arn, self._invocations)
        return dict(
            self._invoke(
                self.deployment.planner_function,
                self.deployment.planner_handler,
                self.deployment.planner_environment,
                event,
            )
        )

    def _poll_once(self, day: DayReport) -> int:
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
        day.messages.update(_message_kind(message["Body"]) for message in received)
        response = self._invoke(
            self.deployment.worker_function,
            self.deployment.worker_handler,
            self.deployment.worker_environment,
            sqs_event(received, self.queue_arn, self.aws.region),
        )
        failed = {item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])}
        day.failed_records.extend(
            f"{message['MessageId']}: {message['Body'][:200]}" for message in received if message["MessageId"] in failed
        )
        done = [message for message in received if message["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.deployment.work_queue_url,
                Entries=[{"Id": str(index), "ReceiptHandle": m["ReceiptHandle"]} for index, m in enumerate(done)],
            )
        return len(received)

    def _queue_depths(self) -> tuple[int, int]:
        """(delayed, in flight) messages of the work queue."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.deployment.work_queue_url,
            AttributeNames=["ApproximateNumberOfMessagesDelayed", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessagesDelayed"]), int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def _visibility_timeout(self) -> timedelta:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.deployment.work_queue_url, AttributeNames=["VisibilityTimeout"]
        )["Attributes"]
        return timedelta(seconds=int(attributes["VisibilityTimeout"]))

    # -- EC2's event emitter -------------------------------------------------------------------------------

    def _own_images(self) -> list[dict[str, Any]]:
        return _registered(self.ec2, Owners=["self"])

    def announce_state_changes(self) -> int:
        """Publish `EC2 AMI State Change` for every image that reached available/failed since the last call.

        EC2 emits these itself (for every AMI of the account, ours or not); here they are put on the local
        default event bus, and the rule Terraform created routes them to the work queue. (AWS reserves the
        `aws.*` sources for its services; moto accepts them, which is what lets the harness stand in for EC2.)
        """
        entries = []
        for image in self._own_images():
            if image["ImageId"] in self.announced or image["State"] not in ("available", "failed"):
                continue
            self.announced.add(image["ImageId"])
            detail = {"RequestId": f"e2e-{image['ImageId']}", "ImageId": image["ImageId"], "State": image["State"]}
            detail["ErrorMessage"] = image.get("StateReason", {}).get("Message", "")
            entries.append(
                {
                    "Source": "aws.ec2",
                    "DetailType": STATE_CHANGE,
                    "Resources": [f"arn:aws:ec2:{self.aws.region}::image/{image['ImageId']}"],
                    "Detail": json.dumps(detail),
                    "Time": self.clock.now(),
                }
            )
        for start in range(0, len(entries), 10):
            response = self.events.put_events(Entries=entries[start : start + 10])
            if response.get("FailedEntryCount"):
                raise RuntimeError(f"put_events rejected entries: {response['Entries']}")
        return len(entries)

    # -- a day ---------------------------------------------------------------------------------------------

    def _drain(self, day: DayReport) -> None:
        """Work the queue until it is empty: poll, let EC2 announce completed images, let delays elapse."""
        for _round in range(MAX_QUEUE_ROUNDS_PER_DAY):
            while self._poll_once(day):
                pass
            if self.announce_state_changes():
                continue
            delayed, in_flight = self._queue_depths()
            if not delayed and not in_flight:
                return
            # Nothing visible: let simulated time run until the next delayed or returning message is due.
            self.clock.advance((SQS_MAX_DELAY if delayed else self._visibility_timeout()) + timedelta(seconds=1))
            day.clock_advances += 1
        raise RuntimeError(f"work queue not drained after {MAX_QUEUE_ROUNDS_PER_DAY} rounds on {day.slot}")

    def _managed_images(self) -> dict[str, dict[str, Any]]:
        policy_filter = [{"Name": "tag:ops-automation:policy", "Values": [self.deployment.policy_name]}]
        return {image["ImageId"]: image for image in _registered(self.ec2, Owners=["self"], Filters=policy_filter)}

    def run_day(self, slot: datetime, number: int) -> DayReport:
        day = DayReport(slot=format_slot(slot))
        self.clock.set(slot)
        if number == TERMINATION_DAY:
            self.ec2.terminate_instances(InstanceIds=[self.fleet.terminated])
        before = self._managed_images()
        self.plan(slot)
        self._drain(day)
        after = self._managed_images()
        for image_id in sorted(set(after) - set(before)):
            image = after[image_id]
            tags = {tag["Key"]: tag["Value"] for tag in image.get("Tags", [])}
            backup = Backup(
                image_id=image_id,
                instance_id=tags.get("ops-automation:source-instance", "?"),
                slot=tags.get("ops-automation:slot", "?"),
                snapshots=tuple(m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", []) if "Ebs" in m),
            )
            self.backups[image_id] = backup
            day.created.append(backup)
        day.purged = [self.backups[image_id] for image_id in sorted(set(before) - set(after))]
        for image in sorted(after.values(), key=lambda image: image["CreationDate"]):
            source = next(
                (t["Value"] for t in image.get("Tags", []) if t["Key"] == "ops-automation:source-instance"), "?"
            )
            day.kept.setdefault(source, []).append(image["ImageId"])
        return day


def run_week(aws: Aws, deployment: Deployment, days: int = DAYS) -> WeekReport:
    """Create the fleet, then run `days` daily slots ending before now."""
    slots = daily_slots(deployment.schedule_expression, deployment.schedule_timezone, days, datetime.now(UTC))
    clock = SimulatedClock(slots[0] - timedelta(hours=1))
    with simulated_aws_time(aws, clock):
        fleet = create_fleet(aws)
        week = Week(aws, deployment, fleet, clock)
        reports = [week.run_day(slot, number) for number, slot in enumerate(slots, start=1)]
    return WeekReport(deployment=deployment, fleet=fleet, days=reports, backups=week.backups, log=week.log)


@dataclass(frozen=True)
class FinalState:
    """The account after the week, as the assertions and the report need it."""

    images: dict[str, dict[str, Any]]  # every image of the account, by id
    snapshots: dict[str, dict[str, Any]]  # every snapshot of the account, by id
    ledger: list[dict[str, Any]]  # ledger items, plain values
    dlq_messages: int
    work_queue_messages: int


def _plain(item: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {name: next(iter(value.values())) for name, value in item.items()}


def _queue_total(sqs: Any, url: str) -> int:
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesDelayed",
        "ApproximateNumberOfMessagesNotVisible",
    ]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


def final_state(aws: Aws, deployment: Deployment) -> FinalState:
    ec2 = aws.client("ec2")
    sqs = aws.client("sqs")
    images = {image["ImageId"]: image for image in _registered(ec2, Owners=["self"])}
    snapshots = {
        snapshot["SnapshotId"]: snapshot
        for page in ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"])
        for snapshot in page["Snapshots"]
    }
    ledger = [
        _plain(item)
        for page in aws.client("dynamodb").get_paginator("scan").paginate(TableName=deployment.ledger_table)
        for item in page["Items"]
    ]
    return FinalState(
        images=images,
        snapshots=snapshots,
        ledger=ledger,
        dlq_messages=_queue_total(sqs, deployment.dlq_url),
        work_queue_messages=_queue_total(sqs, deployment.work_queue_url),
    )
