"""Restore tests of EBS snapshot sets: one new volume per snapshot of the set, in the restore subnet's Availability
Zone, checked `available`, then deleted.

What a passed test proves, and what it does not (for the README): EBS accepted every snapshot of the set as the
source of a new volume and created the volume (`createVolume` result `available`): the snapshot's metadata is whole,
its KMS key (if encrypted) is usable by the restore role, and the set can be restored in that Availability Zone.
It does NOT prove that every block reads back: a volume created from a snapshot is `available` before its blocks are
loaded; they are fetched from Amazon S3 on first access (volume initialization, "Initialize Amazon EBS volumes",
https://docs.aws.amazon.com/ebs/latest/userguide/initalize-volume.html and "Create an Amazon EBS volume",
https://docs.aws.amazon.com/ebs/latest/userguide/ebs-creating-volume.html). Nothing here attaches the volume, mounts
a filesystem or reads a block. To check a filesystem, back the instance up with ami-backup and use its restore test
with a validation document (an instance boots from the restored volumes and runs a command).

A volume from an encrypted snapshot is encrypted with the snapshot's key (CreateVolume, EC2 API Reference,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateVolume.html); the restore role needs kms:CreateGrant
(kms:GrantIsForAWSResource), kms:Decrypt, kms:DescribeKey, kms:GenerateDataKeyWithoutPlaintext and kms:ReEncrypt* on
it ("Requirements for Amazon EBS encryption", https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption-
requirements.html). EBS checks the key after the request is accepted: a volume whose key cannot be used ends its
creation with a `createVolume` event of result `failed` (the documented example's cause names a disabled KMS key;
"Amazon EventBridge events for Amazon EBS", https://docs.aws.amazon.com/ebs/latest/userguide/ebs-cloud-watch-events.html)
and the volume is left in state `error` (or is gone): the test fails and names the cause; a cause naming KMS is
not counted against the set ("restore test cannot run").

Refusals of CreateVolume are judged by the core (core.restore.launch_error_kind): `VolumeLimitExceeded` ("you've
reached the limit on your Amazon EBS volume storage": the Region's storage quota of the volume type, e.g. "Storage
for General Purpose SSD (gp3) volumes, in TiB"), `InsufficientVolumeCapacity` and `MaxIOPSLimitExceeded` are capacity
("Error codes for the Amazon EC2 API", https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html;
"Amazon EBS quotas", https://docs.aws.amazon.com/ebs/latest/userguide/ebs-resource-quotas.html): retried later, never
a failed backup. Each test volume is the snapshot's size (gp3 by default) and lives from CreateVolume to DeleteVolume
(minutes; BENCH has the cost).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from ..core import tagging
from ..core.errors import VOLUME_GONE_ERRORS, error_code
from ..core.events import format_time, parse_time
from ..core.restore import (
    EVENT_CAUSE,
    EVENT_FAILED,
    NOT_BACKUP_FAULT,
    Backup,
    RestoreProgress,
    RestoreRecord,
    RestoreTestConfig,
    RestoreTestMessage,
    Result,
    client_token,
    restore_result_of,
)
from ..core.scope import Target
from ..core.snapshots import SnapshotSet, list_snapshots, list_snapshots_by_id
from ..core.targeting import MAX_FILTER_VALUES, PAGE_SIZE, chunked
from ..core.worker import RetryLater
from .decisions import SnapshotMode, source_of

# A source's sets with only what this policy made in them: the module's own `_source_sets` (instance-mode sets are
# what the ledger's request claim recorded), given as (target, source id, listing).
SourceSets = Callable[[Target, str, Sequence[Mapping[str, Any]]], list[SnapshotSet]]

# DescribeVolumes states (EC2 API Reference, Volume: creating | available | in-use | deleting | deleted | error).
# `in-use`: someone attached the test volume; it was created, which is all the test checks.
READY_STATES = frozenset({"available", "in-use"})
# DeleteVolume takes only an `available` volume ("The volume must be in the available state", DeleteVolume, EC2 API
# Reference, https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeleteVolume.html). The code of the refusal
# of a volume still `creating` is not documented; `IncorrectState` ("vol-… is not 'available'") is what EC2 answers
# for a volume in the wrong state, and `VolumeInUse` for an attached one: both pass, retried later.
NOT_YET_DELETABLE = frozenset({"IncorrectState", "VolumeInUse"})
# A volume just created may not be listed yet ("Eventual consistency in the Amazon EC2 API",
# https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html): missing this soon after the launch is
# still starting, not vanished. Assumed; the document says "up to a few minutes".
LISTING_GRACE = timedelta(minutes=5)
# A volume seen in `error` before its failed createVolume event (the only place its cause is) is judged once the
# event came, or this long after it was first seen: a KMS cause then still makes it "cannot run", not a failed set.
# With no event at all (a target in another region, or an account whose events are not forwarded) the set fails after
# this wait. An assumption: AWS documents no delivery time for the event.
CAUSE_WAIT = timedelta(minutes=2)
ERROR_SEEN_AT = "error_seen_at"
# The `cause` of a failed `createVolume` event is in the record's details under core.restore.EVENT_CAUSE (the core
# puts it there before observing; absent on the check path). AWS documents one cause, an unusable KMS key ("Creation
# will fail if an invalid AWS KMS key was provided", the example's cause naming the key ARN; "Amazon EventBridge
# events for Amazon EBS"): such a failure is not the backup's fault: "restore test cannot run",
# the set's restore result untouched.
KMS_CAUSE = re.compile(r"\bkms\b", re.IGNORECASE)
# CreateTags takes many resources; the same chunk size as the id filters.
TAG_CHUNK = MAX_FILTER_VALUES

# The Availability Zone of each restore subnet, per container: (region, role, subnet) -> zone.
_subnet_zones: dict[tuple[str, str | None, str], str] = {}


class EbsRestore:
    """The EBS snapshot sets of one policy as restore-test backups (core.restore.RestoreAdapter)."""

    resource_noun = "volume"
    first_check_seconds = 30
    poll_seconds = 30

    def __init__(self, config: RestoreTestConfig, policy: str, mode: SnapshotMode, source_sets: SourceSets) -> None:
        self.config = config
        self.policy = policy
        self.mode = mode
        self.source_sets = source_sets

    # -- planning ------------------------------------------------------------------------------------------------

    def backups(self, ec2: Any, target: Target) -> list[Backup]:
        """Every set of the policy in the target, per source, from one listing. Archived sets are the owner's (and
        a volume from an archived snapshot needs it restored to the standard tier first): never offered."""
        marker = tagging.SNAPSHOT_SET if self.mode == "instance" else tagging.SOURCE_VOLUME
        listing = list_snapshots(
            ec2,
            [
                {"Name": f"tag:{tagging.POLICY}", "Values": [self.policy]},
                {"Name": "tag-key", "Values": [marker]},
            ],
        )
        by_source: dict[str, list[Mapping[str, Any]]] = {}
        for snapshot in listing:
            source_id = source_of(snapshot, self.mode)
            if source_id:
                by_source.setdefault(source_id, []).append(snapshot)
        found: list[Backup] = []
        for source_id, snapshots in sorted(by_source.items()):
            for snapshot_set in self.source_sets(target, source_id, snapshots):
                if snapshot_set.snapshots and not snapshot_set.archived:
                    found.append(backup_of(source_id, snapshot_set, self.policy))
        return found

    # -- the test ------------------------------------------------------------------------------------------------

    def prepare(self, ec2: Any, test: RestoreTestMessage) -> None:
        """The restore subnet's Availability Zone (an unknown subnet: `InvalidSubnetID.NotFound`, a configuration
        refusal). No security group: a volume has none."""
        self.zone(ec2, test.region, test.role_arn)

    def zone(self, ec2: Any, region: str, role_arn: str | None) -> str:
        key = (region, role_arn, self.config.subnet_id)
        if key not in _subnet_zones:
            subnets = ec2.describe_subnets(SubnetIds=[self.config.subnet_id]).get("Subnets", [])
            _subnet_zones[key] = str(subnets[0]["AvailabilityZone"])
        return _subnet_zones[key]

    def launch(self, ec2: Any, test: RestoreTestMessage, token: str, tags: Mapping[str, str]) -> tuple[str, ...]:
        """One CreateVolume per snapshot of the set, each with its own client token (test, volume index, attempt),
        so a redelivery gets the same volumes back instead of new ones ("Ensuring idempotency in Amazon EC2 API
        requests", https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-idempotency.html). A capacity refusal of
        a later volume is retried as a new attempt (new tokens): the volumes the refused attempt made are
        deleted here (or, still `creating`, by the test's sweep). Tagged at creation: IAM allows CreateVolume only
        with the ownership and restore-test tags in the request. Size and encryption are the snapshot's."""
        zone = self.zone(ec2, test.region, test.role_arn)
        volume_ids: list[str] = []
        try:
            for index, snapshot_id in enumerate(sorted(test.backup_ids)):
                volume_tags = {**tags, tagging.SOURCE_SNAPSHOT: snapshot_id}
                volume = ec2.create_volume(
                    AvailabilityZone=zone,
                    SnapshotId=snapshot_id,
                    VolumeType=self.config.volume_type,
                    ClientToken=client_token(self.policy, test.test_id, index, test.attempt),
                    TagSpecifications=[{"ResourceType": "volume", "Tags": tagging.tag_list(volume_tags)}],
                )
                volume_ids.append(str(volume["VolumeId"]))
        except ClientError:
            # The refused request made nothing, the earlier ones did: delete what can be (a volume still
            # `creating` cannot; the sweep deletes it), then let the core judge the refusal.
            for volume_id in volume_ids:
                with contextlib.suppress(ClientError):
                    ec2.delete_volume(VolumeId=volume_id)
            raise
        return tuple(volume_ids)

    def observe(self, ec2: Any, record: RestoreRecord, now: datetime) -> RestoreProgress:
        """Every volume `available` (or attached since): ready. One in `error`, being deleted, or gone: failed.
        Otherwise (`creating`, or not listed yet just after the launch): starting."""
        volumes = {str(v["VolumeId"]): v for v in describe_volumes(ec2, record.resource_ids)}
        states = {
            volume_id: str(volumes[volume_id].get("State", "")) if volume_id in volumes else "missing"
            for volume_id in record.resource_ids
        }
        details = {"volumes": ", ".join(f"{volume_id}={state}" for volume_id, state in sorted(states.items()))}
        broken = sorted(v for v, state in states.items() if state in ("error", "deleting", "deleted"))
        missing = sorted(v for v, state in states.items() if state == "missing")
        if missing and now - record.started_at < LISTING_GRACE:
            missing = []
        in_error = [v for v in broken if states[v] == "error"]
        if in_error and record.details.get(EVENT_FAILED) != "true":
            seen = record.details.get(ERROR_SEEN_AT)
            if seen is None:
                return RestoreProgress("starting", "", details, remember={ERROR_SEEN_AT: format_time(now)})
            if now - parse_time(seen, ERROR_SEEN_AT) < CAUSE_WAIT:
                return RestoreProgress("starting", "", details)
        if broken or missing:
            reasons = [f"{v} ({_source_snapshot(volumes.get(v))}): in state {states[v]}" for v in broken]
            reasons += [f"{v}: no longer exists" for v in missing]
            cause = record.details.get(EVENT_CAUSE, "")
            if cause:
                details["cause"] = cause
            if KMS_CAUSE.search(cause):
                # The key, not the backup: the role may not use it (restore_test.kms_key_arns), or it is disabled.
                details[NOT_BACKUP_FAULT] = "true"
                reasons.append(f"KMS: {cause} (check restore_test.kms_key_arns and the key's state and policy)")
            return RestoreProgress("failed", "; ".join(reasons), details)
        if states and all(state in READY_STATES for state in states.values()):
            return RestoreProgress("ready", "", details)
        return RestoreProgress("starting", "", details)

    def clean_up(self, ec2: Any, resource_ids: Sequence[str]) -> None:
        """DeleteVolume of each; one already gone is done. One EC2 will not delete yet (still `creating`, or
        attached) is retried later, after the others are deleted."""
        waiting: list[str] = []
        for volume_id in resource_ids:
            try:
                ec2.delete_volume(VolumeId=volume_id)
            except ClientError as error:
                code = error_code(error)
                if code in VOLUME_GONE_ERRORS:
                    continue
                if code in NOT_YET_DELETABLE:
                    waiting.append(f"{volume_id} ({code})")
                    continue
                raise
        if waiting:
            raise RetryLater(f"restore test volume(s) not deletable yet: {', '.join(waiting)}")

    def leftovers(self, ec2: Any, cutoff: datetime) -> list[str]:
        """This policy's test volumes created before `cutoff` and not being deleted already."""
        paginator = ec2.get_paginator("describe_volumes")
        filters = [
            {"Name": f"tag:{tagging.MANAGED_BY}", "Values": [tagging.MANAGED_BY_VALUE]},
            {"Name": f"tag:{tagging.POLICY}", "Values": [self.policy]},
            {"Name": "tag-key", "Values": [tagging.RESTORE_TEST]},
            {"Name": "status", "Values": ["creating", "available", "in-use", "error"]},
        ]
        found: list[str] = []
        for page in paginator.paginate(Filters=filters, PaginationConfig={"PageSize": PAGE_SIZE}):
            for volume in page.get("Volumes", []):
                if _create_time(volume) < cutoff:
                    found.append(str(volume["VolumeId"]))
        return sorted(found)

    def mark(self, ec2: Any, backup_ids: Sequence[str], result: Result, slot: str) -> None:
        """The result on every snapshot of the set (a set is kept or retired whole, and any of its snapshots may be
        listed first). A snapshot deleted meanwhile is skipped: CreateTags fails the whole request for one unknown
        id."""
        tags = tagging.tag_list({tagging.RESTORE_RESULT: result, tagging.RESTORE_TESTED: slot})
        for chunk in chunked(sorted(set(backup_ids)), TAG_CHUNK):
            try:
                ec2.create_tags(Resources=chunk, Tags=tags)
            except ClientError as error:
                if error_code(error) != "InvalidSnapshot.NotFound":
                    raise
                existing = [str(s["SnapshotId"]) for s in list_snapshots_by_id(ec2, chunk)]
                if existing:
                    ec2.create_tags(Resources=existing, Tags=tags)


def backup_of(source_id: str, snapshot_set: SnapshotSet, policy: str) -> Backup:
    """A set as a restore-test backup: good when every snapshot completed, none is missing and all are this
    policy's; its tags are those every snapshot carries (what `sources = "tagged"` matches); its restore result is
    `failed` if any snapshot says so, `passed` only if all do."""
    tag_sets = [tagging.tag_dict(snapshot.get("Tags")) for snapshot in snapshot_set.snapshots]
    common = dict(tag_sets[0])
    for tags in tag_sets[1:]:
        common = {key: value for key, value in common.items() if tags.get(key) == value}
    results = [restore_result_of(tags) for tags in tag_sets]
    result: Result | None = "failed" if "failed" in results else ("passed" if set(results) == {"passed"} else None)
    good = snapshot_set.state == "available" and snapshot_set.owned_by(policy)
    return Backup(
        source_id=source_id,
        backup_ids=snapshot_set.ids,
        created_at=snapshot_set.created_at,
        tags=common,
        good=good,
        restore_result=result,
    )


def describe_volumes(ec2: Any, volume_ids: Sequence[str]) -> list[dict[str, Any]]:
    """By a filter rather than `VolumeIds`: one volume deleted meanwhile would otherwise fail the whole call."""
    found: list[dict[str, Any]] = []
    paginator = ec2.get_paginator("describe_volumes")
    for chunk in chunked(sorted(set(volume_ids)), MAX_FILTER_VALUES):
        for page in paginator.paginate(Filters=[{"Name": "volume-id", "Values": chunk}]):
            found.extend(page.get("Volumes", []))
    return found


def _source_snapshot(volume: Mapping[str, Any] | None) -> str:
    if volume is None:
        return "snapshot unknown"
    return str(volume.get("SnapshotId") or tagging.tag_dict(volume.get("Tags")).get(tagging.SOURCE_SNAPSHOT, ""))


def _create_time(volume: Mapping[str, Any]) -> datetime:
    created = volume["CreateTime"]
    if isinstance(created, datetime):
        return created
    return datetime.fromisoformat(str(created).replace("Z", "+00:00"))
