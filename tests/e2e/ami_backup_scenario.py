"""A simulated week of AMI backups through the deployed examples/ami-backup, then one run of its restore tests: its
tier-3 test.

On the harness of `tests/e2e/scenario.py` (Scheduler, the Lambda service, simulated time), this module plays EC2's
event emitter: it publishes `EC2 AMI State Change` for each image that became available, on the local
EventBridge, whose rule routes it to the work queue. Simulated time makes the worker's delayed messages
(`check_image`, `purge_snapshots`) come due at once, retention see one backup per day, and the
eventual-consistency windows of the fidelity patches (E7: DeleteSnapshot refused for a while after
DeregisterImage; E9: deregistered AMIs still listed for a while) run on the same clock.

After the week, the example's `restore` schedule is fired once (`run_restore`): the worker launches each source's
newest AMI in the example's isolated subnet, and this module plays EC2 again - `EC2 Instance State-change
Notification` for every instance state change (moto emits none), launches `pending` for LAUNCH_TIME and status
checks `initializing` for STATUS_CHECK_TIME (fidelity E58/E59), and the restored copy of IMPAIRED_NAME failing its
instance status check (`impair_instance`). The first launch of CAPACITY_NAME's newest AMI is refused with
CAPACITY_ERROR (`fail_run_instances`): the worker retries it with back-off. Before the run, an instance of the policy
tagged as a restore test (an abandoned one, LEFTOVER_TEST_ID) is launched past its deadline and grace, with a
bystander that carries the policy's tags but not the restore-test tag: the sweep takes the first alone.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import botocore.client
import botocore.exceptions
from scripts.local_aws import ACCOUNT_ID, Aws
from tests.e2e import scenario
from tests.e2e.ebs_snapshot_scenario import (
    RESTORE_RESULT,
    RESTORE_TEST,
    AlertInbox,
    ApiCalls,
    RestoreRun,
    next_due,
    restore_slot,
)
from tests.e2e.ebs_snapshot_scenario import RESTORE_TESTED as RESTORE_TESTED  # the tier-3 tests read it here
from tests.e2e.ebs_snapshot_scenario import details_of as ebs_details
from tests.e2e.scenario import DeployedPolicy, Deployment, HandlerLog, SimulatedClock, SlotReport
from tests.support.moto_fidelity import DEREGISTERED

EXAMPLE = Path("examples/ami-backup")
BACKUP_TAG = {"Backup": "daily"}
FLEET_SIZE = 4
DAYS = 7
# The tagged instance that is terminated on this day (1-based), before that day's run.
TERMINATION_DAY = 4
STATE_CHANGE = "EC2 AMI State Change"
# The example's module block (its outputs, as `scenario.module_outputs` reads them, name the restore function).
MODULE = "ami_backup"


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
class DayReport(SlotReport):
    created: list[Backup] = field(default_factory=list)
    purged: list[Backup] = field(default_factory=list)
    kept: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class WeekReport:
    deployment: Deployment
    fleet: Fleet
    days: list[DayReport]
    backups: dict[str, Backup]
    log: HandlerLog
    clock: SimulatedClock | None = None  # where the week left simulated time (the restore run goes on from there)

    @property
    def purged(self) -> list[Backup]:
        return [backup for day in self.days for backup in day.purged]


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
        self.policy = DeployedPolicy(aws, deployment, clock)
        self.ec2 = aws.client("ec2")
        self.backups: dict[str, Backup] = {}
        self.announced: set[str] = set()

    @property
    def log(self) -> HandlerLog:
        return self.policy.log

    # -- EC2's event emitter -------------------------------------------------------------------------------

    def announce_state_changes(self) -> int:
        """Publish `EC2 AMI State Change` for every image that reached available/failed since the last call.

        EC2 emits these itself (for every AMI of the account, ours or not); here they are put on the local
        default event bus, and the rule Terraform created routes them to the work queue."""
        entries = []
        for image in _registered(self.ec2, Owners=["self"]):
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
        return self.policy.put_events(entries)

    # -- a day ---------------------------------------------------------------------------------------------

    def _managed_images(self) -> dict[str, dict[str, Any]]:
        policy_filter = [{"Name": "tag:ops-automation:policy", "Values": [self.deployment.policy_name]}]
        return {image["ImageId"]: image for image in _registered(self.ec2, Owners=["self"], Filters=policy_filter)}

    def run_day(self, slot: datetime, number: int) -> DayReport:
        day = DayReport(slot=scenario.format_slot(slot))
        self.clock.set(slot)
        if number == TERMINATION_DAY:
            self.ec2.terminate_instances(InstanceIds=[self.fleet.terminated])
        before = self._managed_images()
        self.policy.plan(slot)
        self.policy.drain(day, self.announce_state_changes)
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
    """On an empty EC2 account, create the fleet, then run `days` daily slots ending before now."""
    slots = scenario.daily_slots(deployment.schedule_expression, deployment.schedule_timezone, days, datetime.now(UTC))
    clock = SimulatedClock(slots[0] - timedelta(hours=1))
    scenario.fresh_ec2(aws)
    with scenario.simulated_aws_time(aws, clock):
        fleet = create_fleet(aws)
        week = Week(aws, deployment, fleet, clock)
        reports = [week.run_day(slot, number) for number, slot in enumerate(slots, start=1)]
    return WeekReport(deployment=deployment, fleet=fleet, days=reports, backups=week.backups, log=week.log, clock=clock)


@dataclass(frozen=True)
class FinalState:
    """The account after the week, as the assertions and the report need it."""

    images: dict[str, dict[str, Any]]  # every image of the account, by id
    snapshots: dict[str, dict[str, Any]]  # every snapshot of the account, by id
    ledger: list[dict[str, Any]]  # ledger items, plain values
    dlq_messages: int
    work_queue_messages: int


def final_state(aws: Aws, deployment: Deployment) -> FinalState:
    ec2 = aws.client("ec2")
    sqs = aws.client("sqs")
    images = {image["ImageId"]: image for image in _registered(ec2, Owners=["self"])}
    snapshots = {
        snapshot["SnapshotId"]: snapshot
        for page in ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"])
        for snapshot in page["Snapshots"]
    }
    return FinalState(
        images=images,
        snapshots=snapshots,
        ledger=scenario.ledger_items(aws, deployment.ledger_table),
        dlq_messages=scenario.queue_total(sqs, deployment.dlq_url),
        work_queue_messages=scenario.queue_total(sqs, deployment.work_queue_url),
    )


# ---------------------------------------------------------------------------------------------------------------
# The restore tests (restore_test of the example), after the week
# ---------------------------------------------------------------------------------------------------------------

INSTANCE_STATE = "EC2 Instance State-change Notification"
# The states the example's rule takes (the module's instance-state pattern); `pending` is published and not routed.
ROUTED_STATES = ("running", "shutting-down", "terminated", "stopped")
# AWS documents neither duration: a launch's `pending` phase and the status checks' `initializing` phase after it
# (fidelity E58/E59 parameters, assumed). The checks outlast the first check (120 s), so the worker waits and
# polls before it passes.
LAUNCH_TIME = timedelta(seconds=30)
STATUS_CHECK_TIME = timedelta(minutes=3)
# The backed-up instance whose restored copy fails its instance status check (`impair_instance`).
IMPAIRED_NAME = "web-4"
TEST_FAILED = "restore test failed"
# The backed-up instance whose newest AMI's first restore launch is refused for capacity (retried with back-off).
CAPACITY_NAME = "web-2"
CAPACITY_ERROR = "InsufficientInstanceCapacity"
# The restore-test id of the abandoned instance planted before the run (the sweep's leftover), and the report.
LEFTOVER_TEST_ID = "e2e-abandoned-restore-test"
LEFTOVERS_CLEANED = "restore test leftovers cleaned up"
# A restore test's instance counts as abandoned this long after its deadline (the core's GRACE). Not imported: the
# handlers' modules are loaded with the deployed environment, after the week's.
GRACE = timedelta(minutes=15)
MANAGED_BY = "ops-automation:managed-by"
POLICY = "ops-automation:policy"


@dataclass(frozen=True)
class RestoredInstance:
    """An instance the restore tests launched, as DescribeInstances showed it when it was first seen."""

    instance_id: str
    image_id: str  # its ops-automation:source-image tag
    test_id: str  # its ops-automation:restore-test tag
    first_seen: dict[str, Any]
    impaired: bool


@dataclass(frozen=True)
class Refusal:
    """An EC2 request of the handlers that AWS refused (ApiCalls records the accepted ones only)."""

    operation: str
    params: Mapping[str, Any]
    code: str


@contextmanager
def refusals_recorded(refused: list[Refusal]) -> Iterator[None]:
    """Record the refused RunInstances requests (a refused launch makes nothing ApiCalls could see)."""
    original = botocore.client.BaseClient._make_api_call

    def record(client: Any, operation: str, params: Mapping[str, Any]) -> Any:
        try:
            return original(client, operation, params)
        except botocore.exceptions.ClientError as error:
            if operation == "RunInstances" and client.meta.service_model.service_name == "ec2":
                refused.append(Refusal(operation, dict(params), str(error.response.get("Error", {}).get("Code"))))
            raise

    with mock.patch.object(botocore.client.BaseClient, "_make_api_call", record):
        yield


@dataclass
class AmiRestoreReport(RestoreRun):
    restored: dict[str, RestoredInstance] = field(default_factory=dict)  # by instance id
    instances: dict[str, dict[str, Any]] = field(default_factory=dict)  # the restored instances afterwards
    images: dict[str, dict[str, Any]] = field(default_factory=dict)  # the policy's images afterwards
    refused: list[Refusal] = field(default_factory=list)  # RunInstances refused (CAPACITY_ERROR injected)
    capacity_image: str | None = None  # the AMI whose first restore launch was refused
    leftover: str | None = None  # the abandoned restore-test instance planted before the run
    bystander: str | None = None  # the policy-tagged instance without the restore-test tag planted with it
    planted: dict[str, dict[str, Any]] = field(default_factory=dict)  # both, as DescribeInstances shows them after

    def restored_from(self, image_id: str) -> list[RestoredInstance]:
        return [restored for restored in self.restored.values() if restored.image_id == image_id]


class InstanceEmitter:
    """EC2's `EC2 Instance State-change Notification`: one event per state change of any instance of the account
    since the last call (AWS emits them for every instance; the deployed rule picks the states it routes). The
    restored copy of IMPAIRED_NAME's newest AMI fails its instance status check from its launch on."""

    def __init__(self, aws: Aws, policy: DeployedPolicy, report: AmiRestoreReport, impaired_images: set[str]) -> None:
        self.aws = aws
        self.ec2 = aws.client("ec2")
        self.policy = policy
        self.report = report
        self.impaired_images = impaired_images
        self.states: dict[str, str] = {i["InstanceId"]: i["State"]["Name"] for i in self._instances()}
        # Instances of the account before the run (the planted leftover too) were not launched by its tests.
        self.before = frozenset(self.states)

    def _instances(self) -> list[dict[str, Any]]:
        pages = self.ec2.get_paginator("describe_instances").paginate()
        return [i for page in pages for reservation in page["Reservations"] for i in reservation["Instances"]]

    def announce(self) -> int:
        entries = []
        for instance in self._instances():
            instance_id, state = str(instance["InstanceId"]), str(instance["State"]["Name"])
            tags = _tag_map(instance)
            if RESTORE_TEST in tags and instance_id not in self.report.restored and instance_id not in self.before:
                image_id = tags.get(SOURCE_IMAGE, "?")
                impaired = image_id in self.impaired_images
                if impaired:
                    self.aws.fidelity.impair_instance(instance_id, "instance")
                self.report.restored[instance_id] = RestoredInstance(
                    instance_id, image_id, tags[RESTORE_TEST], instance, impaired
                )
            if self.states.get(instance_id) == state:
                continue
            self.states[instance_id] = state
            self.report.published[state] += 1
            detail = {"instance-id": instance_id, "state": state}
            entries.append(
                {
                    "Source": "aws.ec2",
                    "DetailType": INSTANCE_STATE,
                    "Resources": [f"arn:aws:ec2:{self.aws.region}:{ACCOUNT_ID}:instance/{instance_id}"],
                    "Detail": json.dumps(detail),
                    "Time": self.policy.clock.now(),
                }
            )
        return self.policy.put_events(entries)

    def next_change(self) -> timedelta | None:
        """Until the next launch ends `pending` (E58) or a delayed message of the work queue comes due."""
        fidelity = self.aws.fidelity
        now = self.policy.clock.now()
        moments = [t.started + t.duration for t in fidelity.instance_transitions.values()]
        return next_due(self.policy, moments, now)


SOURCE_IMAGE = "ops-automation:source-image"


def _tag_map(resource: Mapping[str, Any]) -> dict[str, str]:
    return {str(tag["Key"]): str(tag["Value"]) for tag in resource.get("Tags", [])}


def newest_backups(week: WeekReport, images: Mapping[str, dict[str, Any]]) -> dict[str, str]:
    """Per source instance, its newest backup among the images still registered: what a restore test launches."""
    newest: dict[str, Backup] = {}
    for image_id in images:
        backup = week.backups.get(image_id)
        if backup is not None and (backup.instance_id not in newest or backup.slot > newest[backup.instance_id].slot):
            newest[backup.instance_id] = backup
    return {instance_id: backup.image_id for instance_id, backup in newest.items()}


def plant_leftovers(ec2: Any, policy: str, clock: SimulatedClock, past: timedelta) -> tuple[str, str]:
    """Launch an abandoned restore-test instance of `policy` (its test lost its checks) and a bystander with the
    policy's tags but no restore-test tag, then let `past` of simulated time go by: (leftover, bystander)."""
    ownership = {MANAGED_BY: "terraform-aws-ops-automation", POLICY: policy}
    leftover = _launch(ec2, "abandoned-restore", {**ownership, RESTORE_TEST: LEFTOVER_TEST_ID})
    bystander = _launch(ec2, "policy-tagged-bystander", ownership)
    clock.advance(past)
    return leftover, bystander


def run_restore(
    aws: Aws,
    week: WeekReport,
    restore: Deployment,
    impaired_name: str | None = IMPAIRED_NAME,
    capacity_name: str | None = CAPACITY_NAME,
    leftovers: bool = True,
) -> AmiRestoreReport:
    """Fire the restore schedule once, right after the week, and work the queue until every test is finished and
    its sweep has run; on the week's simulated clock, with its fleet and backups. The restored copy of
    `impaired_name`'s newest AMI fails its instance status check (None: every copy is healthy); the first launch of
    `capacity_name`'s is refused with CAPACITY_ERROR (None: no refusal). With `leftovers`, an abandoned restore-test
    instance and a policy-tagged bystander are launched first, the deadline and grace (and a minute) before the run."""
    assert week.clock is not None, "run_week keeps the clock the restore run goes on with"
    clock = week.clock
    started = time.monotonic()
    slot = restore_slot(clock)
    policy = DeployedPolicy(aws, restore, clock, handler_clock=True)
    report = AmiRestoreReport(slot=scenario.format_slot(slot), deployment=restore, log=policy.log)
    inbox = AlertInbox(aws, restore.worker_environment["OPS_ALERT_TOPIC_ARN"], f"{restore.policy_name}-restore-inbox")
    fidelity = aws.fidelity
    durations = (fidelity.instance_launch_time, fidelity.status_check_time)
    ec2 = aws.client("ec2")
    deadline = timedelta(minutes=int(json.loads(restore.worker_environment["OPS_RESTORE_TEST"])["deadline_minutes"]))
    try:
        with scenario.simulated_aws_time(aws, clock):
            if leftovers:
                past = deadline + GRACE + timedelta(minutes=1)
                report.leftover, report.bystander = plant_leftovers(ec2, week.deployment.policy_name, clock, past)
                slot = restore_slot(clock)
                report.slot = scenario.format_slot(slot)
            fidelity.instance_launch_time, fidelity.status_check_time = LAUNCH_TIME, STATUS_CHECK_TIME
            with ApiCalls.recording(report.calls), refusals_recorded(report.refused):
                images = _registered(ec2, Owners=["self"])
                report.newest = newest_backups(week, {image["ImageId"]: image for image in images})
                impaired = {report.newest[i] for i, name in week.fleet.names.items() if name == impaired_name}
                for source, name in week.fleet.names.items():
                    if name == capacity_name and source in report.newest:
                        report.capacity_image = report.newest[source]
                        fidelity.fail_run_instances(CAPACITY_ERROR, image_id=report.capacity_image)
                emitter = InstanceEmitter(aws, policy, report, impaired)
                clock.set(slot)
                report.planned = policy.plan(slot)
                policy.drain(report, emitter.announce, emitter.next_change)
                report.alerts = inbox.take()
                report.finished = clock.now()
    finally:
        fidelity.instance_launch_time, fidelity.status_check_time = durations
        # A refusal the run did not use is not left for the next request of the image.
        fidelity.run_instances_faults[:] = [
            fault for fault in fidelity.run_instances_faults if fault.resource_id != report.capacity_image
        ]
        inbox.close()
    policy_filter = [{"Name": "tag:ops-automation:policy", "Values": [week.deployment.policy_name]}]
    report.images = {image["ImageId"]: image for image in _registered(ec2, Owners=["self"], Filters=policy_filter)}
    if report.restored:
        described = ec2.describe_instances(InstanceIds=sorted(report.restored))
        report.instances = {i["InstanceId"]: i for r in described["Reservations"] for i in r["Instances"]}
    if report.leftover is not None and report.bystander is not None:
        described = ec2.describe_instances(InstanceIds=[report.leftover, report.bystander])
        report.planted = {i["InstanceId"]: i for r in described["Reservations"] for i in r["Instances"]}
    report.read_back(aws)
    report.seconds = time.monotonic() - started
    return report


def restore_lines(week: WeekReport, report: AmiRestoreReport) -> list[str]:
    """The restore run in a few lines (`make demo`): one test in full, then the count."""
    results = Counter(ebs_details(record).get("result", "?") for record in report.records.values())
    lines = []
    for restored in sorted(report.restored.values(), key=lambda restored: restored.test_id)[:1]:
        seen = restored.first_seen
        backup = week.backups[restored.image_id]
        record = report.records.get(restored.test_id, {})
        details = ebs_details(record)
        image_tags = _tag_map(report.images.get(restored.image_id, {}))
        state = report.instances.get(restored.instance_id, {}).get("State", {}).get("Name", "?")
        lines += [
            f"ami-backup: {week.fleet.names.get(backup.instance_id, backup.instance_id)}'s newest AMI "
            f"{restored.image_id} (backup of {backup.slot}) -> instance {restored.instance_id} "
            f"({seen.get('InstanceType', '?')}) in {seen.get('SubnetId')}, "
            f"{', '.join(g['GroupId'] for i in seen.get('NetworkInterfaces', []) for g in i.get('Groups', []))}, "
            f"public IP: {seen.get('PublicIpAddress', 'none')}",
            f"  pending {LAUNCH_TIME.total_seconds():.0f} s, status checks initializing "
            f"{STATUS_CHECK_TIME.total_seconds():.0f} s (assumed); {details.get('result', '?')} after "
            f"{details.get('duration_seconds', '?')} s; instance {state}; AMI tagged "
            f"{RESTORE_RESULT}={image_tags.get(RESTORE_RESULT, '-')}",
        ]
    lines.append(
        f"  {len(report.records)} sources tested: "
        + ", ".join(f"{count} {result}" for result, count in sorted(results.items()))
        + f"; {report.clock_advances} jumps of simulated time, {report.seconds:.0f} s of real time"
    )
    return lines
