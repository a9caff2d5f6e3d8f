"""Naive baselines modelled on the origin design (uzresk/aws-auto-operations-using-lambda), run on the same moto.

`Baseline` (ami-backup): sequential; one DescribeInstances per target instance; no pagination; one SendMessage per
instance; CreateImage then tagging after `available`; DescribeImages per instance to find old generations;
deregister and delete snapshots inline; a DynamoDB lock item per instance; botocore `adaptive` retries.
`EbsBaseline` (ebs-snapshot): see its docstring."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

from .harness import Network

ADAPTIVE = Config(retries={"mode": "adaptive", "max_attempts": 10})
LOCK_TABLE = "ops-automation-nightly-ledger"


@dataclass
class Baseline:
    network: Network
    queue_url: str
    generations: int = 3
    ec2: Any = field(init=False)
    sqs: Any = field(init=False)
    dynamodb: Any = field(init=False)

    def __post_init__(self) -> None:
        self.ec2 = self.network.client("ec2", config=ADAPTIVE)
        self.sqs = self.network.client("sqs", config=ADAPTIVE)
        self.dynamodb = self.network.client("dynamodb", config=ADAPTIVE)

    def plan(self, tag: tuple[str, str]) -> list[str]:
        """Unpaginated listing of the tagged instances, then one DescribeInstances and one SendMessage each."""
        listing = self.ec2.describe_instances(Filters=[{"Name": f"tag:{tag[0]}", "Values": [tag[1]]}])
        ids = [i["InstanceId"] for r in listing["Reservations"] for i in r["Instances"]]
        for instance_id in ids:
            self.ec2.describe_instances(InstanceIds=[instance_id])
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=instance_id)
        return ids

    def back_up(self, instance_id: str, slot: str) -> str:
        """Create, lock, tag once available (the per-minute checker), then purge old generations inline."""
        self.dynamodb.put_item(TableName=LOCK_TABLE, Item={"pk": {"S": "lock"}, "sk": {"S": f"{instance_id}#{slot}"}})
        image_id = str(
            self.ec2.create_image(InstanceId=instance_id, Name=f"{instance_id}-{slot}", NoReboot=True)["ImageId"]
        )
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=image_id)
        self.ec2.describe_images(ImageIds=[image_id])  # the checker: wait until available
        self.ec2.create_tags(Resources=[image_id], Tags=[{"Key": "InstanceId", "Value": instance_id}])
        self.purge(instance_id)
        return image_id

    def purge(self, instance_id: str) -> None:
        images = self.ec2.describe_images(
            Owners=["self"], Filters=[{"Name": "tag:InstanceId", "Values": [instance_id]}]
        )
        ordered = sorted(images["Images"], key=lambda image: image["CreationDate"], reverse=True)
        for image in ordered[self.generations :]:
            self.ec2.deregister_image(ImageId=image["ImageId"])
            for mapping in image.get("BlockDeviceMappings", []):
                snapshot_id = mapping.get("Ebs", {}).get("SnapshotId")
                if snapshot_id:
                    # the origin logged InvalidSnapshot.InUse and moved on
                    with contextlib.suppress(ClientError):
                        self.ec2.delete_snapshot(SnapshotId=snapshot_id)

    def day(self, tag: tuple[str, str], slot: str) -> None:
        for instance_id in self.plan(tag):
            self.back_up(instance_id, slot)


@dataclass
class EbsBaseline:
    """The origin's ebs-snapshot function (uzresk/aws-auto-operations-using-lambda, ebs-snapshot/EBSSnapshot.java),
    run on the same moto: one scheduled invocation, sequential, nothing paginated, no events, queue or ledger.

    Volume mode is the origin's code: one DescribeVolumes of the tagged volumes, then for each volume CreateSnapshot,
    CreateTags (after creation), one DescribeSnapshots of its snapshots (its describe per target), and DeleteSnapshot
    of the oldest completed ones beyond the generations (the new, pending snapshot counts as one). The origin has no
    instance mode; it is modelled on its per-instance AMI function: one DescribeInstances of the tagged instances,
    then for each instance DescribeInstances, CreateSnapshots (root excluded), CreateTags on the set, one
    DescribeSnapshots of the instance's snapshots and DeleteSnapshot of every snapshot of the sets beyond the
    generations."""

    network: Network
    generations: int = 3
    ec2: Any = field(init=False)

    def __post_init__(self) -> None:
        self.ec2 = self.network.client("ec2", config=ADAPTIVE)

    def day(self, mode: str, tag: tuple[str, str], slot: str, after_listing: Callable[[], None] | None = None) -> None:
        """One run: the listing of the tagged volumes (volume mode) or instances, then each target in turn."""
        tag_filter = [{"Name": f"tag:{tag[0]}", "Values": [tag[1]]}]
        if mode == "volume":
            volumes = [v["VolumeId"] for v in self.ec2.describe_volumes(Filters=tag_filter)["Volumes"]]
        else:
            listing = self.ec2.describe_instances(Filters=tag_filter)
            instances = [i["InstanceId"] for r in listing["Reservations"] for i in r["Instances"]]
        if after_listing is not None:
            after_listing()
        if mode == "volume":
            for volume_id in volumes:
                self.snapshot_volume(volume_id, slot)
        else:
            for instance_id in instances:
                self.snapshot_instance(instance_id, slot)

    def snapshot_volume(self, volume_id: str, slot: str) -> None:
        snapshot_id = str(self.ec2.create_snapshot(VolumeId=volume_id, Description="Created by Lambda")["SnapshotId"])
        self._tag([snapshot_id], "VolumeId", volume_id, slot)
        listing = self.ec2.describe_snapshots(
            Filters=[{"Name": "volume-id", "Values": [volume_id]}, {"Name": "tag:VolumeId", "Values": [volume_id]}]
        )
        self._purge([[snapshot] for snapshot in listing["Snapshots"]])

    def snapshot_instance(self, instance_id: str, slot: str) -> None:
        self.ec2.describe_instances(InstanceIds=[instance_id])
        specification = {"InstanceId": instance_id, "ExcludeBootVolume": True}
        made = self.ec2.create_snapshots(InstanceSpecification=specification, Description="Created by Lambda")
        self._tag([s["SnapshotId"] for s in made["Snapshots"]], "InstanceId", instance_id, slot)
        listing = self.ec2.describe_snapshots(Filters=[{"Name": "tag:InstanceId", "Values": [instance_id]}])
        sets: dict[str, list[dict[str, Any]]] = {}
        for snapshot in listing["Snapshots"]:
            request_date = next(t["Value"] for t in snapshot.get("Tags", []) if t["Key"] == "RequestDate")
            sets.setdefault(request_date, []).append(snapshot)
        self._purge(list(sets.values()))

    def _tag(self, snapshot_ids: list[str], key: str, source_id: str, slot: str) -> None:
        tags = [{"Key": key, "Value": source_id}, {"Key": "BackupType", "Value": "auto"}]
        self.ec2.create_tags(Resources=snapshot_ids, Tags=[*tags, {"Key": "RequestDate", "Value": slot}])

    def _purge(self, sets: list[list[dict[str, Any]]]) -> None:
        """Oldest first; the sets beyond the generations go, their completed snapshots only (as the origin)."""
        ordered = sorted(sets, key=lambda members: min(s["StartTime"] for s in members))
        for members in ordered[: max(0, len(ordered) - self.generations)]:
            for snapshot in members:
                if snapshot["State"] == "completed":
                    self.ec2.delete_snapshot(SnapshotId=snapshot["SnapshotId"])


@dataclass
class DeregisterBaseline:
    """The origin's deregister-image function (uzresk/aws-auto-operations-using-lambda,
    deregister-image/.../DeregisterImageFunction.java), run on the same moto: invoked by a CloudWatch Events rule on
    the CloudTrail `DeregisterImage` call (one invocation per event, no queue, ledger or sweep), it reads the AMI id
    from the request parameters (never `errorCode`), lists the snapshots described
    `Created by CreateImage(*) for <ami> from *` (one unpaginated DescribeSnapshots, no owner filter) and deletes
    each in turn: no in-use, scope or Recycle Bin check; the first error ends the invocation, which still
    "succeeds" (the error is logged), so nothing is retried."""

    network: Network
    ec2: Any = field(init=False)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ec2 = self.network.client("ec2", config=ADAPTIVE)

    def on_event(self, image_id: str) -> list[str]:
        """One invocation; returns the snapshots it deleted."""
        deleted: list[str] = []
        try:
            listing = self.ec2.describe_snapshots(
                Filters=[{"Name": "description", "Values": [f"Created by CreateImage(*) for {image_id} from *"]}]
            )
            for snapshot in listing["Snapshots"]:
                self.ec2.delete_snapshot(SnapshotId=snapshot["SnapshotId"])
                deleted.append(snapshot["SnapshotId"])
        except ClientError as error:  # the origin's catch-all: logged, the invocation succeeds
            self.errors.append(str(error))
        return deleted
