"""A simulated week of AMI backups through the deployed examples/ami-backup: its tier-3 test.

On the harness of `tests/e2e/scenario.py` (Scheduler, the Lambda service, simulated time), this module plays EC2's
event emitter: it publishes `EC2 AMI State Change` for each image that became available, on the local
EventBridge, whose rule routes it to the work queue. Simulated time makes the worker's delayed messages
(`check_image`, `purge_snapshots`) come due at once, retention see one backup per day, and the
eventual-consistency windows of the fidelity patches (E7: DeleteSnapshot refused for a while after
DeregisterImage; E9: deregistered AMIs still listed for a while) run on the same clock.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scripts.local_aws import Aws
from tests.e2e import scenario
from tests.e2e.scenario import DeployedPolicy, Deployment, HandlerLog, SimulatedClock, SlotReport
from tests.support.moto_fidelity import DEREGISTERED

EXAMPLE = Path("examples/ami-backup")
BACKUP_TAG = {"Backup": "daily"}
FLEET_SIZE = 4
DAYS = 7
# The tagged instance that is terminated on this day (1-based), before that day's run.
TERMINATION_DAY = 4
STATE_CHANGE = "EC2 AMI State Change"


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
    return WeekReport(deployment=deployment, fleet=fleet, days=reports, backups=week.backups, log=week.log)


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
