"""A naive baseline modelled on the origin design (uzresk/aws-auto-operations-using-lambda), run on the same moto.

Sequential; one DescribeInstances per target instance; no pagination; one SendMessage per instance; CreateImage
then tagging after `available`; DescribeImages per instance to find old generations; deregister and delete
snapshots inline; a DynamoDB lock item per instance; botocore `adaptive` retries."""

from __future__ import annotations

import contextlib
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
