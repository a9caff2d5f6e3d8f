"""Simulated days of deregister-cleanup through the deployed examples/deregister-cleanup, beside the deployed
examples/ami-backup and a dry-run variant of the clean-up: its tier-3 test.

On the harness of `tests/e2e/scenario.py` (Scheduler, the Lambda service, simulated time), this module plays EC2's
event emitter for every AMI of the account: `EC2 AMI State Change` `available` for a new AMI, `deregistered` for one
that is gone (unless the scenario loses that event) - on the local default bus, where the rules Terraform created
route them. Three deployments share the account:

* `main`: examples/deregister-cleanup as applied (scope managed, grace 24 h, daily sweep);
* `dry`: the same example applied a second time with `dry_run = true` and `cloudtrail_events = true` (a
  `scenario.Variant`); it sees every event `main` sees (plus the CloudTrail call) and sweeps at the same moments,
  always before `main`, so what it would delete is compared with what `main` then deletes, and the account's
  snapshots are compared around each of its invocations;
* `backup`: examples/ami-backup (generations 3), backing up the instance tagged Backup=daily once a day.

Day 1, after ami-backup's slot: every published event variant of ../shared/events/ is put on the bus (AMI ones
naming an AMI deregistered by hand whose own event was lost, the failed CloudTrail call naming a registered AMI);
then a batch of AMIs is deregistered with their events: an unmanaged one (scope managed: kept, and reported by
the sweep with its cost), one with the exclusion tag, one sharing its snapshot with a registered AMI, one whose
snapshot a disabled AMI uses, one into the Recycle Bin, and one that meets the `InvalidSnapshot.InUse` race
(E7 of tests/support/moto_fidelity.py, its window set to IN_USE_WINDOW: longer than the worker's first
delay). Later that day an AMI is deregistered by hand and its event lost: the sweep
takes it once its snapshot is past the grace period. Day 2: the AMI sharing the snapshot is deregistered. Day 3:
the Recycle Bin's retention ends for the binned AMI. Day 4: ami-backup retires its first backup but may not delete
its snapshot (`deny_snapshot_deletion`) until past its purge deadline (day 5): deregister-cleanup takes it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from scripts.local_aws import Aws
from tests.e2e import ami_backup_scenario as ami
from tests.e2e import scenario
from tests.e2e.ebs_snapshot_scenario import AlertInbox
from tests.e2e.scenario import DeployedPolicy, Deployment, HandlerLog, SimulatedClock, SlotReport

EXAMPLE = Path("examples/deregister-cleanup")
DRY_RUN = scenario.Variant(
    EXAMPLE,
    "dry-run",
    "# Written by tests/e2e/deregister_cleanup_scenario.py: a second policy that reports, deletes nothing, and\n"
    "# also reads the CloudTrail DeregisterImage call.\n"
    'variable "name" {\n'
    '  default = "dereg-cleanup-dry-run"\n'
    "}\n"
    "\n"
    'module "deregister_cleanup" {\n'
    "  dry_run           = true\n"
    "  cloudtrail_events = true\n"
    "}\n",
)
EVENTS_DIR = Path(__file__).resolve().parents[3] / "shared" / "events"
DAYS = 6
RETIRE_DENIED_DAY = 4  # ami-backup retires its day-1 backup; its snapshot may not be deleted until LIFT_DAY
LIFT_DAY = 5
SHARED_SECOND_DAY = 2  # the AMI that shares its snapshot is deregistered
RECYCLE_PURGE_DAY = 3  # the Recycle Bin's retention for the binned AMI ends (after that day's sweep)
STATE_CHANGE = "EC2 AMI State Change"
CLOUDTRAIL_CALL = "AWS API Call via CloudTrail"
MANAGED = {"ops-automation:managed-by": "terraform-aws-ops-automation", "ops-automation:policy": "golden-images"}
KEEP_TAG = "ops-automation:keep"
OUT_OF_SCOPE = "orphan snapshots this policy's scope does not let it delete"
MAX_ROUNDS = 1000
IN_USE_WINDOW = timedelta(minutes=6)
SHORT_STEP = timedelta(minutes=5)


def _tags(resource: Mapping[str, Any]) -> dict[str, str]:
    return {str(tag["Key"]): str(tag["Value"]) for tag in resource.get("Tags", [])}


# ---------------------------------------------------------------------------------------------------------------
# The published events, aimed at this account's AMIs
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    name: str  # path under ../shared/events
    source: str
    detail_type: str
    detail: dict[str, Any]
    resources: tuple[str, ...]


def published_samples(deregistered_image: str, registered_image: str, region: str) -> tuple[list[Sample], list[str]]:
    """Every EventBridge event of ../shared/events (and normalized/), the one an SQS sample wraps included, with
    the AMI it names replaced: `deregistered_image` for the AMI state changes and the successful CloudTrail call,
    `registered_image` for the failed call (a failed DeregisterImage leaves the AMI registered). Also the names of
    the files that are no EventBridge event (Lambda inputs: SQS batches, Scheduler input), which are not put."""
    samples: list[Sample] = []
    skipped: list[str] = []
    for path in sorted([*EVENTS_DIR.glob("*.json"), *EVENTS_DIR.glob("normalized/*.json")]):
        name = path.relative_to(EVENTS_DIR).as_posix()
        document = json.loads(path.read_text(encoding="utf-8"))
        events = [document] if "detail-type" in document else []
        for index, record in enumerate(document.get("Records", []) if not events else []):
            try:
                body = json.loads(record.get("body", ""))
            except ValueError:
                continue
            if isinstance(body, dict) and "detail-type" in body:
                events.append(body)
                name = f"{name}#Records[{index}].body"
        if not events:
            skipped.append(name)
            continue
        for event in events:
            detail = event.get("detail")
            detail = dict(detail) if isinstance(detail, dict) else {}
            resources = [str(resource) for resource in event.get("resources", [])]
            if event["detail-type"] == STATE_CHANGE and "ImageId" in detail:
                detail["ImageId"] = deregistered_image
                resources = [f"arn:aws:ec2:{region}::image/{deregistered_image}"]
            elif detail.get("eventName") == "DeregisterImage":
                target = registered_image if ("errorCode" in detail or "errorMessage" in detail) else deregistered_image
                detail["requestParameters"] = {**detail.get("requestParameters", {}), "imageId": target}
            samples.append(Sample(name, str(event["source"]), str(event["detail-type"]), detail, tuple(resources)))
    return samples, skipped


# ---------------------------------------------------------------------------------------------------------------
# The account
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Amis:
    """The AMIs the scenario makes by hand (ami-backup makes its own): role -> AMI id, and each one's snapshot."""

    images: dict[str, str] = field(default_factory=dict)
    snapshots: dict[str, str] = field(default_factory=dict)  # role -> the snapshot EC2 made for that AMI
    web: str = ""  # instance tagged Backup=daily (ami-backup's)
    builder: str = ""  # untagged instance the hand-made AMIs are made of
    backups: dict[str, str] = field(default_factory=dict)  # ami-backup's AMI id -> its snapshot
    backup_days: dict[str, int] = field(default_factory=dict)  # ami-backup's AMI id -> day it was made


@dataclass
class DayLog(SlotReport):
    """One simulated day: what each deployment's worker was handed, what vanished, what was alerted."""

    number: int = 0
    dry_messages: Counter[str] = field(default_factory=Counter)
    backup_messages: Counter[str] = field(default_factory=Counter)
    deleted: list[str] = field(default_factory=list)  # snapshots gone during the day
    sweep: dict[str, Any] = field(default_factory=dict)
    dry_sweep: dict[str, Any] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)  # deregister-cleanup's topic
    dry_alerts: list[dict[str, Any]] = field(default_factory=list)
    backup_alerts: list[dict[str, Any]] = field(default_factory=list)  # ami-backup's topic
    events: list[str] = field(default_factory=list)  # what happened, for the report
    remaining: set[str] = field(default_factory=set)  # snapshots of the account at the end of the day


@dataclass
class CleanupReport:
    main: Deployment
    dry: Deployment
    backup: Deployment
    amis: Amis
    days: list[DayLog]
    samples: list[Sample]
    skipped_samples: list[str]
    # Per deployment, the detail-types routed to its work queue by the sample feed (before any other event).
    sample_routing: dict[str, Counter[str]]
    bystanders_cleared: int  # fed events removed from the work queues of the other deployed examples
    dry_deletions: list[str]  # snapshots that vanished while the dry-run policy ran (must stay empty)
    dry_failed: list[str]
    log: HandlerLog
    dry_log: HandlerLog
    backup_log: HandlerLog
    clock_rounds: int
    denied_snapshot: str = ""
    denied_left_at_lift: bool = False

    @property
    def failed_records(self) -> list[str]:
        return [record for day in self.days for record in day.failed_records]


def _next_daily(after: datetime, expression: str, timezone: str) -> datetime:
    """The first occurrence of a daily `cron(M H * * ? *)` in `timezone` after `after`, in UTC."""
    match = scenario.DAILY_CRON.match(expression)
    if match is None:
        raise ValueError(f"the scenario simulates daily schedules, cron(M H * * ? *); got {expression!r}")
    local = after.astimezone(ZoneInfo(timezone))
    candidate = local.replace(hour=int(match.group(2)), minute=int(match.group(1)), second=0, microsecond=0)
    if candidate <= local:
        candidate += timedelta(days=1)
    return candidate.astimezone(UTC)


class Account:
    """EC2 (its event emitter), the Lambda poller and Scheduler for the three deployments, on one clock."""

    def __init__(
        self,
        aws: Aws,
        main: Deployment,
        dry: Deployment,
        backup: Deployment,
        clock: SimulatedClock,
        bystander_queues: Sequence[str],
    ) -> None:
        self.aws = aws
        self.clock = clock
        self.ec2 = aws.client("ec2")
        self.sqs = aws.client("sqs")
        # The handlers' runtimes on the simulated clock: the grace period and the purge deadlines are the point.
        self.main = DeployedPolicy(aws, main, clock, handler_clock=True)
        self.dry = DeployedPolicy(aws, dry, clock, handler_clock=True)
        self.backup = DeployedPolicy(aws, backup, clock, handler_clock=True)
        self.seen: set[str] = set()  # every snapshot listed so far
        self.bystander_queues = list(bystander_queues)
        self.amis = Amis()
        self.known: dict[str, str] = {}  # registered AMI -> state, as last announced
        self.lost: set[str] = set()  # AMIs whose deregistered event EC2 does not deliver
        self.day = DayLog(slot="setup")
        self.dry_deletions: list[str] = []
        self.dry_failed: list[str] = []
        self.rounds = 0
        self.made = 0

    # -- EC2 -----------------------------------------------------------------------------------------------

    def snapshot_ids(self) -> set[str]:
        pages = self.ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"])
        ids = {str(snapshot["SnapshotId"]) for page in pages for snapshot in page["Snapshots"]}
        self.seen |= ids
        return ids

    def _registered(self) -> dict[str, str]:
        pages = self.ec2.get_paginator("describe_images").paginate(Owners=["self"], IncludeDisabled=True)
        return {
            str(image["ImageId"]): str(image["State"])
            for page in pages
            for image in page["Images"]
            if image["State"] != ami.DEREGISTERED
        }

    def make_image(self, role: str, tags: Mapping[str, str] | None) -> str:
        self.made += 1
        request: dict[str, Any] = {"InstanceId": self.amis.builder, "Name": f"{role}-{self.made}"}
        if tags:
            tag_list = [{"Key": key, "Value": value} for key, value in tags.items()]
            request["TagSpecifications"] = [{"ResourceType": kind, "Tags": tag_list} for kind in ("image", "snapshot")]
        image_id = str(self.ec2.create_image(**request)["ImageId"])
        self.amis.images[role] = image_id
        self.amis.snapshots[role] = self.aws.fidelity.snapshot_of(self.aws.region, image_id)
        self.seen.add(self.amis.snapshots[role])
        return image_id

    def _state_event(self, image_id: str, state: str) -> dict[str, Any]:
        detail = {"RequestId": f"e2e-{image_id}-{state}", "ImageId": image_id, "State": state, "ErrorMessage": ""}
        return {
            "Source": "aws.ec2",
            "DetailType": STATE_CHANGE,
            "Resources": [f"arn:aws:ec2:{self.aws.region}::image/{image_id}"],
            "Detail": json.dumps(detail),
            "Time": self.clock.now(),
        }

    def announce(self) -> int:
        """EC2's emitter: `available` for every new AMI of the account, `deregistered` for every AMI gone since the
        last call (not for those in `lost`). (EC2 also emits `disabled`-related changes; nothing here routes them.)"""
        current = self._registered()
        entries = []
        for image_id, state in sorted(current.items()):
            if image_id not in self.known and state == "available":
                entries.append(self._state_event(image_id, "available"))
        for image_id in sorted(set(self.known) - set(current)):
            if image_id in self.lost:
                self.day.events.append(f"{image_id} deregistered; its event was lost")
            else:
                entries.append(self._state_event(image_id, ami.DEREGISTERED))
        self.known = current
        return self.main.put_events(entries)

    # -- the Lambda poller ---------------------------------------------------------------------------------

    def _poll_dry(self) -> int:
        before = self.snapshot_ids()
        report = SlotReport(slot=self.day.slot)
        handled = self.dry.poll_once(report)
        self.day.dry_messages.update(report.messages)
        self.dry_failed.extend(report.failed_records)
        self.dry_deletions.extend(sorted(before - self.snapshot_ids()))
        return handled

    def _poll_backup(self) -> int:
        report = SlotReport(slot=self.day.slot)
        handled = self.backup.poll_once(report)
        self.day.backup_messages.update(report.messages)
        self.day.failed_records.extend(report.failed_records)
        return handled

    def work(self) -> int:
        """Every visible message of the three queues handled, and the events that causes announced; how many."""
        total = 0
        while True:
            handled = self._poll_dry() + self.main.poll_once(self.day) + self._poll_backup()
            total += handled
            if not handled and not self.announce():
                return total

    def _pending(self) -> bool:
        return any(any(policy.queue_depths()) for policy in (self.main, self.dry, self.backup))

    def run_until(self, moment: datetime) -> None:
        """Let the pollers work and simulated time run to `moment`: delayed and returning messages come due on
        the way (at most SHORT_STEP late); what is still delayed then stays."""
        for _round in range(MAX_ROUNDS):
            self.work()
            now = self.clock.now()
            if now >= moment:
                return
            self.rounds += 1
            if self._pending():
                # Messages come due at most SHORT_STEP late: a first purge (5 min after the event) meets the InUse
                # window it would meet on AWS, instead of a 15-minute jump stepping over it.
                self.clock.set(min(moment, now + SHORT_STEP + timedelta(seconds=1)))
            else:
                self.clock.set(moment)
        raise RuntimeError(f"simulated time did not reach {moment} in {MAX_ROUNDS} rounds")

    # -- Scheduler -----------------------------------------------------------------------------------------

    def sweep(self) -> None:
        """Both clean-up schedules fire at the same moment: the dry run first, then the real one."""
        with self.clock.held():
            before = self.snapshot_ids()
            self.day.dry_sweep = self.dry.plan(self.clock.now())
            self.dry_deletions.extend(sorted(before - self.snapshot_ids()))
            self.day.sweep = self.main.plan(self.clock.now())

    # -- the published samples -----------------------------------------------------------------------------

    def feed_samples(self, samples: Sequence[Sample]) -> tuple[dict[str, Counter[str]], int]:
        """Put every sample on the bus; return what each deployment's rule routed to its queue (read without
        handling it, then made visible again), and clear the fed events from the other examples' queues."""
        entries = [
            {
                "Source": sample.source,
                "DetailType": sample.detail_type,
                "Resources": list(sample.resources),
                "Detail": json.dumps(sample.detail),
                "Time": self.clock.now(),
            }
            for sample in samples
        ]
        event_ids: set[str] = set()
        for start in range(0, len(entries), 10):
            response = self.main.events.put_events(Entries=entries[start : start + 10])
            if response.get("FailedEntryCount"):
                raise RuntimeError(f"put_events rejected entries: {response['Entries']}")
            event_ids.update(str(entry["EventId"]) for entry in response["Entries"])
        routing = {
            "main": self._peek(self.main.deployment.work_queue_url),
            "dry": self._peek(self.dry.deployment.work_queue_url),
            "backup": self._peek(self.backup.deployment.work_queue_url),
        }
        cleared = sum(self._clear(url, event_ids) for url in self.bystander_queues)
        return routing, cleared

    def _receive_all(self, url: str) -> list[dict[str, Any]]:
        received: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                "Messages", []
            )
            if not batch:
                return received
            received.extend(batch)

    def _peek(self, url: str) -> Counter[str]:
        messages = self._receive_all(url)
        for message in messages:
            self.sqs.change_message_visibility(
                QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        return Counter(scenario.message_kind(message["Body"]) for message in messages)

    def _clear(self, url: str, event_ids: set[str]) -> int:
        """Delete the fed events from another example's work queue (its own scenario must not get them)."""
        cleared = 0
        for message in self._receive_all(url):
            try:
                fed = json.loads(message["Body"]).get("id") in event_ids
            except (ValueError, AttributeError):
                fed = False
            if fed:
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                cleared += 1
            else:
                self.sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
        return cleared


# ---------------------------------------------------------------------------------------------------------------
# The days
# ---------------------------------------------------------------------------------------------------------------


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


def run_days(
    aws: Aws,
    main: Deployment,
    dry: Deployment,
    backup: Deployment,
    bystander_queues: Sequence[str] = (),
    days: int = DAYS,
    progress: Callable[[str], None] = lambda _line: None,
) -> CleanupReport:
    """On an empty EC2 account, `days` simulated days ending at least three hours before now."""
    slots = scenario.daily_slots(
        backup.schedule_expression, backup.schedule_timezone, days, datetime.now(UTC) - timedelta(hours=3)
    )
    clock = SimulatedClock(slots[0] - timedelta(hours=2))
    scenario.fresh_ec2(aws)
    inboxes = {
        "main": AlertInbox(aws, main.worker_environment["OPS_ALERT_TOPIC_ARN"], f"{main.policy_name}-e2e-inbox"),
        "dry": AlertInbox(aws, dry.worker_environment["OPS_ALERT_TOPIC_ARN"], f"{dry.policy_name}-e2e-inbox"),
        "backup": AlertInbox(
            aws, backup.worker_environment["OPS_ALERT_TOPIC_ARN"], f"{backup.policy_name}-dereg-e2e-inbox"
        ),
    }
    # E7: AWS gives no duration for DeleteSnapshot's InvalidSnapshot.InUse after DeregisterImage ("a few
    # minutes" is reported). The worker waits FIRST_PURGE_DELAY_SECONDS (5 min) before its first attempt; a window
    # longer than that makes the race happen on this account, and the retry through the queue must take it.
    window = aws.fidelity.snapshot_in_use_window
    aws.fidelity.snapshot_in_use_window = IN_USE_WINDOW
    try:
        with scenario.simulated_aws_time(aws, clock):
            account = Account(aws, main, dry, backup, clock, bystander_queues)
            report = _play(account, slots, inboxes, progress)
    finally:
        aws.fidelity.snapshot_in_use_window = window
        for inbox in inboxes.values():
            inbox.close()
    _forget_backup_items(aws, backup, report)
    return report


def _play(
    account: Account, slots: Sequence[datetime], inboxes: Mapping[str, AlertInbox], progress: Callable[[str], None]
) -> CleanupReport:
    aws, ec2, clock, amis = account.aws, account.ec2, account.clock, account.amis
    amis.web = _launch(ec2, "web", ami.BACKUP_TAG)
    amis.builder = _launch(ec2, "builder", {})
    account.announce()
    region = aws.region
    main = account.main.deployment
    samples: list[Sample] = []
    skipped: list[str] = []
    routing: dict[str, Counter[str]] = {}
    cleared = 0
    denied = ""
    denied_left = False
    days: list[DayLog] = []
    for number, slot in enumerate(slots, start=1):
        progress(f"day {number}")
        account.day = day = DayLog(slot=scenario.format_slot(slot), number=number)
        gone_before = account.seen - account.snapshot_ids()
        account.run_until(slot)
        if number == RETIRE_DENIED_DAY:
            # ami-backup will retire its day-1 backup in this slot; someone's IAM change refuses the deletion.
            [oldest] = [image for image, made in amis.backup_days.items() if made == 1]
            denied = amis.backups[oldest]
            aws.fidelity.deny_snapshot_deletion(denied)
            day.events.append(f"DeleteSnapshot of {denied} (ami-backup's {oldest}) refused from now on")
        before = set(account._registered())
        account.backup.plan(slot)
        account.work()
        for image_id in sorted(set(account._registered()) - before):
            image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
            if _tags(image).get("ops-automation:policy") == account.backup.deployment.policy_name:
                amis.backups[image_id] = str(image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"])
                amis.backup_days[image_id] = number
                day.events.append(f"ami-backup made {image_id} ({amis.backups[image_id]})")
        if number == 1:
            samples, skipped, routing, cleared = _day_one(account, slot)
        if number == SHARED_SECOND_DAY:
            account.run_until(slot + timedelta(hours=1))
            with clock.held():
                ec2.deregister_image(ImageId=amis.images["shared-second"])
                day.events.append(f"deregistered {amis.images['shared-second']} (shares its snapshot)")
                account.work()
        if number == LIFT_DAY:
            account.run_until(slot + timedelta(minutes=30))
            denied_left = denied in account.snapshot_ids()
            aws.fidelity.deny_snapshot_deletion(denied, denied=False)
            day.events.append(f"DeleteSnapshot of {denied} allowed again")
        sweep_at = _next_daily(slot, main.schedule_expression, main.schedule_timezone)
        account.run_until(sweep_at)
        account.sweep()
        day.events.append(f"sweep: {day.sweep.get('orphans')} orphan(s) enqueued, verdicts {day.sweep.get('verdicts')}")
        if number == 1:
            _day_one_later(account, slot)
        if number == RECYCLE_PURGE_DAY:
            account.run_until(sweep_at + timedelta(hours=1))
            aws.fidelity.purge_recycled_image(region, amis.images["recycled"])
            day.events.append(f"the Recycle Bin's retention for {amis.images['recycled']} ended")
        end = slots[number] if number < len(slots) else sweep_at + timedelta(minutes=45)
        account.run_until(end - timedelta(minutes=5))
        day.remaining = account.snapshot_ids()
        day.deleted = sorted(account.seen - day.remaining - gone_before)
        day.alerts = inboxes["main"].take()
        day.dry_alerts = inboxes["dry"].take()
        day.backup_alerts = inboxes["backup"].take()
        days.append(day)
    return CleanupReport(
        main=account.main.deployment,
        dry=account.dry.deployment,
        backup=account.backup.deployment,
        amis=amis,
        days=days,
        samples=samples,
        skipped_samples=skipped,
        sample_routing=routing,
        bystanders_cleared=cleared,
        dry_deletions=account.dry_deletions,
        dry_failed=account.dry_failed,
        log=account.main.log,
        dry_log=account.dry.log,
        backup_log=account.backup.log,
        clock_rounds=account.rounds,
        denied_snapshot=denied,
        denied_left_at_lift=denied_left,
    )


def _day_one(account: Account, slot: datetime) -> tuple[list[Sample], list[str], dict[str, Counter[str]], int]:
    """The sample feed, then the batch of deregistrations with their events; the lost event later in the day."""
    ec2, clock, day = account.ec2, account.clock, account.day
    account.run_until(slot + timedelta(hours=1))
    for role, tags in (
        ("fed", MANAGED),
        ("registered", MANAGED),
        ("unmanaged", None),
        ("excluded", {**MANAGED, KEEP_TAG: "legal hold"}),
        ("shared-first", MANAGED),
        ("shared-second", MANAGED),
        ("disabled-user", MANAGED),
        ("disabled", MANAGED),
        ("recycled", MANAGED),
        ("race", MANAGED),
    ):
        account.make_image(role, tags)
    images, region = account.amis.images, account.aws.region
    fidelity = account.aws.fidelity
    # The second AMI was registered with the first one's snapshot too; so was the disabled one.
    fidelity.share_snapshot(region, images["shared-second"], account.amis.snapshots["shared-first"])
    fidelity.share_snapshot(region, images["disabled"], account.amis.snapshots["disabled-user"])
    ec2.disable_image(ImageId=images["disabled"])
    account.work()  # the `available` events
    # The AMI the published samples name: deregistered by hand, its own event lost (the samples stand for it).
    account.lost.add(images["fed"])
    ec2.deregister_image(ImageId=images["fed"])
    account.work()
    account.run_until(clock.now() + timedelta(minutes=5))  # past the InUse window (E7)
    samples, skipped = published_samples(images["fed"], images["registered"], region)
    routing, cleared = account.feed_samples(samples)
    day.events.append(f"published {len(samples)} sample events naming {images['fed']} / {images['registered']}")
    account.work()
    account.run_until(clock.now() + timedelta(minutes=20))
    with clock.held():
        # Deregistered together, the events handled at once: the race one meets InvalidSnapshot.InUse (E7).
        for role in ("unmanaged", "excluded", "shared-first", "disabled-user", "race"):
            ec2.deregister_image(ImageId=images[role])
        fidelity.recycle_image(region, images["recycled"], clock.now() + timedelta(days=30))
        day.events.append("deregistered unmanaged, excluded, shared-first, disabled-user, race; recycled one")
        account.work()
    return samples, skipped, routing, cleared


def _day_one_later(account: Account, slot: datetime) -> None:
    """After the day's sweep: made and deregistered by hand, its event lost; the sweep waits out the grace period."""
    ec2 = account.ec2
    account.run_until(slot + timedelta(hours=9))
    lost = account.make_image("lost", MANAGED)
    account.work()
    account.run_until(slot + timedelta(hours=11))
    account.lost.add(lost)
    ec2.deregister_image(ImageId=lost)
    account.work()


def _forget_backup_items(aws: Aws, backup: Deployment, report: CleanupReport) -> None:
    """Remove from ami-backup's ledger the items of this scenario's backups: the deployment is shared with the
    ami-backup tier-3 test, whose ledger assertions count its own week's items."""
    dynamodb = aws.client("dynamodb")
    for item in scenario.ledger_items(aws, backup.ledger_table):
        if item["sk"] in report.amis.backups:
            dynamodb.delete_item(TableName=backup.ledger_table, Key={"pk": {"S": item["pk"]}, "sk": {"S": item["sk"]}})


@dataclass(frozen=True)
class FinalState:
    snapshots: set[str]
    images: dict[str, str]  # registered AMI -> state
    ledger: list[dict[str, Any]]
    dry_ledger: list[dict[str, Any]]
    dlq_messages: int
    dry_dlq_messages: int
    work_queue_messages: int
    dry_work_queue_messages: int


def final_state(aws: Aws, main: Deployment, dry: Deployment) -> FinalState:
    ec2 = aws.client("ec2")
    sqs = aws.client("sqs")
    pages = ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"])
    images = ec2.get_paginator("describe_images").paginate(Owners=["self"], IncludeDisabled=True)
    return FinalState(
        snapshots={str(snapshot["SnapshotId"]) for page in pages for snapshot in page["Snapshots"]},
        images={
            str(image["ImageId"]): str(image["State"])
            for page in images
            for image in page["Images"]
            if image["State"] != ami.DEREGISTERED
        },
        ledger=scenario.ledger_items(aws, main.ledger_table),
        dry_ledger=scenario.ledger_items(aws, dry.ledger_table),
        dlq_messages=scenario.queue_total(sqs, main.dlq_url),
        dry_dlq_messages=scenario.queue_total(sqs, dry.dlq_url),
        work_queue_messages=scenario.queue_total(sqs, main.work_queue_url),
        dry_work_queue_messages=scenario.queue_total(sqs, dry.work_queue_url),
    )
