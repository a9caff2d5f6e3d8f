"""A simulated series of daily EBS snapshots through the deployed examples/ebs-snapshot: its tier-3 test.

On the harness of `tests/e2e/scenario.py` (Scheduler, the Lambda service, simulated time), this module plays EC2:
it publishes `EBS Snapshot Notification` for every snapshot of the account that reached `completed` or `error`
- `createSnapshot` for the snapshots of CreateSnapshot, ours or not, `copySnapshot` for copies - on the local
default bus, and the rule Terraform created must route the first and not the second. Snapshots are `pending` for
`fidelity.snapshot_completion_time` (E11 of tests/support/moto_fidelity.py) on the simulated clock; the series
lets time run to each completion, so the events arrive before the delayed checks, as they do on AWS.

The account: four volumes and one instance. `db-data` (attached to the instance), `logs` and `scratch` carry the
example's volume tag; `tmp` does not. Over `SLOTS` daily slots (generations from the deployed environment):

* slot RATE_LIMITED_SLOT: someone snapshots db-data by hand just as the slot's work runs; EC2 refuses the
  policy's snapshot for a while (`SnapshotCreationPerVolumeRateExceeded`, E13) and the worker backs off
  through SQS; its own completed event is ignored by the worker (the snapshot is not the policy's);
* slot COPY_SLOT: someone copies that manual snapshot; EC2 emits `copySnapshot`, which the rule must not route;
* slot VOLUME_DELETED_SLOT: scratch is deleted after the planner ran and before the worker: one alert, no retry;
* slot ERROR_SLOT: the new snapshot of logs goes to `error`: one alert, nothing purged for logs, the failed
  snapshot discarded;
* slot LOST_EVENT_SLOT: the completion event of db-data's snapshot is lost: the delayed check completes it.

After the series, the example's `restore` schedule is fired once (`run_restore`): the worker creates a volume from each
source's newest completed snapshot in the Availability Zone of the example's isolated subnet; this module plays EBS:
volumes are `creating` for VOLUME_CREATION_TIME (fidelity E60), and it publishes `EBS Volume Notification`
(`createVolume` when a volume became available or failed, `deleteVolume` when one went; moto emits none), which the
rule must route (createVolume) or not (deleteVolume).

This module also holds what both restore runs (this one and ami_backup_scenario's) share: `RestoreRun`, the
restore function as deployed (`restore_deployment`), the EC2 requests recorded (`ApiCalls`), and
`wait_for_network_applies` (`scenario.fresh_ec2` keeps the examples' networks, but must not meet an apply creating
one).
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import botocore.client
from moto.sqs.models import sqs_backends
from scripts.local_aws import ACCOUNT_ID, Aws
from tests.e2e import scenario
from tests.e2e.scenario import DeployedPolicy, Deployment, HandlerLog, SimulatedClock, SlotReport

EXAMPLE = Path("examples/ebs-snapshot")
SLOTS = 6
RATE_LIMITED_SLOT = 2
COPY_SLOT = 3
VOLUME_DELETED_SLOT = 3
ERROR_SLOT = 4
LOST_EVENT_SLOT = 5
ERROR_MESSAGE = "simulated: the snapshot could not be completed"

SNAPSHOT_NOTIFICATION = "EBS Snapshot Notification"
# The example's module block (its outputs, as `scenario.module_outputs` reads them, name the restore function).
MODULE = "ebs_snapshot"
# "Snapshots created by the CopySnapshot action have an arbitrary volume ID that should not be used for any
# purpose" (API_Snapshot, VolumeId); moto and AWS both show this one.
COPY_VOLUME_ID = "vol-ffffffff"
POLICY_TAG = "ops-automation:policy"
SOURCE_VOLUME_TAG = "ops-automation:source-volume"
SLOT_TAG = "ops-automation:slot"


def _tags(resource: Mapping[str, Any]) -> dict[str, str]:
    return {str(tag["Key"]): str(tag["Value"]) for tag in resource.get("Tags", [])}


# ---------------------------------------------------------------------------------------------------------------
# The account
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Volumes:
    db_data: str  # tagged, attached to `instance`
    logs: str  # tagged, unattached
    scratch: str  # tagged, deleted on VOLUME_DELETED_SLOT between the planner and the worker
    untagged: str
    instance: str
    names: Mapping[str, str]  # volume or instance id -> Name tag, for reports

    @property
    def tagged(self) -> tuple[str, ...]:
        return (self.db_data, self.logs, self.scratch)


def create_volumes(aws: Aws, volume_tags: Mapping[str, str]) -> Volumes:
    ec2 = aws.client("ec2")
    zone = f"{aws.region}a"

    def volume(name: str, tags: Mapping[str, str]) -> str:
        tag_list = [{"Key": "Name", "Value": name}, *({"Key": k, "Value": v} for k, v in tags.items())]
        return str(
            ec2.create_volume(
                AvailabilityZone=zone,
                Size=8,
                VolumeType="gp3",
                TagSpecifications=[{"ResourceType": "volume", "Tags": tag_list}],
            )["VolumeId"]
        )

    instance = ec2.run_instances(
        ImageId="ami-12345678",
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        Placement={"AvailabilityZone": zone},
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "db-1"}]}],
    )["Instances"][0]["InstanceId"]
    names = {"db-data": volume("db-data", volume_tags)}
    ec2.attach_volume(VolumeId=names["db-data"], InstanceId=instance, Device="/dev/sdf")
    names["logs"] = volume("logs", volume_tags)
    names["scratch"] = volume("scratch", volume_tags)
    names["tmp"] = volume("tmp", {})
    by_id = {volume_id: name for name, volume_id in names.items()}
    return Volumes(
        db_data=names["db-data"],
        logs=names["logs"],
        scratch=names["scratch"],
        untagged=names["tmp"],
        instance=str(instance),
        names={**by_id, str(instance): "db-1"},
    )


# ---------------------------------------------------------------------------------------------------------------
# The series
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """A snapshot the policy made, as EC2 listed it."""

    snapshot_id: str
    volume_id: str
    slot: str  # its ops-automation:slot tag


@dataclass
class SlotRun(SlotReport):
    created: list[Snapshot] = field(default_factory=list)  # made by the policy in this slot (failed ones too)
    failed: list[Snapshot] = field(default_factory=list)  # of those, the ones that went to `error`
    purged: list[Snapshot] = field(default_factory=list)  # the policy's snapshots retired in this slot
    kept: dict[str, list[str]] = field(default_factory=dict)  # volume -> slots of its completed snapshots after
    alerts: list[dict[str, Any]] = field(default_factory=list)  # what the alert topic's subscriber received
    published: Counter[str] = field(default_factory=Counter)  # events EC2 emitted: "<event> <result>"
    lost_events: list[str] = field(default_factory=list)  # snapshot ids whose completion event was lost
    events: list[str] = field(default_factory=list)  # what else happened, for the report


@dataclass
class SeriesReport:
    deployment: Deployment
    volumes: Volumes
    slots: list[SlotRun]
    snapshots: dict[str, Snapshot]  # every snapshot the policy made, by id
    foreign: dict[str, str]  # snapshots someone else made (the manual one, its copy) -> what they are
    log: HandlerLog
    clock: SimulatedClock | None = None  # where the series left simulated time (the restore run goes on from there)

    @property
    def purged(self) -> list[Snapshot]:
        return [snapshot for run in self.slots for snapshot in run.purged]

    @property
    def failed(self) -> list[Snapshot]:
        return [snapshot for run in self.slots for snapshot in run.failed]

    @property
    def alerts(self) -> list[dict[str, Any]]:
        return [alert for run in self.slots for alert in run.alerts]

    @property
    def published(self) -> Counter[str]:
        return sum((run.published for run in self.slots), Counter())


class AlertInbox:
    """An SQS queue subscribed to the deployed alert topic (OPS_ALERT_TOPIC_ARN), as an operator's subscription
    would be: what the handlers published there, as SNS delivered it."""

    def __init__(self, aws: Aws, topic_arn: str, name: str) -> None:
        self.sqs = aws.client("sqs")
        self.sns = aws.client("sns")
        self.url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.subscription = self.sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)["SubscriptionArn"]

    def take(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return alerts
            for message in messages:
                envelope = json.loads(message["Body"])
                alerts.append({**json.loads(envelope["Message"]), "_subject": envelope.get("Subject", "")})
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])

    def close(self) -> None:
        self.sns.unsubscribe(SubscriptionArn=self.subscription)
        self.sqs.delete_queue(QueueUrl=self.url)


class Series:
    """Drives the deployed policy through simulated daily slots, and plays EC2 around it."""

    def __init__(self, aws: Aws, deployment: Deployment, volumes: Volumes, clock: SimulatedClock) -> None:
        self.aws = aws
        self.deployment = deployment
        self.volumes = volumes
        self.clock = clock
        self.policy = DeployedPolicy(aws, deployment, clock)
        self.ec2 = aws.client("ec2")
        self.snapshots: dict[str, Snapshot] = {}
        self.foreign: dict[str, str] = {}
        self.copies: dict[str, str] = {}  # copy -> its source snapshot
        self.announced: set[str] = set()
        self.run: SlotRun | None = None
        self.number = 0

    @property
    def log(self) -> HandlerLog:
        return self.policy.log

    # -- EC2 -----------------------------------------------------------------------------------------------

    def _all_snapshots(self) -> list[dict[str, Any]]:
        pages = self.ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"])
        return [snapshot for page in pages for snapshot in page["Snapshots"]]

    def _ours(self, snapshot: Mapping[str, Any]) -> Snapshot | None:
        tags = _tags(snapshot)
        if tags.get(POLICY_TAG) != self.deployment.policy_name:
            return None
        return Snapshot(str(snapshot["SnapshotId"]), str(snapshot["VolumeId"]), tags.get(SLOT_TAG, "?"))

    def _arn(self, kind: str, resource_id: str) -> str:
        # The layout of the AWS samples ("Create snapshot (createSnapshot)", EBS User Guide, "Amazon EventBridge
        # events for Amazon EBS"): the region where an ARN has its account.
        return f"arn:aws:ec2::{self.aws.region}:{kind}/{resource_id}"

    def _event(self, snapshot: Mapping[str, Any]) -> dict[str, Any]:
        """The `EBS Snapshot Notification` EC2 emits when the snapshot reached completed or error: the fields of the
        EBS User Guide samples (../shared/events/ebs-snapshot-create-succeeded.json and -copy-succeeded.json, beside
        the repository); the `cause` of a failed createSnapshot is not documented, that of createSnapshots is used
        (as ebs-snapshot-create-failed.json, reconstructed, does)."""
        snapshot_id = str(snapshot["SnapshotId"])
        failed = snapshot["State"] == "error"
        copy = snapshot["VolumeId"] == COPY_VOLUME_ID
        source = (
            self._arn("snapshot", self.copies.get(snapshot_id, ""))
            if copy
            else self._arn("volume", snapshot["VolumeId"])
        )
        detail = {
            "event": "copySnapshot" if copy else "createSnapshot",
            "result": "failed" if failed else "succeeded",
            "cause": f"Snapshot {snapshot_id} is in status error" if failed else "",
            "request-id": "",
            "snapshot_id": self._arn("snapshot", snapshot_id),
            "source": source,
            "startTime": scenario.format_slot(snapshot["StartTime"]),
            "endTime": scenario.format_slot(self.clock.now()),
        }
        if copy:
            detail.update(incremental="true", transferType="standard")
        return {
            "Source": "aws.ec2",
            "DetailType": SNAPSHOT_NOTIFICATION,
            "Resources": [detail["snapshot_id"]],
            "Detail": json.dumps(detail),
            "Time": self.clock.now(),
        }

    def _fail_this_slots_logs_snapshot(self, listed: list[dict[str, Any]]) -> None:
        """ERROR_SLOT: the policy's new snapshot of logs breaks while pending (EC2 sets `error`)."""
        for snapshot in listed:
            ours = self._ours(snapshot)
            if (
                ours is not None
                and ours.volume_id == self.volumes.logs
                and ours.slot == self.run_slot
                and snapshot["State"] == "pending"
            ):
                self.aws.fidelity.set_snapshot_state(self.aws.region, ours.snapshot_id, "error", ERROR_MESSAGE)
                snapshot["State"] = "error"

    def announce(self) -> int:
        """EC2's event emitter: one event per snapshot of the account that reached completed or error since the
        last call (AWS emits them for every snapshot, whoever made it); lost on LOST_EVENT_SLOT for db-data's."""
        assert self.run is not None
        listed = self._all_snapshots()
        if self.number == ERROR_SLOT:
            self._fail_this_slots_logs_snapshot(listed)
        entries = []
        for snapshot in listed:
            ours = self._ours(snapshot)
            if ours is not None and ours.snapshot_id not in self.snapshots:
                self.snapshots[ours.snapshot_id] = ours
                self.run.created.append(ours)
            if snapshot["SnapshotId"] in self.announced or snapshot["State"] not in ("completed", "error"):
                continue
            self.announced.add(snapshot["SnapshotId"])
            if ours is not None and snapshot["State"] == "error":
                self.run.failed.append(ours)
            lost = self.number == LOST_EVENT_SLOT and ours is not None and ours.volume_id == self.volumes.db_data
            if lost:
                self.run.lost_events.append(str(snapshot["SnapshotId"]))
                continue
            entry = self._event(snapshot)
            detail = json.loads(entry["Detail"])
            self.run.published[f"{detail['event']} {detail['result']}"] += 1
            entries.append(entry)
        return self.policy.put_events(entries)

    def next_completion(self) -> timedelta | None:
        """How long until the next pending snapshot completes (E11: `snapshot_completion_time` after its start; a
        copy, E25: `snapshot_copy_time`)."""
        fidelity = self.aws.fidelity
        dues = [
            snapshot["StartTime"]
            + (
                fidelity.snapshot_copy_time
                if snapshot["VolumeId"] == COPY_VOLUME_ID
                else fidelity.snapshot_completion_time
            )
            for snapshot in self._all_snapshots()
            if snapshot["State"] == "pending"
        ]
        if not dues:
            return None
        return min(dues) - self.clock.now()

    # -- a slot --------------------------------------------------------------------------------------------

    @property
    def run_slot(self) -> str:
        assert self.run is not None
        return self.run.slot

    def _policy_snapshots(self) -> dict[str, dict[str, Any]]:
        return {s["SnapshotId"]: s for s in self._all_snapshots() if self._ours(s) is not None}

    def run_slot_number(self, slot: datetime, number: int, inbox: AlertInbox) -> SlotRun:
        self.number = number
        self.run = run = SlotRun(slot=scenario.format_slot(slot))
        self.clock.set(slot)
        if number == COPY_SLOT:
            [manual] = [snapshot_id for snapshot_id, what in self.foreign.items() if what.startswith("manual")]
            copy = self.ec2.copy_snapshot(
                SourceSnapshotId=manual, SourceRegion=self.aws.region, Description="copy of the manual snapshot"
            )["SnapshotId"]
            self.copies[copy] = manual
            self.foreign[copy] = f"copy of {manual}"
            run.events.append(f"someone copied {manual} to {copy}")
        before = self._policy_snapshots()
        self.policy.plan(slot)
        if number == VOLUME_DELETED_SLOT:
            self.ec2.delete_volume(VolumeId=self.volumes.scratch)
            run.events.append("scratch deleted after the planner ran, before the worker")
        if number == RATE_LIMITED_SLOT:
            # The same instant of simulated time for both, however long the worker takes to reach db-data: EC2
            # refuses a second snapshot of a volume within 15 s (E13).
            with self.clock.held():
                manual = self.ec2.create_snapshot(VolumeId=self.volumes.db_data, Description="manual, before work")
                self.foreign[manual["SnapshotId"]] = "manual snapshot of db-data"
                run.events.append(f"someone snapshotted db-data by hand as the worker started: {manual['SnapshotId']}")
                self.policy.poll_once(run)
        self.policy.drain(run, self.announce, self.next_completion)
        after = self._policy_snapshots()
        failed = {snapshot.snapshot_id for snapshot in run.failed}
        run.purged = [self.snapshots[s] for s in sorted(set(before) - set(after)) if s not in failed]
        for snapshot in sorted(after.values(), key=lambda snapshot: snapshot["StartTime"]):
            if snapshot["State"] == "completed":
                run.kept.setdefault(str(snapshot["VolumeId"]), []).append(_tags(snapshot)[SLOT_TAG])
        run.alerts = inbox.take()
        return run


def run_series(aws: Aws, deployment: Deployment, slots: int = SLOTS) -> SeriesReport:
    """On an empty EC2 account, create the volumes, then run `slots` daily slots ending before now."""
    moments = scenario.daily_slots(
        deployment.schedule_expression, deployment.schedule_timezone, slots, datetime.now(UTC)
    )
    clock = SimulatedClock(moments[0] - timedelta(hours=1))
    scenario.fresh_ec2(aws)
    inbox = AlertInbox(aws, deployment.worker_environment["OPS_ALERT_TOPIC_ARN"], f"{deployment.policy_name}-e2e-inbox")
    try:
        with scenario.simulated_aws_time(aws, clock):
            volumes = create_volumes(aws, json.loads(deployment.planner_environment["OPS_VOLUME_TAGS"]))
            series = Series(aws, deployment, volumes, clock)
            runs = [series.run_slot_number(moment, number, inbox) for number, moment in enumerate(moments, start=1)]
    finally:
        inbox.close()
    return SeriesReport(
        deployment=deployment,
        volumes=volumes,
        slots=runs,
        snapshots=series.snapshots,
        foreign=series.foreign,
        log=series.log,
        clock=clock,
    )


@dataclass(frozen=True)
class FinalState:
    """The account after the series, as the assertions and the report need it."""

    snapshots: dict[str, dict[str, Any]]  # every snapshot of the account, by id
    volumes: dict[str, dict[str, Any]]  # every volume of the account, by id
    ledger: list[dict[str, Any]]  # ledger items, plain values
    dlq_messages: int
    work_queue_messages: int


def final_state(aws: Aws, deployment: Deployment) -> FinalState:
    ec2 = aws.client("ec2")
    sqs = aws.client("sqs")
    snapshots = {
        snapshot["SnapshotId"]: snapshot
        for page in ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"])
        for snapshot in page["Snapshots"]
    }
    volumes = {
        volume["VolumeId"]: volume
        for page in ec2.get_paginator("describe_volumes").paginate()
        for volume in page["Volumes"]
    }
    return FinalState(
        snapshots=snapshots,
        volumes=volumes,
        ledger=scenario.ledger_items(aws, deployment.ledger_table),
        dlq_messages=scenario.queue_total(sqs, deployment.dlq_url),
        work_queue_messages=scenario.queue_total(sqs, deployment.work_queue_url),
    )


# ---------------------------------------------------------------------------------------------------------------
# Restore tests: what the ami-backup and ebs-snapshot restore runs share
# ---------------------------------------------------------------------------------------------------------------

# The restore tags (docs/DESIGN.md): the test id on every restored resource; the result and the test's slot on the
# backups it tested.
RESTORE_TEST = "ops-automation:restore-test"
RESTORE_RESULT = "ops-automation:restore-result"
RESTORE_TESTED = "ops-automation:restore-tested"

# A restore test's ledger record (`restore#<test id>`, test id `<slot YYYYmmddTHHMMSSZ>-<source id>`), as opposed to
# the index entry of a restored resource (`restore#i-...`, `restore#vol-...`).
TEST_RECORD = re.compile(r"^restore#(\d{8}T\d{6}Z-.+)$")


# The examples whose Terraform creates EC2 resources (the restore tests' isolated network).
NETWORK_EXAMPLES = (Path("examples/ami-backup"), EXAMPLE)


def wait_for_network_applies(applied: scenario.AppliedExamples) -> None:
    """Wait until every example that creates EC2 resources is applied: an EC2 reset (`scenario.fresh_ec2`, which
    keeps what was created before it) while Terraform is still creating a VPC, subnet or security group would lose
    what it created meanwhile."""
    for example in NETWORK_EXAMPLES:
        if example in applied.examples:
            applied.run(example)


def restore_deployment(aws: Aws, run: scenario.TerraformRun, deployment: Deployment, module: str) -> Deployment:
    """The example's policy with its `restore` function in the scheduled function's place: the restore function,
    handler, role and environment, and its schedule, as Terraform applied them (the module block's outputs
    `restore_function_name`, `restore_handler`, `restore_schedule`); the worker and queues are the policy's."""
    outputs = scenario.module_outputs(run, module)
    function, handler = outputs.get("restore_function_name"), outputs.get("restore_handler")
    schedule_output = outputs.get("restore_schedule")
    if not function or not handler or not schedule_output:
        raise KeyError(f"{run.example} deploys no restore function (module {module}: restore_test must be set)")
    configuration = aws.client("lambda").get_function_configuration(FunctionName=function)
    if configuration["Handler"] != handler:
        raise ValueError(f"restore_handler = {handler!r}, but {function} is deployed with {configuration['Handler']!r}")
    schedule = aws.client("scheduler").get_schedule(Name=str(schedule_output["arn"]).rsplit("/", 1)[-1])
    return dataclasses.replace(
        deployment,
        planner_function=str(function),
        planner_handler=str(handler),
        planner_role=configuration["Role"].rsplit("/", 1)[-1],
        planner_environment=configuration["Environment"]["Variables"],
        schedule_arn=str(schedule_output["arn"]),
        schedule_expression=schedule["ScheduleExpression"],
        schedule_timezone=schedule.get("ScheduleExpressionTimezone", "UTC"),
        schedule_input=schedule["Target"]["Input"],
    )


def restore_slot(clock: SimulatedClock) -> datetime:
    """The restore schedule's invocation that follows the backups: the next whole minute of simulated time."""
    return clock.now().replace(second=0, microsecond=0) + timedelta(minutes=1)


def next_due(policy: DeployedPolicy, moments: Iterable[datetime], now: datetime) -> timedelta | None:
    """How long until the first of `moments` after `now`, or until a delayed or in-flight message of the policy's
    work queue becomes visible (read from the in-process SQS emulator, whose delays run on the simulated clock, D4),
    whichever comes first: `DeployedPolicy.drain` then jumps exactly there instead of a whole SQS delay."""
    queue = sqs_backends[ACCOUNT_ID][policy.aws.region].queues[policy.deployment.work_queue_url.rsplit("/", 1)[-1]]
    dues = [max(m.delayed_until, m.visible_at) / 1000 for m in queue._messages]
    upcoming = [moment for moment in moments if moment > now]
    upcoming += [datetime.fromtimestamp(due, UTC) for due in dues if due > now.timestamp()]
    return min(upcoming) - now if upcoming else None


@dataclass(frozen=True)
class Call:
    """An EC2 request a handler made and AWS accepted."""

    operation: str
    params: Mapping[str, Any]
    response: Mapping[str, Any]


class ApiCalls:
    """The EC2 requests of the restore tests that change something, recorded in process (the handlers run here)."""

    RECORDED = frozenset({"RunInstances", "TerminateInstances", "CreateTags", "CreateVolume", "DeleteVolume"})

    @staticmethod
    @contextmanager
    def recording(calls: list[Call]) -> Iterator[None]:
        original = botocore.client.BaseClient._make_api_call

        def record(client: Any, operation: str, params: Mapping[str, Any]) -> Any:
            response = original(client, operation, params)
            if operation in ApiCalls.RECORDED and client.meta.service_model.service_name == "ec2":
                calls.append(Call(operation, dict(params), dict(response)))
            return response

        with mock.patch.object(botocore.client.BaseClient, "_make_api_call", record):
            yield


def details_of(item: Mapping[str, Any]) -> dict[str, str]:
    """A ledger item's `details` map (DynamoDB `M` of `S`), as plain strings."""
    raw = item.get("details") or {}
    return {key: str(next(iter(value.values()))) for key, value in raw.items()}


@dataclass
class RestoreRun(SlotReport):
    """One firing of a restore schedule and the work it caused, until the queue was empty."""

    deployment: Deployment | None = None  # the policy with its restore function as the scheduled one
    log: HandlerLog = field(default_factory=HandlerLog)
    planned: dict[str, Any] = field(default_factory=dict)  # what the restore function answered
    newest: dict[str, str] = field(default_factory=dict)  # source -> its newest backup (AMI id / first snapshot id)
    calls: list[Call] = field(default_factory=list)
    published: Counter[str] = field(default_factory=Counter)  # state events published, by state / event
    alerts: list[dict[str, Any]] = field(default_factory=list)
    ledger: list[dict[str, Any]] = field(default_factory=list)
    work_queue_messages: int = 0
    dlq_messages: int = 0
    finished: datetime | None = None  # simulated time when the queue was empty
    seconds: float = 0.0  # real time

    def read_back(self, aws: Aws) -> None:
        assert self.deployment is not None
        sqs = aws.client("sqs")
        self.ledger = scenario.ledger_items(aws, self.deployment.ledger_table)
        self.work_queue_messages = scenario.queue_total(sqs, self.deployment.work_queue_url)
        self.dlq_messages = scenario.queue_total(sqs, self.deployment.dlq_url)

    def calls_of(self, operation: str) -> list[Call]:
        return [call for call in self.calls if call.operation == operation]

    @property
    def records(self) -> dict[str, dict[str, Any]]:
        """The restore tests as the ledger records them, by test id."""
        return {
            match.group(1): item
            for item in self.ledger
            if (match := TEST_RECORD.match(str(item.get("sk", "")))) is not None
        }

    @property
    def leases(self) -> list[dict[str, Any]]:
        return [item for item in self.ledger if str(item.get("sk", "")).startswith("restore-lease#")]


def restore_diagnostics(run: RestoreRun) -> list[str]:
    """What a restore run's tests came to, for the tier-3 output: each test's result and reason, the messages the
    worker was handed, every alert and every log line at WARNING or above (a failing assertion then shows why)."""
    lines = [f"  restore messages: {dict(run.messages)}; planned: {run.planned}"]
    for test_id, record in sorted(run.records.items()):
        details = details_of(record)
        lines.append(
            f"  {test_id}: {record.get('state')} {details.get('result', '')} {details.get('reason', '')} "
            f"({details.get('duration_seconds', '?')} s)"
        )
    lines += [f"  alert: {alert.get('alert')}: {alert.get('reason', '')}" for alert in run.alerts]
    warnings = run.log.at("WARNING", "ERROR", "CRITICAL")
    lines += [f"  log {line.get('level')}: {line.get('message')}" for line in warnings]
    return lines


# ---------------------------------------------------------------------------------------------------------------
# The ebs-snapshot restore test, after the series
# ---------------------------------------------------------------------------------------------------------------

VOLUME_NOTIFICATION = "EBS Volume Notification"
# AWS documents no duration for a volume's `creating` phase (fidelity E60 parameter, assumed): longer than the
# first check (30 s), so the createVolume event decides.
VOLUME_CREATION_TIME = timedelta(seconds=45)
SOURCE_SNAPSHOT_TAG = "ops-automation:source-snapshot"


@dataclass(frozen=True)
class RestoredVolume:
    """A volume the restore tests created, as DescribeVolumes showed it when it was first seen."""

    volume_id: str
    snapshot_id: str
    test_id: str
    first_seen: dict[str, Any]


@dataclass
class EbsRestoreReport(RestoreRun):
    restored: dict[str, RestoredVolume] = field(default_factory=dict)  # by volume id
    available: set[str] = field(default_factory=set)  # restored volumes seen available
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)  # every volume of the account afterwards
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)  # the policy's snapshots afterwards
    subnet_zone: str = ""


class VolumeEmitter:
    """EBS's `EBS Volume Notification`: `createVolume` (available / failed) for every volume of the account whose
    creation ended since the last call, `deleteVolume` (deleted) for every volume gone - the shape of the EBS User
    Guide samples ("Amazon EventBridge events for Amazon EBS",
    https://docs.aws.amazon.com/ebs/latest/userguide/ebs-cloud-watch-events.html)."""

    def __init__(self, aws: Aws, policy: DeployedPolicy, report: EbsRestoreReport) -> None:
        self.aws = aws
        self.ec2 = aws.client("ec2")
        self.policy = policy
        self.report = report
        self.states = {str(v["VolumeId"]): str(v["State"]) for v in self._volumes()}

    def _volumes(self) -> list[dict[str, Any]]:
        return [v for page in self.ec2.get_paginator("describe_volumes").paginate() for v in page["Volumes"]]

    def _entry(self, volume_id: str, event: str, result: str) -> dict[str, Any]:
        self.report.published[f"{event} {result}"] += 1
        detail = {"result": result, "cause": "", "event": event, "request-id": f"e2e-{volume_id}-{event}"}
        return {
            "Source": "aws.ec2",
            "DetailType": VOLUME_NOTIFICATION,
            "Resources": [f"arn:aws:ec2:{self.aws.region}:{ACCOUNT_ID}:volume/{volume_id}"],
            "Detail": json.dumps(detail),
            "Time": self.policy.clock.now(),
        }

    def announce(self) -> int:
        entries = []
        current = {}
        for volume in self._volumes():
            volume_id, state = str(volume["VolumeId"]), str(volume["State"])
            current[volume_id] = state
            tags = _tags(volume)
            if RESTORE_TEST in tags and volume_id not in self.report.restored:
                self.report.restored[volume_id] = RestoredVolume(
                    volume_id, str(volume.get("SnapshotId", "")), tags[RESTORE_TEST], volume
                )
            if state == "available" and volume_id in self.report.restored:
                self.report.available.add(volume_id)
            previous = self.states.get(volume_id)
            if previous in (None, "creating") and state in ("available", "error"):
                entries.append(
                    self._entry(volume_id, "createVolume", "available" if state == "available" else "failed")
                )
        for volume_id in sorted(set(self.states) - set(current)):
            entries.append(self._entry(volume_id, "deleteVolume", "deleted"))
        self.states = current
        return self.policy.put_events(entries)

    def next_change(self) -> timedelta | None:
        """Until the next volume ends `creating` (E60) or a delayed message of the work queue comes due."""
        now = self.policy.clock.now()
        records = self.aws.fidelity.volume_records.values()
        return next_due(self.policy, (r.created + r.duration for r in records if r.pinned is None), now)


def newest_sets(series: SeriesReport, snapshots: Mapping[str, dict[str, Any]]) -> dict[str, str]:
    """Per source volume, its newest completed snapshot among those left: what a restore test creates a volume of."""
    newest: dict[str, dict[str, Any]] = {}
    for snapshot_id, snapshot in snapshots.items():
        ours = series.snapshots.get(snapshot_id)
        if ours is None or snapshot["State"] != "completed":
            continue
        if ours.volume_id not in newest or snapshot["StartTime"] > newest[ours.volume_id]["StartTime"]:
            newest[ours.volume_id] = snapshot
    return {volume_id: str(snapshot["SnapshotId"]) for volume_id, snapshot in newest.items()}


def run_restore(aws: Aws, series: SeriesReport, restore: Deployment) -> EbsRestoreReport:
    """Fire the restore schedule once, right after the series, and work the queue until every test is finished and
    its sweep has run; on the series' simulated clock."""
    assert series.clock is not None, "run_series keeps the clock the restore run goes on with"
    clock = series.clock
    started = time.monotonic()
    slot = restore_slot(clock)
    policy = DeployedPolicy(aws, restore, clock, handler_clock=True)
    report = EbsRestoreReport(slot=scenario.format_slot(slot), deployment=restore, log=policy.log)
    inbox = AlertInbox(aws, restore.worker_environment["OPS_ALERT_TOPIC_ARN"], f"{restore.policy_name}-restore-inbox")
    fidelity = aws.fidelity
    creation_time, fidelity.volume_creation_time = fidelity.volume_creation_time, VOLUME_CREATION_TIME
    ec2 = aws.client("ec2")
    config = json.loads(restore.worker_environment["OPS_RESTORE_TEST"])
    report.subnet_zone = ec2.describe_subnets(SubnetIds=[config["subnet_id"]])["Subnets"][0]["AvailabilityZone"]
    try:
        with scenario.simulated_aws_time(aws, clock), ApiCalls.recording(report.calls):
            listed = ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"])
            report.newest = newest_sets(series, {s["SnapshotId"]: s for page in listed for s in page["Snapshots"]})
            emitter = VolumeEmitter(aws, policy, report)
            clock.set(slot)
            report.planned = policy.plan(slot)
            policy.drain(report, emitter.announce, emitter.next_change)
            report.alerts = inbox.take()
            report.finished = clock.now()
    finally:
        fidelity.volume_creation_time = creation_time
        inbox.close()
    state = final_state(aws, series.deployment)
    policy_name = series.deployment.policy_name
    report.snapshots = {i: s for i, s in state.snapshots.items() if _tags(s).get(POLICY_TAG) == policy_name}
    report.volumes = state.volumes
    report.read_back(aws)
    report.seconds = time.monotonic() - started
    return report


def restore_lines(series: SeriesReport, report: EbsRestoreReport) -> list[str]:
    """The restore run in a few lines (`make demo`): one test in full, then the count."""
    results = Counter(details_of(record).get("result", "?") for record in report.records.values())
    lines = []
    for restored in sorted(report.restored.values(), key=lambda restored: restored.test_id)[:1]:
        source = series.snapshots[restored.snapshot_id].volume_id if restored.snapshot_id in series.snapshots else "?"
        details = details_of(report.records.get(restored.test_id, {}))
        tags = _tags(report.snapshots.get(restored.snapshot_id, {}))
        gone = "deleted" if restored.volume_id not in report.volumes else "still there"
        lines += [
            f"ebs-snapshot: {series.volumes.names.get(source, source)}'s newest snapshot {restored.snapshot_id} -> "
            f"volume {restored.volume_id} ({restored.first_seen.get('VolumeType', '?')}) in "
            f"{restored.first_seen.get('AvailabilityZone')} (the restore subnet's zone: {report.subnet_zone})",
            f"  creating {VOLUME_CREATION_TIME.total_seconds():.0f} s (assumed); {details.get('result', '?')} after "
            f"{details.get('duration_seconds', '?')} s; volume {gone}; snapshot tagged "
            f"ops-automation:restore-result={tags.get('ops-automation:restore-result', '-')}",
        ]
    lines.append(
        f"  {len(report.records)} sources tested: "
        + ", ".join(f"{count} {result}" for result, count in sorted(results.items()))
        + f"; {report.clock_advances} jumps of simulated time, {report.seconds:.0f} s of real time"
    )
    return lines
