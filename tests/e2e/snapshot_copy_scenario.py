"""Simulated days of disaster-recovery copies through the deployed examples/snapshot-copy: its tier-3 test.

The example deploys, in Tokyo (the default provider), an ebs-snapshot policy (the source: volumes tagged
Snapshot=daily, daily at 01:00 Asia/Tokyo, generations 3) and the snapshot-copy policy (copies of that policy's
snapshots to Osaka, generations 7, catch-up every 6 hours), and in Osaka (the `osaka` provider) a KMS key for the
copies and the destination sub-module's rule that forwards the copy results to Tokyo's default bus. Both policies
are read back from what Terraform applied (`scenario.module_outputs`: the example exposes neither the source policy
nor the copy policy's schedule as outputs of its own).

On the harness of `tests/e2e/scenario.py` (Scheduler, the Lambda service, simulated time), this module plays EC2 in
both regions. In Tokyo it publishes `EBS Snapshot Notification` createSnapshot for every snapshot that reached
completed or error, on Tokyo's default bus, where the source policy's rule and the copy policy's rule both route
them. In Osaka it publishes copySnapshot (result succeeded or failed) for every copy that reached completed or error,
on OSAKA's default bus ("If you are copying the snapshot across Regions, then the event is emitted in the
destination Region", EBS user guide): only the rule of the destination sub-module can bring it to the work queue
in Tokyo, through Tokyo's bus (moto's event-bus targets made faithful: D5 of tests/support/moto_fidelity.py).
Source snapshots are pending for `fidelity.snapshot_completion_time` (E11), copies for `snapshot_copy_time` (E25).
The handlers run on the simulated clock (their claims, deadlines and retention are measured on it).

The account: volumes db-data and logs tagged Snapshot=daily, tmp untagged. Over DAYS daily slots:

* MANUAL_DAY: someone snapshots tmp by hand; its createSnapshot event reaches the copy worker, which copies
  nothing (not a source of the policy);
* LOST_EVENT_DAY: the createSnapshot event of db-data's snapshot is lost; the catch-up (the copy planner, 3 hours
  after the source slot) finds the source without a copy in Osaka and copies it;
* DUPLICATE_DAY: the copySnapshot event of logs' copy is delivered twice; the second finds the copy complete;
* LIMIT_DAY: Osaka takes one concurrent copy only (E27, `fidelity.concurrent_snapshot_copies` lowered): the second
  copy is refused with ResourceLimitExceeded, waits through the queue without alerting, and is made once the
  first completed;
* ERROR_DAY: logs' copy ends in `error` (E25 `end_copy_in_error`): its copySnapshot failed event alerts once and the
  failed copy is deleted; the next catch-up copies the source again.

From the eighth day on, retention keeps `generations` (7) copies per volume in Osaka; the source policy keeps 3 in
Tokyo. No copy is ever made in Tokyo (the origin's bug: its "DR copies" stayed in the source region).
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scripts.local_aws import Aws, LocalAws
from tests.e2e import scenario
from tests.e2e.ebs_snapshot_scenario import AlertInbox
from tests.e2e.scenario import DeployedPolicy, Deployment, HandlerLog, SimulatedClock, SlotReport

EXAMPLE = Path("examples/snapshot-copy")
SOURCE_MODULE = "ebs_snapshot"
COPY_MODULE = "snapshot_copy"
DAYS = 9
MANUAL_DAY = 1
LOST_EVENT_DAY = 3
DUPLICATE_DAY = 4
LIMIT_DAY = 5
ERROR_DAY = 6
LIMITED_COPIES = 1
# The copy policy's schedule is rate(6 hours): its runs, after each day's source slot.
CATCH_UPS = (timedelta(hours=3), timedelta(hours=9), timedelta(hours=15), timedelta(hours=21))
SHORT_STEP = timedelta(minutes=5)
MAX_ROUNDS = 400

SNAPSHOT_NOTIFICATION = "EBS Snapshot Notification"
CREATE = "createSnapshot"
COPY = "copySnapshot"
POLICY_TAG = "ops-automation:policy"
MANAGED_BY_TAG = "ops-automation:managed-by"
SOURCE_SNAPSHOT_TAG = "ops-automation:source-snapshot"
SOURCE_VOLUME_TAG = "ops-automation:source-volume"
SOURCE_REGION_TAG = "ops-automation:source-region"
SOURCE_POLICY_TAG = "ops-automation:source-policy"
SOURCE_CREATED_TAG = "ops-automation:source-created"
SLOT_TAG = "ops-automation:slot"
COPY_FAILED = "backup failed; nothing purged"
ERROR_MESSAGE = "simulated: the copy could not be completed"


def _tags(resource: Mapping[str, Any]) -> dict[str, str]:
    return {str(tag["Key"]): str(tag["Value"]) for tag in resource.get("Tags", [])}


def routed_kind(body: str) -> str:
    """The work queue's message kinds, events told apart by their EBS event and the region they come from
    (`createSnapshot ap-northeast-1`, `copySnapshot ap-northeast-3`); work items by their `kind`."""
    kind = scenario.message_kind(body)
    if kind != SNAPSHOT_NOTIFICATION:
        return kind
    event = json.loads(body)
    return f"{event['detail'].get('event')} {event.get('region')}"


# ---------------------------------------------------------------------------------------------------------------
# The account
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Volumes:
    db_data: str
    logs: str
    untagged: str
    names: Mapping[str, str]  # volume id -> Name

    @property
    def tagged(self) -> tuple[str, ...]:
        return (self.db_data, self.logs)


def create_volumes(aws: Aws, volume_tags: Mapping[str, str]) -> Volumes:
    ec2 = aws.client("ec2")

    def volume(name: str, tags: Mapping[str, str]) -> str:
        tag_list = [{"Key": "Name", "Value": name}, *({"Key": k, "Value": v} for k, v in tags.items())]
        return str(
            ec2.create_volume(
                AvailabilityZone=f"{aws.region}a",
                Size=8,
                VolumeType="gp3",
                TagSpecifications=[{"ResourceType": "volume", "Tags": tag_list}],
            )["VolumeId"]
        )

    names = {"db-data": volume("db-data", volume_tags), "logs": volume("logs", volume_tags), "tmp": volume("tmp", {})}
    return Volumes(
        db_data=names["db-data"],
        logs=names["logs"],
        untagged=names["tmp"],
        names={volume_id: name for name, volume_id in names.items()},
    )


@dataclass(frozen=True)
class Source:
    """A snapshot the source (ebs-snapshot) policy made in Tokyo."""

    snapshot_id: str
    volume_id: str
    day: int


@dataclass(frozen=True)
class Copy:
    """A copy the copy policy made in Osaka."""

    copy_id: str
    source_id: str
    volume_id: str  # its ops-automation:source-volume tag
    day: int


@dataclass
class DayLog(SlotReport):
    """One simulated day: `messages` are the copy policy's work queue (`routed_kind`)."""

    number: int = 0
    source_messages: Counter[str] = field(default_factory=Counter)
    sources: list[str] = field(default_factory=list)  # snapshots the source policy made in Tokyo
    copies: list[str] = field(default_factory=list)  # copies made in Osaka
    retired: list[str] = field(default_factory=list)  # copies retention deleted in Osaka
    failed_copies: list[str] = field(default_factory=list)  # copies that ended in error
    catch_ups: list[dict[str, Any]] = field(default_factory=list)  # the copy planner's answers
    published: Counter[str] = field(default_factory=Counter)  # "<event> <result> <bus region>"
    lost_events: list[str] = field(default_factory=list)
    manual: list[str] = field(default_factory=list)  # snapshots someone made by hand
    alerts: list[dict[str, Any]] = field(default_factory=list)  # the example's alarm topic (both policies)
    events: list[str] = field(default_factory=list)
    kept: dict[str, list[str]] = field(default_factory=dict)  # volume -> slot tags of its completed Osaka copies


@dataclass
class CopyReport:
    source: Deployment
    copy: Deployment
    source_region: str
    destination_region: str
    kms_key_arn: str
    volumes: Volumes
    days: list[DayLog]
    sources: dict[str, Source]
    copies: dict[str, Copy]
    copy_log: HandlerLog
    source_log: HandlerLog
    tokyo_copies: list[str]  # snapshots of the copy policy ever seen in the source region (must stay empty)
    stray_cleared: int  # messages earlier scenarios' events had left in this example's queues
    bystanders_cleared: int  # this scenario's events removed from the other examples' work queues
    clock_rounds: int

    @property
    def failed_records(self) -> list[str]:
        return [record for day in self.days for record in day.failed_records]

    @property
    def alerts(self) -> list[dict[str, Any]]:
        return [alert for day in self.days for alert in day.alerts]

    def day(self, number: int) -> DayLog:
        return self.days[number - 1]


class Account:
    """EC2 in both regions (its event emitters), the Lambda poller of both policies, Scheduler, on one clock."""

    def __init__(
        self,
        tokyo: LocalAws,
        osaka: LocalAws,
        source: Deployment,
        copy: Deployment,
        clock: SimulatedClock,
        volumes: Volumes,
    ) -> None:
        self.tokyo = tokyo
        self.osaka = osaka
        self.clock = clock
        self.volumes = volumes
        # On the simulated clock: the claims, deadlines and retention of the copies are measured on it.
        self.source = DeployedPolicy(tokyo, source, clock, handler_clock=True)
        self.copy = DeployedPolicy(tokyo, copy, clock, handler_clock=True, kinds=routed_kind)
        self.ec2 = tokyo.client("ec2")
        self.dest_ec2 = osaka.client("ec2")
        self.osaka_events = osaka.client("events")
        self.sources: dict[str, Source] = {}
        self.copies: dict[str, Copy] = {}
        self.manual: set[str] = set()
        self.tokyo_copies: list[str] = []
        self.announced: set[str] = set()
        self.event_ids: set[str] = set()
        self.day = DayLog(slot="setup")
        self.rounds = 0

    # -- EC2 in both regions --------------------------------------------------------------------------------

    def _snapshots(self, ec2: Any) -> list[dict[str, Any]]:
        pages = ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"])
        return [snapshot for page in pages for snapshot in page["Snapshots"]]

    def tokyo_snapshots(self) -> list[dict[str, Any]]:
        return self._snapshots(self.ec2)

    def osaka_snapshots(self) -> list[dict[str, Any]]:
        return self._snapshots(self.dest_ec2)

    def _arn(self, region: str, kind: str, resource_id: str) -> str:
        # The layout of the AWS samples (EBS user guide, "Amazon EventBridge events for Amazon EBS").
        return f"arn:aws:ec2::{region}:{kind}/{resource_id}"

    def _event(self, snapshot: Mapping[str, Any], region: str, copy_of: str | None) -> dict[str, Any]:
        """`EBS Snapshot Notification` as EC2 emits it when a snapshot (createSnapshot) or a copy (copySnapshot,
        in the destination region) reached completed or error: the fields of the EBS user guide samples
        (../shared/events/ebs-snapshot-create-succeeded.json and -copy-succeeded.json beside the repository)."""
        snapshot_id = str(snapshot["SnapshotId"])
        failed = snapshot["State"] == "error"
        source = (
            self._arn(self.tokyo.region, "snapshot", copy_of)
            if copy_of
            else self._arn(region, "volume", str(snapshot["VolumeId"]))
        )
        detail = {
            "event": COPY if copy_of else CREATE,
            "result": "failed" if failed else "succeeded",
            "cause": str(snapshot.get("StateMessage") or "") if failed else "",
            "request-id": "",
            "snapshot_id": self._arn(region, "snapshot", snapshot_id),
            "source": source,
            "startTime": scenario.format_slot(snapshot["StartTime"]),
            "endTime": scenario.format_slot(self.clock.now()),
        }
        if copy_of:
            detail.update(incremental="true", transferType="standard")
        return {
            "Source": "aws.ec2",
            "DetailType": SNAPSHOT_NOTIFICATION,
            "Resources": [detail["snapshot_id"]],
            "Detail": json.dumps(detail),
            "Time": self.clock.now(),
        }

    def _put(self, events: Any, entries: Sequence[Mapping[str, Any]]) -> int:
        for start in range(0, len(entries), 10):
            response = events.put_events(Entries=list(entries[start : start + 10]))
            if response.get("FailedEntryCount"):
                raise RuntimeError(f"put_events rejected entries: {response['Entries']}")
            self.event_ids.update(str(entry["EventId"]) for entry in response["Entries"])
        return len(entries)

    def _announce_tokyo(self) -> list[dict[str, Any]]:
        source_policy = self.source.deployment.policy_name
        entries = []
        for snapshot in self.tokyo_snapshots():
            snapshot_id = str(snapshot["SnapshotId"])
            tags = _tags(snapshot)
            if tags.get(POLICY_TAG) == self.copy.deployment.policy_name and snapshot_id not in self.tokyo_copies:
                self.tokyo_copies.append(snapshot_id)  # the origin's bug: a "DR copy" made in the source region
            if tags.get(POLICY_TAG) == source_policy and snapshot_id not in self.sources:
                self.sources[snapshot_id] = Source(snapshot_id, str(snapshot["VolumeId"]), self.day.number)
                self.day.sources.append(snapshot_id)
            if snapshot_id in self.announced or snapshot["State"] not in ("completed", "error"):
                continue
            self.announced.add(snapshot_id)
            if (
                self.day.number == LOST_EVENT_DAY
                and snapshot_id in self.sources
                and self.sources[snapshot_id].volume_id == self.volumes.db_data
            ):
                self.day.lost_events.append(snapshot_id)
                self.day.events.append(f"the createSnapshot event of db-data's {snapshot_id} was lost")
                continue
            entry = self._event(snapshot, self.tokyo.region, None)
            detail = json.loads(entry["Detail"])
            self.day.published[f"{detail['event']} {detail['result']} {self.tokyo.region}"] += 1
            entries.append(entry)
        return entries

    def _announce_osaka(self) -> list[dict[str, Any]]:
        copy_policy = self.copy.deployment.policy_name
        entries = []
        for snapshot in self.osaka_snapshots():
            copy_id = str(snapshot["SnapshotId"])
            tags = _tags(snapshot)
            if tags.get(POLICY_TAG) == copy_policy and copy_id not in self.copies:
                made = Copy(
                    copy_id, tags.get(SOURCE_SNAPSHOT_TAG, ""), tags.get(SOURCE_VOLUME_TAG, ""), self.day.number
                )
                self.copies[copy_id] = made
                self.day.copies.append(copy_id)
                first_of_logs = not any(
                    self.copies[c].volume_id == self.volumes.logs for c in self.day.copies if c != copy_id
                )
                if self.day.number == ERROR_DAY and made.volume_id == self.volumes.logs and first_of_logs:
                    self.osaka.fidelity.end_copy_in_error(copy_id, ERROR_MESSAGE)
                    self.day.events.append(f"logs' copy {copy_id} will end in error")
            if copy_id in self.announced or snapshot["State"] not in ("completed", "error"):
                continue
            self.announced.add(copy_id)
            made = self.copies.get(copy_id) or Copy(copy_id, "", "", self.day.number)
            if snapshot["State"] == "error":
                self.day.failed_copies.append(copy_id)
            entry = self._event(snapshot, self.osaka.region, made.source_id or "snap-00000000")
            detail = json.loads(entry["Detail"])
            times = 1
            if self.day.number == DUPLICATE_DAY and made.volume_id == self.volumes.logs:
                times = 2
                self.day.events.append(f"the copySnapshot event of logs' copy {copy_id} was delivered twice")
            self.day.published[f"{detail['event']} {detail['result']} {self.osaka.region}"] += times
            entries.extend([entry] * times)
        return entries

    def announce(self) -> int:
        """Both regions' emitters: createSnapshot on Tokyo's default bus, copySnapshot on Osaka's."""
        tokyo, osaka = self._announce_tokyo(), self._announce_osaka()
        # A duplicate delivery is two PutEvents: one call takes each entry once.
        published = self._put(self.source.events, tokyo)
        for entry in osaka:
            published += self._put(self.osaka_events, [entry])
        return published

    def next_completion(self) -> timedelta | None:
        """How long until the next pending snapshot (E11) or copy (E25) completes."""
        fidelity = self.tokyo.fidelity
        dues = [
            s["StartTime"] + fidelity.snapshot_completion_time
            for s in self.tokyo_snapshots()
            if s["State"] == "pending"
        ]
        dues += [
            s["StartTime"] + fidelity.snapshot_copy_time for s in self.osaka_snapshots() if s["State"] == "pending"
        ]
        return min(dues) - self.clock.now() if dues else None

    # -- the Lambda poller, Scheduler ------------------------------------------------------------------------

    def _poll_source(self) -> int:
        report = SlotReport(slot=self.day.slot)
        handled = self.source.poll_once(report)
        self.day.source_messages.update(report.messages)
        self.day.failed_records.extend(report.failed_records)
        return handled

    def work(self) -> int:
        """Every visible message of both queues handled, and the events that causes announced; how many. What
        completed is announced before the queues are polled: EC2 emits the event when the snapshot completes, before
        a delayed check that comes due at the same simulated moment is received."""
        total = 0
        while True:
            published = self.announce()
            handled = self._poll_source() + self.copy.poll_once(self.day)
            total += handled
            if not handled and not published:
                return total

    def _pending(self) -> bool:
        return any(any(policy.queue_depths()) for policy in (self.source, self.copy))

    def run_until(self, moment: datetime) -> None:
        """Let the pollers work and simulated time run to `moment`: delayed messages come due at most SHORT_STEP
        late, and time stops at each completion (its event is published then)."""
        for _round in range(MAX_ROUNDS):
            self.work()
            now = self.clock.now()
            if now >= moment:
                return
            self.rounds += 1
            step = moment
            if self._pending():
                step = min(step, now + SHORT_STEP)
            completion = self.next_completion()
            if completion is not None:
                step = min(step, now + max(completion, timedelta(0)) + timedelta(seconds=1))
            self.clock.set(step)
        raise RuntimeError(f"simulated time did not reach {moment} in {MAX_ROUNDS} rounds")

    def catch_up(self) -> dict[str, Any]:
        """The copy policy's schedule fires (rate(6 hours)): the planner enqueues the sources without a copy."""
        summary = self.copy.plan(self.clock.now())
        self.day.catch_ups.append(summary)
        return summary

    def clear_own_queues(self) -> int:
        """The events of the scenarios before this one (the ebs-snapshot example's createSnapshot events, on the same
        Tokyo bus) that this example's rules routed to its queues: gone, as from a deployment made today."""
        sqs = self.tokyo.client("sqs")
        cleared = 0
        for policy in (self.source, self.copy):
            url = policy.deployment.work_queue_url
            # Only events are there (rules send without delay, and nothing polled these queues): received, deleted.
            while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                for message in batch:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                cleared += len(batch)
        return cleared

    def clear_bystanders(self, urls: Sequence[str]) -> int:
        """Delete this scenario's events from the other live examples' work queues (the ebs-snapshot example's rule
        routes Tokyo's createSnapshot events too)."""
        sqs = self.tokyo.client("sqs")
        cleared = 0
        for url in urls:
            received: list[dict[str, Any]] = []
            while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                received.extend(batch)
            for message in received:
                try:
                    ours = json.loads(message["Body"]).get("id") in self.event_ids
                except (ValueError, AttributeError):
                    ours = False
                if ours:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                    cleared += 1
                else:  # visible again for its own scenario
                    sqs.change_message_visibility(
                        QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
        return cleared

    def kept(self) -> dict[str, list[str]]:
        """Per source volume, the slot tags of the policy's completed copies in Osaka."""
        kept: dict[str, list[str]] = {}
        for snapshot in self.osaka_snapshots():
            tags = _tags(snapshot)
            if tags.get(POLICY_TAG) == self.copy.deployment.policy_name and snapshot["State"] == "completed":
                kept.setdefault(tags.get(SOURCE_VOLUME_TAG, "?"), []).append(tags.get(SLOT_TAG, "?"))
        return {volume: sorted(slots) for volume, slots in kept.items()}


# ---------------------------------------------------------------------------------------------------------------
# The days
# ---------------------------------------------------------------------------------------------------------------


def deployments(aws: Aws, run: scenario.TerraformRun) -> tuple[Deployment, Deployment]:
    """The source (ebs-snapshot) and copy policies of the example, as Terraform applied them."""
    source = scenario.deployment_from_terraform(aws, scenario.module_outputs(run, SOURCE_MODULE), EXAMPLE)
    copy = scenario.deployment_from_terraform(aws, scenario.module_outputs(run, COPY_MODULE), EXAMPLE)
    return source, copy


def destination_region(copy: Deployment) -> str:
    [region] = json.loads(copy.worker_environment["OPS_COPY_DESTINATIONS"])
    return str(region)


def run_days(
    tokyo: LocalAws,
    run: scenario.TerraformRun,
    bystander_queues: Sequence[str] = (),
    days: int = DAYS,
    progress: Callable[[str], None] = lambda _line: None,
) -> CopyReport:
    """On an empty EC2 account (both regions), `days` simulated days ending a day before now (the last day's
    catch-ups included)."""
    source, copy = deployments(tokyo, run)
    osaka = dataclasses.replace(tokyo, region=destination_region(copy))
    slots = scenario.daily_slots(
        source.schedule_expression, source.schedule_timezone, days, datetime.now(UTC) - timedelta(days=1)
    )
    clock = SimulatedClock(slots[0] - timedelta(hours=1))
    scenario.fresh_ec2(tokyo)
    # One topic takes the alerts of both policies (the example's alarm topic).
    inbox = AlertInbox(tokyo, copy.worker_environment["OPS_ALERT_TOPIC_ARN"], f"{copy.policy_name}-e2e-inbox")
    limit = tokyo.fidelity.concurrent_snapshot_copies
    try:
        with scenario.simulated_aws_time(tokyo, clock):
            volumes = create_volumes(tokyo, json.loads(source.planner_environment["OPS_VOLUME_TAGS"]))
            account = Account(tokyo, osaka, source, copy, clock, volumes)
            stray = account.clear_own_queues()
            reports = []
            for number, slot in enumerate(slots, start=1):
                end = slots[number] - SHORT_STEP if number < len(slots) else slot + timedelta(hours=23)
                reports.append(_play_day(account, number, slot, end, inbox, limit, progress))
            cleared = account.clear_bystanders(bystander_queues)
    finally:
        tokyo.fidelity.concurrent_snapshot_copies = limit
        inbox.close()
    return CopyReport(
        source=source,
        copy=copy,
        source_region=tokyo.region,
        destination_region=osaka.region,
        kms_key_arn=str(run.outputs["destination_kms_key_arn"]),
        volumes=volumes,
        days=reports,
        sources=account.sources,
        copies=account.copies,
        copy_log=account.copy.log,
        source_log=account.source.log,
        tokyo_copies=account.tokyo_copies,
        stray_cleared=stray,
        bystanders_cleared=cleared,
        clock_rounds=account.rounds,
    )


def _play_day(
    account: Account,
    number: int,
    slot: datetime,
    end: datetime,
    inbox: AlertInbox,
    limit: int,
    progress: Callable[[str], None],
) -> DayLog:
    progress(f"day {number}")
    fidelity = account.tokyo.fidelity
    account.day = day = DayLog(slot=scenario.format_slot(slot), number=number)
    account.run_until(slot)
    present = {str(s["SnapshotId"]) for s in account.osaka_snapshots()}
    if number == LIMIT_DAY:
        fidelity.concurrent_snapshot_copies = LIMITED_COPIES
        day.events.append(f"Osaka takes {LIMITED_COPIES} concurrent snapshot copy until the first catch-up")
    account.source.plan(slot)
    if number == MANUAL_DAY:
        with account.clock.held():
            manual = str(
                account.ec2.create_snapshot(VolumeId=account.volumes.untagged, Description="by hand")["SnapshotId"]
            )
        account.manual.add(manual)
        day.manual.append(manual)
        day.events.append(f"someone snapshotted tmp by hand: {manual}")
    for offset in CATCH_UPS:
        account.run_until(slot + offset)
        if number == LIMIT_DAY and offset == CATCH_UPS[0]:
            fidelity.concurrent_snapshot_copies = limit
        summary = account.catch_up()
        if summary.get("enqueued"):
            day.events.append(f"catch-up at +{offset}: {summary['enqueued']} copy work item(s) enqueued")
    account.run_until(end)
    remaining = {str(s["SnapshotId"]) for s in account.osaka_snapshots()}
    made = set(day.copies)
    day.retired = sorted((present | made) - remaining - set(day.failed_copies))
    day.kept = account.kept()
    day.alerts = inbox.take()
    return day


@dataclass(frozen=True)
class FinalState:
    tokyo_snapshots: dict[str, dict[str, Any]]  # every snapshot of the account in the source region
    osaka_snapshots: dict[str, dict[str, Any]]  # ... in the destination region
    ledger: list[dict[str, Any]]  # the copy policy's
    source_ledger: list[dict[str, Any]]
    work_queue_messages: int  # both policies' work queues
    dlq_messages: int  # both policies' dead-letter queues


def final_state(tokyo: LocalAws, report: CopyReport) -> FinalState:
    sqs = tokyo.client("sqs")
    osaka = dataclasses.replace(tokyo, region=report.destination_region)

    def snapshots(aws: Aws) -> dict[str, dict[str, Any]]:
        pages = aws.client("ec2").get_paginator("describe_snapshots").paginate(OwnerIds=["self"])
        return {str(s["SnapshotId"]): s for page in pages for s in page["Snapshots"]}

    deployments = (report.source, report.copy)
    return FinalState(
        tokyo_snapshots=snapshots(tokyo),
        osaka_snapshots=snapshots(osaka),
        ledger=scenario.ledger_items(tokyo, report.copy.ledger_table),
        source_ledger=scenario.ledger_items(tokyo, report.source.ledger_table),
        work_queue_messages=sum(scenario.queue_total(sqs, d.work_queue_url) for d in deployments),
        dlq_messages=sum(scenario.queue_total(sqs, d.dlq_url) for d in deployments),
    )
