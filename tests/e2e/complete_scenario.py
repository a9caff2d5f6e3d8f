"""A simulated month of examples/complete: the six modules in one account, on one clock, with one fleet - the tier-3
test (a few days) and `make demo` (30 days).

The example deploys, in Tokyo, ami-backup, two ebs-snapshot policies (hourly, and weekly as the source of the DR
copies), snapshot-copy (its destination sub-module in Osaka), deregister-cleanup, instance-scheduler and
ssm-runcommand, sharing one alert topic and one KMS key. Every policy is read back from what Terraform applied, by
module block (`scenario.module_outputs`); the block's module is told by its worker's handler.

On the harness of `tests/e2e/scenario.py`, this module plays, for all six at once:

* EventBridge Scheduler: every deployed schedule's invocations in the window, computed from its cron expression and
  time zone as Scheduler evaluates them (`scheduler_slots`), merged into one calendar and fired in time order;
* the Lambda service: every policy's work queue polled after each change, so one module's work can wake another's;
* EC2 and SSM as event emitters, on both regions' default buses: `EC2 AMI State Change` (available, failed, and
  deregistered - deregister-cleanup's cue), `EBS Snapshot Notification` (createSnapshot for CreateSnapshot's
  snapshots, copySnapshot in the destination region), `EC2 Instance State-change Notification` for every transition,
  and SSM's command and invocation status changes (E52). The rules Terraform created decide what reaches each queue.

Time jumps straight to the next thing that happens: a schedule slot, a message coming due in any work queue (read
from the in-process SQS emulator: delays and visibility timeouts run on the simulated clock, D4), a snapshot or copy
completing (E11, E25), an instance transition ending (E33), an SSM status change (E43). So an hourly schedule over a
month costs the work it causes, not a fixed step.

The fleet, built from the tags the policies were deployed with: `app-1`, `app-2` (ami-backup's and
instance-scheduler's tags: backed up at night while the office-hours schedule has them stopped), `db-1` (ami-backup's,
ssm-runcommand's and the ebs-snapshot policies' tags, always on, data volumes `db-data` and `db-wal` attached), `db-2`
(ssm-runcommand's tags), `bastion` (no tag), and an unattached volume `tmp`. Someone else's resources share the
account: a hand-made AMI of app-1 and a manual snapshot of db-wal; nothing of theirs, and nothing of `bastion`/`tmp`,
may be touched. The interactions are the point: deregister-cleanup receives the `deregistered` event of every AMI
ami-backup retires (the snapshots go once, whoever deletes them first), snapshot-copy copies what its source policy
made, ami-backup images instances the scheduler stopped, every createSnapshot event reaches three policies' queues.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import botocore.client
from moto.ec2.models import ec2_backends
from moto.sqs.models import sqs_backends
from scripts.local_aws import ACCOUNT_ID, LocalAws
from tests.e2e import instance_scheduler_scenario as isched
from tests.e2e import scenario
from tests.e2e import ssm_runcommand_scenario as ssm
from tests.e2e.ebs_snapshot_scenario import AlertInbox
from tests.e2e.scenario import DeployedPolicy, Deployment, SimulatedClock, SlotReport
from tests.support.moto_fidelity import DEREGISTERED, ssm_event_entries
from tests.support.scheduler_slots import scheduler_slots

EXAMPLE = Path("examples/complete")
TOKYO = ZoneInfo("Asia/Tokyo")
POLICY_TAG = "ops-automation:policy"
SOURCE_SNAPSHOT_TAG = "ops-automation:source-snapshot"
AMI_STATE = "EC2 AMI State Change"
SNAPSHOT_NOTIFICATION = "EBS Snapshot Notification"
COPY_VOLUME_ID = "vol-ffffffff"  # CopySnapshot's copies carry this arbitrary volume id (API_Snapshot, VolumeId)
# How long things take that AWS publishes no figure for (the order of magnitude the module scenarios assume).
INSTANCE_TRANSITION = timedelta(minutes=2)
SSM_DELIVERY = timedelta(seconds=10)
SSM_RUN = timedelta(minutes=5)
MAX_ROUNDS_PER_SLOT = 500
# Mutating EC2 requests whose success the summaries count, and the parameter naming what each acted on.
COUNTED = {
    "CreateImage": "ImageId",
    "CreateSnapshot": "SnapshotId",
    "CopyImage": "ImageId",
    "CopySnapshot": "SnapshotId",
    "DeregisterImage": "ImageId",
    "DeleteSnapshot": "SnapshotId",
}


def _tags(resource: Mapping[str, Any]) -> dict[str, str]:
    return {str(tag["Key"]): str(tag["Value"]) for tag in resource.get("Tags", [])}


def _tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


# ---------------------------------------------------------------------------------------------------------------
# What Terraform deployed
# ---------------------------------------------------------------------------------------------------------------


SCHEDULER = "instance-scheduler"
RUN_COMMAND = "ssm-runcommand"
CLEANUP = "deregister-cleanup"


@dataclass(frozen=True)
class Deployments:
    """The example's policies by module block (`ami_backup`, `ebs_snapshot`, ...), each of the module `kinds` says."""

    kinds: dict[str, str]  # block -> module (ami-backup, ebs-snapshot, ...), in the example's order
    policies: dict[str, Deployment]  # block -> deployment (deregister-cleanup: its `planner_*` are the sweeper)
    scheduler: isched.SchedulerDeployment
    runcommand: ssm.RunCommandDeployment
    alert_topic_arn: str
    destination_region: str

    def blocks(self, kind: str) -> list[str]:
        return [block for block, known in self.kinds.items() if known == kind]

    def block(self, kind: str) -> str:
        [block] = self.blocks(kind)
        return block


def module_kind(outputs: Mapping[str, Any]) -> str | None:
    """The module a block instantiates, from its worker's handler (`ops_automation.<module>.handlers...`); None for a
    block without functions (snapshot-copy's destination sub-module)."""
    handler = outputs.get("worker_handler")
    return str(handler).split(".")[1].replace("_", "-") if handler else None


def deployments(aws: LocalAws, run: scenario.TerraformRun) -> Deployments:
    """Every policy of the example as Terraform applied it, from its module block's outputs."""
    prefix = scenario.MODULE_OUTPUT_PREFIX
    blocks = sorted(name.removeprefix(prefix) for name in run.outputs if name.startswith(prefix))
    outputs = {block: scenario.module_outputs(run, block) for block in blocks}
    kinds = {block: kind for block in blocks if (kind := module_kind(outputs[block])) is not None}
    policies = {
        block: scenario.deployment_from_terraform(
            aws, outputs[block], EXAMPLE, scheduled="sweeper" if kind == CLEANUP else "planner"
        )
        for block, kind in kinds.items()
        if kind not in (SCHEDULER, RUN_COMMAND)
    }
    how = f"terraform apply of {EXAMPLE.as_posix()} against a local AWS (moto server on 127.0.0.1)"
    [scheduler_block] = [block for block, kind in kinds.items() if kind == SCHEDULER]
    [runcommand_block] = [block for block, kind in kinds.items() if kind == RUN_COMMAND]
    runcommand_outputs = outputs[runcommand_block]
    worker = aws.client("lambda").get_function_configuration(FunctionName=runcommand_outputs["worker_function_name"])
    environment = worker["Environment"]["Variables"]
    topic = environment["OPS_ALERT_TOPIC_ARN"]
    # The two modules whose own scenarios read the example's alarm topic (and bucket) outputs: here the shared ones.
    scheduler = isched.deployment_from_terraform(aws, {**outputs[scheduler_block], "alarm_topic_arn": topic}, EXAMPLE)
    extra = {"alarm_topic_arn": topic, "output_bucket_name": environment.get("OPS_OUTPUT_S3_BUCKET", "")}
    runcommand = ssm.deployment_from_terraform(aws, {**runcommand_outputs, **extra}, EXAMPLE)
    runcommand = dataclasses.replace(runcommand, deployment=dataclasses.replace(runcommand.deployment, how=how))
    policies[scheduler_block] = scheduler.deployment
    policies[runcommand_block] = runcommand.deployment
    [copy] = [policies[block] for block, kind in kinds.items() if kind == "snapshot-copy"]
    [destination] = json.loads(copy.worker_environment["OPS_COPY_DESTINATIONS"])
    return Deployments(
        kinds=kinds,
        policies=policies,
        scheduler=scheduler,
        runcommand=runcommand,
        alert_topic_arn=topic,
        destination_region=str(destination),
    )


def target_tags(deployment: Deployment, variable: str = "OPS_TARGET_TAGS") -> dict[str, str]:
    return dict(json.loads(deployment.planner_environment.get(variable) or "{}"))


# ---------------------------------------------------------------------------------------------------------------
# The policies as Lambda runs them, recording what their requests did
# ---------------------------------------------------------------------------------------------------------------


Done = tuple[str, str, str]  # (operation, resource id, region) of a mutating EC2 request that succeeded


@contextmanager
def recording(done: list[Done]) -> Iterator[None]:
    """The counted EC2 requests the handlers make, recorded when AWS accepted them."""
    original = botocore.client.BaseClient._make_api_call

    def record(client: Any, operation: str, params: Mapping[str, Any]) -> Any:
        response = original(client, operation, params)
        if operation in COUNTED:
            resource = response.get(COUNTED[operation]) or params.get(COUNTED[operation], "")
            done.append((operation, str(resource), client.meta.region_name))
        return response

    with mock.patch.object(botocore.client.BaseClient, "_make_api_call", record):
        yield


class RecordingPolicy(DeployedPolicy):
    """A deployed policy on the simulated clock whose successful creations and deletions are recorded."""

    def __init__(self, aws: LocalAws, deployment: Deployment, clock: SimulatedClock) -> None:
        super().__init__(aws, deployment, clock, handler_clock=True)
        self.done: list[Done] = []

    def _invoke(self, function: str, handler: str, environment: Mapping[str, str], event: Any) -> Any:
        with recording(self.done):
            return super()._invoke(function, handler, environment, event)

    def count(self, operation: str) -> int:
        return sum(1 for done in self.done if done[0] == operation)


# ---------------------------------------------------------------------------------------------------------------
# The fleet
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Fleet:
    names: dict[str, str] = field(default_factory=dict)  # instance or volume id -> Name, creation order
    foreign_images: tuple[str, ...] = ()  # made by someone else: never to be touched
    foreign_snapshots: tuple[str, ...] = ()

    def id_of(self, name: str) -> str:
        return next(resource for resource, known in self.names.items() if known == name)


def _merged(*groups: Mapping[str, str]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for group in groups:
        clash = {key for key in group if key in merged and merged[key] != group[key]}
        if clash:
            raise ValueError(f"the example's target tags clash on {sorted(clash)}: one instance cannot carry both")
        merged.update(group)
    return merged


def create_fleet(aws: LocalAws, deployed: Deployments) -> Fleet:
    """The instances and volumes each policy targets (see the module docstring), running; the office-hours ones
    stopped, as the night before the first day left them; and someone else's AMI and snapshot."""
    ec2 = aws.client("ec2")
    zone = f"{aws.region}a"
    fleet = Fleet()

    def tags(kind: str, variable: str = "OPS_TARGET_TAGS") -> dict[str, str]:
        return _merged(*(target_tags(deployed.policies[block], variable) for block in deployed.blocks(kind)))

    ami, scheduled, runs = tags("ami-backup"), tags(SCHEDULER), tags(RUN_COMMAND)
    snapshotted, volume_tags = tags("ebs-snapshot"), tags("ebs-snapshot", "OPS_VOLUME_TAGS")
    plan = {
        "app-1": _merged(ami, scheduled),
        "app-2": _merged(ami, scheduled),
        "db-1": _merged(ami, runs, snapshotted),
        "db-2": runs,
        "bastion": {},
    }
    for name, instance_tags in plan.items():
        instance = ec2.run_instances(
            ImageId="ami-12345678",
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.micro",
            Placement={"AvailabilityZone": zone},
            TagSpecifications=[{"ResourceType": "instance", "Tags": _tag_list({"Name": name, **instance_tags})}],
        )["Instances"][0]["InstanceId"]
        fleet.names[str(instance)] = name
    for name, tagged in (("db-data", volume_tags), ("db-wal", volume_tags), ("tmp", {})):
        volume = ec2.create_volume(
            AvailabilityZone=zone,
            Size=20,
            VolumeType="gp3",
            TagSpecifications=[{"ResourceType": "volume", "Tags": _tag_list({"Name": name, **tagged})}],
        )["VolumeId"]
        fleet.names[str(volume)] = name
    for device, name in (("/dev/sdf", "db-data"), ("/dev/sdg", "db-wal")):
        ec2.attach_volume(VolumeId=fleet.id_of(name), InstanceId=fleet.id_of("db-1"), Device=device)
    image = ec2.create_image(InstanceId=fleet.id_of("app-1"), Name="golden-app-by-hand")["ImageId"]
    ec2.stop_instances(InstanceIds=[fleet.id_of("app-1"), fleet.id_of("app-2")])
    manual = ec2.create_snapshot(VolumeId=fleet.id_of("db-wal"), Description="by hand, before an upgrade")
    fleet.foreign_images = (str(image),)
    fleet.foreign_snapshots = (aws.fidelity.snapshot_of(aws.region, str(image)), str(manual["SnapshotId"]))
    return fleet


# ---------------------------------------------------------------------------------------------------------------
# EC2 and SSM, both regions: the event emitters, and when AWS changes something by itself
# ---------------------------------------------------------------------------------------------------------------


class Emitter:
    """Every state change since the last call, as EC2 and SSM put it on the default bus of its region."""

    def __init__(self, tokyo: LocalAws, osaka: LocalAws, clock: SimulatedClock) -> None:
        self.regions = (tokyo, osaka)
        self.clock = clock
        self.ec2 = {aws.region: aws.client("ec2") for aws in self.regions}
        self.events = {aws.region: aws.client("events") for aws in self.regions}
        self.fidelity = tokyo.fidelity
        self.images: dict[str, dict[str, str]] = {}  # region -> registered image -> state as announced
        # image -> the snapshots CreateImage/CopyImage made for it (they get no createSnapshot event)
        self.image_snapshots: dict[str, tuple[str, ...]] = {}
        self.snapshots: set[str] = set()  # snapshots announced completed or in error
        self.instances: dict[str, str] = {}
        self.published: Counter[str] = Counter()
        self._seen: dict[tuple[str, str], frozenset[tuple[str, str]]] = {}

    def _put(self, region: str, entries: Sequence[Mapping[str, Any]]) -> int:
        for start in range(0, len(entries), 10):
            response = self.events[region].put_events(Entries=list(entries[start : start + 10]))
            if response.get("FailedEntryCount"):
                raise RuntimeError(f"put_events rejected entries: {response['Entries']}")
        return len(entries)

    def _entry(self, detail_type: str, resource: str, detail: Mapping[str, Any]) -> dict[str, Any]:
        self.published[f"{detail_type} {detail.get('State') or detail.get('state') or detail.get('event')}"] += 1
        return {
            "Source": "aws.ec2",
            "DetailType": detail_type,
            "Resources": [resource],
            "Detail": json.dumps(detail),
            "Time": self.clock.now(),
        }

    def _images(self, region: str) -> list[dict[str, Any]]:
        """`available`/`failed` for every AMI that reached it, `deregistered` for every AMI gone (DescribeImages still
        lists a deregistered AMI for a while, E9: EC2 has emitted its event by then)."""
        pages = self.ec2[region].get_paginator("describe_images").paginate(Owners=["self"])
        listed = [image for page in pages for image in page["Images"]]
        for image in listed:
            mappings = image.get("BlockDeviceMappings", [])
            snapshots = tuple(str(m["Ebs"]["SnapshotId"]) for m in mappings if "SnapshotId" in m.get("Ebs", {}))
            self.image_snapshots.setdefault(str(image["ImageId"]), snapshots)
        current = {str(image["ImageId"]): str(image["State"]) for image in listed if image["State"] != DEREGISTERED}
        known = self.images.setdefault(region, {})
        arn = f"arn:aws:ec2:{region}::image/"
        changes = [(i, state) for i, state in sorted(current.items()) if known.get(i) != state]
        changes += [(i, DEREGISTERED) for i in sorted(set(known) - set(current))]
        entries = []
        for image_id, state in changes:
            if state in ("available", "failed", DEREGISTERED):
                detail = {"RequestId": f"e2e-{image_id}-{state}", "ImageId": image_id, "State": state}
                entries.append(self._entry(AMI_STATE, arn + image_id, {**detail, "ErrorMessage": ""}))
        self.images[region] = current
        return entries

    def _snapshots(self, region: str) -> list[dict[str, Any]]:
        entries = []
        pages = self.ec2[region].get_paginator("describe_snapshots").paginate(OwnerIds=["self"])
        for snapshot in (snapshot for page in pages for snapshot in page["Snapshots"]):
            snapshot_id = str(snapshot["SnapshotId"])
            if snapshot_id in self.snapshots or snapshot["State"] not in ("completed", "error"):
                continue
            self.snapshots.add(snapshot_id)
            if any(snapshot_id in snapshots for snapshots in self.image_snapshots.values()):
                continue  # part of an AMI: EC2 reports the AMI's state, not a createSnapshot
            copy_of = _tags(snapshot).get(SOURCE_SNAPSHOT_TAG) if snapshot["VolumeId"] == COPY_VOLUME_ID else None
            arn = f"arn:aws:ec2::{region}:snapshot/{snapshot_id}"
            source_region = self.regions[0].region
            detail = {
                "event": "copySnapshot" if copy_of else "createSnapshot",
                "result": "failed" if snapshot["State"] == "error" else "succeeded",
                "cause": str(snapshot.get("StateMessage") or "") if snapshot["State"] == "error" else "",
                "request-id": "",
                "snapshot_id": arn,
                "source": f"arn:aws:ec2::{source_region}:snapshot/{copy_of}"
                if copy_of
                else f"arn:aws:ec2::{region}:volume/{snapshot['VolumeId']}",
                "startTime": scenario.format_slot(snapshot["StartTime"]),
                "endTime": scenario.format_slot(self.clock.now()),
            }
            if copy_of:
                detail.update(incremental="true", transferType="standard")
            entries.append(self._entry(SNAPSHOT_NOTIFICATION, arn, detail))
        return entries

    def _instances(self, region: str) -> list[dict[str, Any]]:
        entries = []
        pages = self.ec2[region].get_paginator("describe_instances").paginate()
        for instance in (i for page in pages for reservation in page["Reservations"] for i in reservation["Instances"]):
            instance_id, state = str(instance["InstanceId"]), str(instance["State"]["Name"])
            if self.instances.get(instance_id) == state:
                continue
            self.instances[instance_id] = state
            arn = f"arn:aws:ec2:{region}:{ACCOUNT_ID}:instance/{instance_id}"
            detail = {"instance-id": instance_id, "state": state}
            entries.append(self._entry(isched.STATE_CHANGE, arn, detail))
        return entries

    def _changed(self, region: str, kind: str, states: Iterable[tuple[str, str]]) -> bool:
        """Whether EC2's own view of a region's images, snapshots or instances changed since the last call: read in
        process (the states the fidelity patches compute), so DescribeImages and friends run only when there is
        something to announce."""
        signature = frozenset(states)
        if self._seen.get((region, kind)) == signature:
            return False
        self._seen[(region, kind)] = signature
        return True

    def announce(self) -> int:
        """Every change since the last call put on the bus of its region (SSM's on the source region's)."""
        published = 0
        for aws in self.regions:
            region = aws.region
            backend = ec2_backends[ACCOUNT_ID][region]
            entries = []
            if self._changed(region, "images", ((i, str(ami.state)) for i, ami in backend.amis.items())):
                entries += self._images(region)
            if self._changed(region, "snapshots", ((i, str(s.status)) for i, s in backend.snapshots.items())):
                entries += self._snapshots(region)
            instances = ((i.id, str(i.state)) for i in backend.all_instances())
            if aws is self.regions[0] and self._changed(region, "instances", instances):
                entries += self._instances(region)
            published += self._put(region, entries)
        ssm_events = self.fidelity.ssm_drain_events()
        for event in ssm_events:
            self.published[f"{event['detail-type']} {event['detail'].get('status')}"] += 1
        return published + (self._put(self.regions[0].region, ssm_event_entries(ssm_events)) if ssm_events else 0)

    def next_change(self, now: datetime) -> datetime | None:
        """When AWS next changes something by itself: a snapshot or copy completes (E11, E25), an instance transition
        ends (E33), an SSM invocation moves on (E43)."""
        fidelity = self.fidelity
        moments = [
            record.started + fidelity.snapshot_completion_time
            for record in fidelity.snapshot_records.values()
            if not record.deleted
        ]
        moments += [record.started + record.duration for record in fidelity.copy_records.values()]
        moments += [record.started + record.duration for record in fidelity.image_copy_records.values()]
        moments += [t.started + t.duration for t in fidelity.instance_transitions.values()]
        ssm_change = fidelity.ssm_next_change()
        if ssm_change is not None:
            moments.append(ssm_change)
        future = [moment for moment in moments if moment > now]
        return min(future) if future else None


def _queue(url: str, region: str) -> Any:
    return sqs_backends[ACCOUNT_ID][region].queues[url.rsplit("/", 1)[-1]]


def has_visible_message(url: str, region: str) -> bool:
    """Whether a poll of the queue would receive anything (in process: no ReceiveMessage for an empty queue)."""
    return any(message.visible and not message.delayed for message in _queue(url, region)._messages)


def next_message_due(urls: Sequence[str], region: str, now: datetime) -> datetime | None:
    """When the first delayed or in-flight message of these queues becomes visible: read from the in-process SQS
    emulator, whose delays and visibility timeouts run on the simulated clock (D4)."""
    dues = []
    for url in urls:
        for message in _queue(url, region)._messages:
            due = max(message.delayed_until, message.visible_at) / 1000
            if due > now.timestamp():
                dues.append(datetime.fromtimestamp(due, UTC))
    return min(dues) if dues else None


# ---------------------------------------------------------------------------------------------------------------
# The month
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    moment: datetime
    module: str
    action: str  # the schedule: plan, sweep, start, stop


@dataclass
class Reports:
    """What each module's invocations answered, by module."""

    slots: Counter[str] = field(default_factory=Counter)
    planned: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    work: SlotReport = field(default_factory=lambda: SlotReport(slot="month"))


class Account:
    """The deployed policies, EC2 and SSM of both regions, on one clock."""

    def __init__(
        self, tokyo: LocalAws, osaka: LocalAws, deployed: Deployments, clock: SimulatedClock, fleet: Fleet
    ) -> None:
        self.tokyo = tokyo
        self.osaka = osaka
        self.deployed = deployed
        self.clock = clock
        self.fleet = fleet
        self.scheduler_calls: list[isched.Call] = []
        self.scheduler = isched.SchedulerPolicy(tokyo, deployed.scheduler, clock, self.scheduler_calls)
        self.runcommand = ssm.RunCommandPolicy(tokyo, deployed.runcommand, clock)
        self.policies: dict[str, DeployedPolicy] = {}
        for block, kind in deployed.kinds.items():
            if kind == SCHEDULER:
                self.policies[block] = self.scheduler
            elif kind == RUN_COMMAND:
                self.policies[block] = self.runcommand
            else:
                self.policies[block] = RecordingPolicy(tokyo, deployed.policies[block], clock)
        self.emitter = Emitter(tokyo, osaka, clock)
        self.reports = Reports()
        self.rounds = 0

    def recorder(self, block: str) -> RecordingPolicy:
        policy = self.policies[block]
        assert isinstance(policy, RecordingPolicy)
        return policy

    def calendar(self, start: datetime, end: datetime, sub_daily_from: datetime | None = None) -> list[Slot]:
        """Every deployed schedule's invocations in [start, end), in time order (the example's block order within
        one moment); those of a schedule that fires more than once a day only from `sub_daily_from` on."""
        schedules: list[tuple[str, str, str, str]] = []
        for block, kind in self.deployed.kinds.items():
            if kind == SCHEDULER:
                schedules += [
                    (block, action, s.expression, s.timezone) for action, s in self.deployed.scheduler.schedules.items()
                ]
            else:
                deployment = self.deployed.policies[block]
                action = "sweep" if kind == CLEANUP else "plan"
                schedules.append((block, action, deployment.schedule_expression, deployment.schedule_timezone))
        order = list(self.policies)
        slots = []
        for block, action, expression, timezone in schedules:
            moments = scheduler_slots(expression, timezone, start, end)
            if sub_daily_from is not None and len(moments) > (end - start).days:
                moments = [moment for moment in moments if moment >= sub_daily_from]
            slots += [Slot(moment, block, action) for moment in moments]
        return sorted(slots, key=lambda slot: (slot.moment, order.index(slot.module), slot.action))

    def fire(self, slot: Slot) -> None:
        if slot.module == self.deployed.block(SCHEDULER):
            answer = self.scheduler.plan_action(slot.action, slot.moment)
        else:
            answer = self.policies[slot.module].plan(slot.moment)
        self.reports.slots[slot.module] += 1
        self.reports.planned.setdefault(slot.module, []).append(answer)

    def work(self) -> int:
        """Every visible message of every queue handled, and what that changed announced, until quiet."""
        total = 0
        while True:
            published = self.emitter.announce()
            handled = sum(
                policy.poll_once(self.reports.work)
                for policy in self.policies.values()
                if has_visible_message(policy.deployment.work_queue_url, self.tokyo.region)
            )
            total += handled
            if not handled and not published:
                return total

    def run_until(self, moment: datetime) -> None:
        """Let the queues work and simulated time run to `moment`, stopping wherever something comes due."""
        urls = [policy.deployment.work_queue_url for policy in self.policies.values()]
        for _round in range(MAX_ROUNDS_PER_SLOT):
            self.work()
            now = self.clock.now()
            if now >= moment:
                return
            self.rounds += 1
            candidates = [moment, self.emitter.next_change(now), next_message_due(urls, self.tokyo.region, now)]
            due = min(candidate for candidate in candidates if candidate is not None)
            self.clock.set(max(due + timedelta(seconds=1), now))
        raise RuntimeError(f"simulated time did not reach {moment} in {MAX_ROUNDS_PER_SLOT} rounds")


@contextmanager
def _durations(aws: LocalAws) -> Iterator[None]:
    """Instance transitions and SSM runs take simulated time (they are instant in moto)."""
    fidelity = aws.fidelity
    saved = (
        fidelity.instance_start_time,
        fidelity.instance_stop_time,
        fidelity.ssm_delivery_time,
        fidelity.ssm_run_time,
    )
    fidelity.instance_start_time = fidelity.instance_stop_time = INSTANCE_TRANSITION
    fidelity.ssm_delivery_time, fidelity.ssm_run_time = SSM_DELIVERY, SSM_RUN
    try:
        yield
    finally:
        (
            fidelity.instance_start_time,
            fidelity.instance_stop_time,
            fidelity.ssm_delivery_time,
            fidelity.ssm_run_time,
        ) = saved


def month_window(days: int, now: datetime, weekday: int | None = None) -> tuple[datetime, datetime]:
    """`days` whole days in Tokyo ending at the last local midnight at least an hour before `now` (the series never
    runs ahead of the real clock); with `weekday` (0 = Monday), starting on the latest such day that fits."""
    end = (now - timedelta(hours=1)).astimezone(TOKYO).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    if weekday is not None:
        start -= timedelta(days=(start.weekday() - weekday) % 7)
        end = start + timedelta(days=days)
    return start.astimezone(UTC), end.astimezone(UTC)


@dataclass
class MonthReport:
    deployed: Deployments
    fleet: Fleet
    start: datetime
    end: datetime
    sub_daily_from: datetime | None  # the first moment the sub-daily schedules fired (None: from `start`)
    account: Account
    alerts: list[dict[str, Any]]
    final: FinalState
    real_seconds: float = 0.0


def run_month(
    tokyo: LocalAws,
    run: scenario.TerraformRun,
    start: datetime,
    end: datetime,
    progress: Callable[[str], None] = lambda _line: None,
    sub_daily_days: int | None = None,
) -> MonthReport:
    """On an empty EC2 account (both regions): the fleet, then every schedule slot in [start, end) - those of a
    schedule firing more than once a day (the hourly snapshots) only in the last `sub_daily_days` days, if given."""
    sub_daily_from = None if sub_daily_days is None else end - timedelta(days=sub_daily_days)
    began = time.monotonic()
    deployed = deployments(tokyo, run)
    osaka = dataclasses.replace(tokyo, region=deployed.destination_region)
    clock = SimulatedClock(start - timedelta(hours=1))
    scenario.fresh_ec2(tokyo)
    inbox = AlertInbox(tokyo, deployed.alert_topic_arn, "complete-e2e-inbox")
    try:
        with scenario.simulated_aws_time(tokyo, clock), _durations(tokyo):
            fleet = create_fleet(tokyo, deployed)
            account = Account(tokyo, osaka, deployed, clock, fleet)
            day = None
            for slot in account.calendar(start, end, sub_daily_from):
                local_day = slot.moment.astimezone(TOKYO).date()
                if local_day != day:
                    day = local_day
                    progress(f"{day:%a %Y-%m-%d}")
                account.run_until(slot.moment)
                account.fire(slot)
            account.run_until(end)
            alerts = inbox.take()
            final = final_state(account)
    finally:
        inbox.close()
    seconds = time.monotonic() - began
    return MonthReport(deployed, fleet, start, end, sub_daily_from, account, alerts, final, seconds)


# ---------------------------------------------------------------------------------------------------------------
# What is left, and one summary per module
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FinalState:
    images: dict[str, dict[str, dict[str, Any]]]  # region -> registered image id -> image
    snapshots: dict[str, dict[str, dict[str, Any]]]  # region -> snapshot id -> snapshot
    instances: dict[str, str]  # instance id -> state
    ledgers: dict[str, list[dict[str, Any]]]  # module block -> its ledger items, plain values
    dlq_messages: dict[str, int]  # module block -> messages in its dead-letter queue


def final_state(account: Account) -> FinalState:
    images: dict[str, dict[str, dict[str, Any]]] = {}
    snapshots: dict[str, dict[str, dict[str, Any]]] = {}
    for aws in (account.tokyo, account.osaka):
        ec2 = aws.client("ec2")
        pages = ec2.get_paginator("describe_images").paginate(Owners=["self"])
        images[aws.region] = {
            str(i["ImageId"]): i for page in pages for i in page["Images"] if i["State"] != DEREGISTERED
        }
        pages = ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"])
        snapshots[aws.region] = {str(s["SnapshotId"]): s for page in pages for s in page["Snapshots"]}
    sqs = account.tokyo.client("sqs")
    return FinalState(
        images=images,
        snapshots=snapshots,
        instances=dict(account.emitter.instances),
        ledgers={
            module: scenario.ledger_items(account.tokyo, policy.deployment.ledger_table)
            for module, policy in account.policies.items()
        },
        dlq_messages={
            module: scenario.queue_total(sqs, policy.deployment.dlq_url) for module, policy in account.policies.items()
        },
    )


@dataclass
class ModuleSummary:
    """One module's month: the headline counts, one row per source it works on, what it says about the others."""

    module: str
    block: str
    policy: str
    schedule: str
    counts: dict[str, int]
    columns: tuple[str, ...]
    rows: list[tuple[object, ...]]
    alerts: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    dlq: int


def _schedule(deployment: Deployment) -> str:
    return f"{deployment.schedule_expression} {deployment.schedule_timezone}"


def _backup_rows(
    ledger: Sequence[Mapping[str, Any]],
    prefixes: tuple[str, ...],
    names: Mapping[str, str],
    lineage: Mapping[str, str] | None = None,
) -> tuple[list[tuple[object, ...]], Counter[str]]:
    """Per source (or per `lineage` of the source: a copied snapshot's volume), the backups of a retention policy by
    ledger state (available = kept, deleted = retired)."""
    by_source: dict[str, Counter[str]] = {}
    for item in ledger:
        if str(item["sk"]).startswith(prefixes):
            source = str(item.get("source_id", "?"))
            source = (lineage or {}).get(source, source)
            by_source.setdefault(source, Counter())[str(item.get("state"))] += 1
    totals: Counter[str] = sum(by_source.values(), Counter())
    order = list(names)
    rows: list[tuple[object, ...]] = [
        (
            names.get(source, source),
            source,
            sum(states.values()),
            states["available"],
            states["deleted"],
            states["failed"],
        )
        for source, states in sorted(by_source.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99)
    ]
    return rows, totals


def _summary(
    report: MonthReport, block: str, schedule: str, counts: dict[str, int], columns: tuple[str, ...], rows: Any
) -> ModuleSummary:
    policy = report.account.policies[block]
    name = policy.deployment.policy_name
    return ModuleSummary(
        module=report.deployed.kinds[block],
        block=block,
        policy=name,
        schedule=schedule,
        counts=counts,
        columns=columns,
        rows=list(rows),
        alerts=[alert for alert in report.alerts if alert.get("policy") == name],
        errors=policy.log.at("ERROR", "CRITICAL"),
        dlq=report.final.dlq_messages[block],
    )


BACKUP_COLUMNS = ("source", "id", "made", "kept", "retired", "failed")


def _owned(resources: Mapping[str, Mapping[str, Any]], policy: str) -> int:
    return sum(1 for resource in resources.values() if _tags(resource).get(POLICY_TAG) == policy)


def _ami_backup(report: MonthReport, block: str) -> ModuleSummary:
    policy, final = report.account.recorder(block), report.final
    rows, states = _backup_rows(final.ledgers[block], ("ami-",), report.fleet.names)
    counts = {
        "slots": report.account.reports.slots[block],
        "AMIs created": policy.count("CreateImage"),
        "kept": _owned(final.images[report.account.tokyo.region], policy.deployment.policy_name),
        "retired": policy.count("DeregisterImage"),
        "failed": states["failed"],
        "snapshots it deleted": policy.count("DeleteSnapshot"),
    }
    return _summary(report, block, _schedule(policy.deployment), counts, BACKUP_COLUMNS, rows)


def _ebs_snapshot(report: MonthReport, block: str) -> ModuleSummary:
    policy, final = report.account.recorder(block), report.final
    rows, states = _backup_rows(final.ledgers[block], ("snap-",), report.fleet.names)
    counts = {
        "slots": report.account.reports.slots[block],
        "snapshots created": policy.count("CreateSnapshot"),
        "kept": _owned(final.snapshots[report.account.tokyo.region], policy.deployment.policy_name),
        "retired": policy.count("DeleteSnapshot"),
        "failed": states["failed"],
    }
    return _summary(report, block, _schedule(policy.deployment), counts, BACKUP_COLUMNS, rows)


def _snapshot_copy(report: MonthReport, block: str) -> ModuleSummary:
    policy, final = report.account.recorder(block), report.final
    tokyo, osaka = report.account.tokyo.region, report.account.osaka.region
    name = policy.deployment.policy_name
    # A copy's ledger item names its source (snapshot or AMI); the source policies' ledgers name its volume or
    # instance: the rows are per volume, retired copies included.
    lineage = {
        str(item["sk"]): str(item.get("source_id"))
        for source, kind in report.deployed.kinds.items()
        if kind in ("ebs-snapshot", "ami-backup")
        for item in final.ledgers[source]
    }
    rows, states = _backup_rows(final.ledgers[block], ("ami-", "snap-"), report.fleet.names, lineage)
    made = Counter(region for operation, _id, region in policy.done if operation in ("CopyImage", "CopySnapshot"))
    counts = {
        "slots": report.account.reports.slots[block],
        f"copies made in {osaka}": made[osaka],
        f"in {tokyo}": made[tokyo],
        "kept": _owned(final.images[osaka], name) + _owned(final.snapshots[osaka], name),
        "retired": policy.count("DeregisterImage") + policy.count("DeleteSnapshot"),
        "failed": states["failed"],
    }
    sources = policy.deployment.worker_environment.get("OPS_SOURCE_POLICIES", "[]")
    schedule = f"{_schedule(policy.deployment)}; copies {', '.join(json.loads(sources))} to {osaka}"
    return _summary(report, block, schedule, counts, BACKUP_COLUMNS, rows)


def _deregister_cleanup(report: MonthReport, block: str) -> ModuleSummary:
    """What it did after each AMI ami-backup retired: its event handled, the AMI's snapshots deleted by whom."""
    account, final = report.account, report.final
    policy = account.recorder(block)
    backups = [account.recorder(b) for b in report.deployed.blocks("ami-backup")]
    deleted_by_cleanup = {resource for operation, resource, _r in policy.done if operation == "DeleteSnapshot"}
    deleted_by_backup = {
        r for backup in backups for operation, r, _region in backup.done if operation == "DeleteSnapshot"
    }
    handled = {str(item["sk"]) for item in final.ledgers[block] if str(item["sk"]).startswith("ami-")}
    retired: dict[str, list[str]] = {}
    for backup in report.deployed.blocks("ami-backup"):
        for item in final.ledgers[backup]:
            if str(item["sk"]).startswith("ami-") and item.get("state") == "deleted":
                retired.setdefault(str(item.get("source_id")), []).append(str(item["sk"]))
    rows = []
    for source, images in retired.items():
        refs = [snapshot for image in images for snapshot in account.emitter.image_snapshots.get(image, ())]
        rows.append(
            (
                report.fleet.names.get(source, source),
                len(images),
                sum(1 for image in images if image in handled),
                sum(1 for ref in refs if ref in deleted_by_cleanup),
                sum(1 for ref in refs if ref in deleted_by_backup - deleted_by_cleanup),
                sum(1 for ref in refs if ref in final.snapshots[account.tokyo.region]),
            )
        )
    sweeps = account.reports.planned.get(block, [])
    counts = {
        "sweeps": account.reports.slots[block],
        "deregistered AMIs handled": len(handled),
        "snapshots it deleted": len(deleted_by_cleanup),
        "orphans found by the sweeps": sum(int(sweep.get("orphans") or 0) for sweep in sweeps),
    }
    columns = ("AMIs of", "retired by ami-backup", "events handled", "snapshots deleted", "by ami-backup", "left")
    return _summary(report, block, _schedule(policy.deployment), counts, columns, rows)


def _instances(report: MonthReport) -> list[str]:
    return [resource for resource in report.fleet.names if resource.startswith("i-")]


def _instance_scheduler(report: MonthReport, block: str) -> ModuleSummary:
    account, final = report.account, report.final
    acted = {
        operation: Counter(i for op, _policy, ids in account.scheduler_calls if op == operation for i in ids)
        for operation in ("StartInstances", "StopInstances")
    }
    invocations = Counter(action for action, _slot in account.scheduler.invocations)
    counts = {
        "start slots": invocations["start"],
        "stop slots": invocations["stop"],
        "starts": sum(acted["StartInstances"].values()),
        "stops": sum(acted["StopInstances"].values()),
        "not in state": sum(1 for item in final.ledgers[block] if str(item["sk"]).startswith("failed#")),
    }
    rows = [
        (report.fleet.names[i], i, acted["StartInstances"][i], acted["StopInstances"][i], final.instances.get(i, "?"))
        for i in _instances(report)
    ]
    schedule = "; ".join(f"{a} {s.expression} {s.timezone}" for a, s in report.deployed.scheduler.schedules.items())
    return _summary(report, block, schedule, counts, ("instance", "id", "starts", "stops", "state at the end"), rows)


def _ssm_runcommand(report: MonthReport, block: str) -> ModuleSummary:
    account, final = report.account, report.final
    runs: dict[str, Counter[str]] = {}
    for item in final.ledgers[block]:
        sk = str(item["sk"])
        if sk.startswith("run@"):
            runs.setdefault(sk.rsplit("#", 1)[-1], Counter())[str(item.get("state"))] += 1
    counts = {
        "nights": account.reports.slots[block],
        "commands sent": sum(1 for operation, _params in account.runcommand.calls if operation == "SendCommand"),
        "invocations succeeded": sum(states["available"] for states in runs.values()),
        "failed": sum(states["failed"] for states in runs.values()),
        "pending": sum(states["pending"] for states in runs.values()),
    }
    rows = [
        (report.fleet.names[i], i, runs[i]["available"], runs[i]["failed"], runs[i]["pending"])
        for i in _instances(report)
        if i in runs
    ]
    deployment = account.runcommand.deployment
    return _summary(
        report, block, _schedule(deployment), counts, ("instance", "id", "succeeded", "failed", "pending"), rows
    )


SUMMARIES: dict[str, Callable[[MonthReport, str], ModuleSummary]] = {
    "ami-backup": _ami_backup,
    "ebs-snapshot": _ebs_snapshot,
    "snapshot-copy": _snapshot_copy,
    CLEANUP: _deregister_cleanup,
    SCHEDULER: _instance_scheduler,
    RUN_COMMAND: _ssm_runcommand,
}


def summaries(report: MonthReport) -> list[ModuleSummary]:
    """One summary per module block of the example, in its order."""
    return [SUMMARIES[kind](report, block) for block, kind in report.deployed.kinds.items()]


def table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    cells = [[str(value) for value in row] for row in [tuple(columns), *rows]]
    widths = [max(len(row[index]) for row in cells) for index in range(len(columns))]
    lines = ["  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip() for row in cells]
    return [lines[0], "  ".join("-" * width for width in widths), *lines[1:]]


# Powertools' standard keys of a log line: the rest is what the handler said.
LOG_KEYS = {"level", "location", "timestamp", "service", "cold_start", "function_name", "function_memory_size"}
LOG_KEYS |= {"function_arn", "function_request_id", "xray_trace_id", "sampling_rate"}


ALERT_KEYS = {"service", "policy", "_subject"}


def _log_line(line: Mapping[str, Any], standard: set[str] = LOG_KEYS) -> str:
    return ", ".join(f"{key}={value}" for key, value in line.items() if key not in standard)[:600]


def report_lines(report: MonthReport, rule: str = "-" * 96) -> list[str]:
    lines = []
    for module in summaries(report):
        lines += [rule, f"{module.module} (module block {module.block}): policy {module.policy!r}, {module.schedule}"]
        lines.append(", ".join(f"{name} {count}" for name, count in module.counts.items()))
        lines.append(
            f"alerts {len(module.alerts)}, dead-letter messages {module.dlq}, handler errors {len(module.errors)}"
        )
        lines += ["", *table(module.columns, module.rows)]
        lines += [f"  ALERT {_log_line(alert, ALERT_KEYS)}" for alert in module.alerts]
        lines += [f"  ERROR {_log_line(error)}" for error in module.errors]
    return lines


def problems(report: MonthReport) -> list[str]:
    """What must not happen in a month of the complete example; the demo exits non-zero on any, the test asserts
    there are none."""
    found: list[str] = []
    final, fleet = report.final, report.fleet
    tokyo = report.account.tokyo.region
    for module in summaries(report):
        if module.alerts:
            found.append(f"{module.block}: {len(module.alerts)} alert(s): {[a.get('alert') for a in module.alerts]}")
        if module.dlq:
            found.append(f"{module.block}: {module.dlq} message(s) in the dead-letter queue")
        if module.errors:
            found.append(f"{module.block}: {len(module.errors)} handler error(s): {module.errors[0].get('message')}")
    gone = [i for i in fleet.foreign_images if i not in final.images[tokyo]]
    gone += [s for s in fleet.foreign_snapshots if s not in final.snapshots[tokyo]]
    if gone:
        found.append(f"resources made by someone else were deleted: {gone}")
    untouched = {fleet.id_of("bastion"), fleet.id_of("tmp")}
    touched = [
        f"{operation} {resource}"
        for policy in report.account.policies.values()
        for operation, resource, _region in getattr(policy, "done", [])
        if resource in untouched
    ]
    touched += [f"{op} {ids}" for op, _p, ids in report.account.scheduler_calls if untouched & set(ids)]
    sent = [params for operation, params in report.account.runcommand.calls if operation == "SendCommand"]
    touched += [f"SendCommand {p['InstanceIds']}" for p in sent if untouched & set(p.get("InstanceIds", ()))]
    if touched:
        found.append(f"untagged resources were acted on: {touched}")
    return found


def empty_output_bucket(aws: LocalAws, deployed: Deployments) -> int:
    """Delete every object version the nights left in the Run Command output bucket, so `terraform destroy` can
    delete the bucket (the example keeps `force_destroy_output_bucket = false` by default); how many."""
    bucket = deployed.runcommand.bucket
    if not bucket:
        return 0
    s3 = aws.client("s3")
    removed = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        versions = [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        if versions:
            objects = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in versions]
            s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
            removed += len(objects)
    return removed
