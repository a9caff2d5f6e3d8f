"""Patches that make moto 5's EC2 behave like AWS where the ami-backup code depends on it.

Each patch corrects one documented gap (see ../shared/REFERENCE.md §4). Use `with moto_fidelity(clock) as f:`
around in-process moto (`mock_aws` or a `ThreadedMotoServer` in the same process):

1. CreateImage with a `snapshot` TagSpecification raises NotImplementedError in moto. AWS tags the snapshots
   it creates for the image; the patched call applies the snapshot tags to the image's snapshot.
2. CreateImage does not reject a duplicate name in moto. AWS fails with `InvalidAMIName.Duplicate`.
3. CreateImage on a terminated instance succeeds in moto. AWS only images running or stopped instances
   (`IncorrectInstanceState`).
4. moto stamps images with the wall clock; simulated days need the test's clock (`clock`, optional).
5. Images are `available` at once in moto; `set_image_state` puts one back to pending/failed as AWS would
   report it while the snapshot is in progress or after it broke.
6. `DescribeImages` has no `block-device-mapping.snapshot-id` filter in moto, every moto AMI has exactly one
   snapshot of its own, and DeleteSnapshot only refuses the snapshot an AMI was created with.
   `share_snapshot` adds a mapping to another AMI's snapshot (as RegisterImage with that snapshot does in
   AWS), the filter matches every mapping, and DeleteSnapshot refuses any snapshot a registered AMI maps
   (`InvalidSnapshot.InUse`), as AWS does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from typing import Any
from unittest import mock

from moto.core import DEFAULT_ACCOUNT_ID
from moto.ec2.exceptions import EC2ClientError, InvalidSnapshotInUse
from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import Ami, AmiBackend
from moto.ec2.models.elastic_block_store import EBSBackend

DUPLICATE_NAME = "InvalidAMIName.Duplicate"
INCORRECT_STATE = "IncorrectInstanceState"
SNAPSHOT_FILTER = "block-device-mapping.snapshot-id"


class MotoFidelity:
    def __init__(self, clock: Callable[[], datetime] | None, account_id: str = DEFAULT_ACCOUNT_ID) -> None:
        self.clock = clock
        self.account_id = account_id
        self.extra_snapshots: dict[str, list[str]] = {}
        self.create_image_faults: dict[str, str] = {}
        self.create_image_attempts: list[str] = []

    def fail_create_image(self, instance_id: str, error_code: str | None) -> None:
        """Fault injection, not a fidelity fix: CreateImage for this instance answers `error_code` (None: heal).
        Inside moto, so botocore's retry handling sees the error exactly as it would from AWS."""
        if error_code is None:
            self.create_image_faults.pop(instance_id, None)
        else:
            self.create_image_faults[instance_id] = error_code

    def backend(self, region: str) -> Any:
        return ec2_backends[self.account_id][region]

    def set_image_state(self, region: str, image_id: str, state: str) -> None:
        self.backend(region).amis[image_id].state = state

    def share_snapshot(self, region: str, image_id: str, snapshot_id: str) -> None:
        """Make `image_id` map `snapshot_id` too (the snapshot of another AMI)."""
        self.backend(region).amis[image_id]  # KeyError for an unknown image: fail the test early
        self.extra_snapshots.setdefault(image_id, []).append(snapshot_id)

    def snapshot_of(self, region: str, image_id: str) -> str:
        return str(self.backend(region).amis[image_id].ebs_snapshot.id)

    def snapshots_mapped_by(self, ami: Ami) -> list[str]:
        return [ami.ebs_snapshot.id, *self.extra_snapshots.get(ami.id, [])]


@contextmanager
def moto_fidelity(clock: Callable[[], datetime] | None = None) -> Iterator[MotoFidelity]:
    fidelity = MotoFidelity(clock)
    original_create_image = AmiBackend.create_image
    original_bdm = Ami.block_device_mappings
    original_describe_images = AmiBackend.describe_images
    original_delete_snapshot = EBSBackend.delete_snapshot

    def create_image(
        self: Any, instance_id: str, name: str, description: str, tag_specifications: list[dict[str, Any]]
    ) -> Ami:
        fidelity.create_image_attempts.append(instance_id)
        if instance_id in fidelity.create_image_faults:
            raise EC2ClientError(fidelity.create_image_faults[instance_id], "injected fault")
        instance = self.get_instance(instance_id)
        if instance.state not in ("running", "stopped", "stopping"):
            raise EC2ClientError(
                INCORRECT_STATE, f"The instance '{instance_id}' is not in a state from which it can be imaged."
            )
        if any(ami.name == name and ami.owner_id == self.account_id for ami in self.amis.values()):
            raise EC2ClientError(DUPLICATE_NAME, f"AMI name {name} is already in use by AMI")
        snapshot_tags = [
            tag for spec in tag_specifications if spec["ResourceType"] == "snapshot" for tag in spec["Tags"]
        ]
        others = [spec for spec in tag_specifications if spec["ResourceType"] != "snapshot"]
        ami = original_create_image(self, instance_id, name, description, others)
        if clock is not None:
            ami.creation_date = clock()
        for tag in snapshot_tags:
            ami.ebs_snapshot.add_tag(tag["Key"], tag["Value"])
        return ami

    def block_device_mappings(self: Ami) -> list[dict[str, Any]]:
        mappings = original_bdm.fget(self)  # type: ignore[attr-defined]
        for index, snapshot_id in enumerate(fidelity.extra_snapshots.get(self.id, [])):
            mappings.append({"DeviceName": f"/dev/sd{chr(ord('f') + index)}", "Ebs": {"SnapshotId": snapshot_id}})
        return mappings

    def describe_images(self: Any, ami_ids: Any = None, filters: Any = None, **kwargs: Any) -> list[Ami]:
        # AWS matches an image when any of its mappings uses any of the filter's snapshot ids.
        remaining = dict(filters or {})
        wanted = remaining.pop(SNAPSHOT_FILTER, None)
        images: list[Ami] = original_describe_images(self, ami_ids=ami_ids, filters=remaining, **kwargs)
        if wanted is None:
            return images
        return [ami for ami in images if set(fidelity.snapshots_mapped_by(ami)) & set(wanted)]

    def delete_snapshot(self: Any, snapshot_id: str) -> Any:
        for ami in self.amis.values():
            if snapshot_id in fidelity.snapshots_mapped_by(ami):
                raise InvalidSnapshotInUse(snapshot_id, ami.id)
        return original_delete_snapshot(self, snapshot_id)

    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(AmiBackend, "create_image", create_image))
        stack.enter_context(mock.patch.object(Ami, "block_device_mappings", property(block_device_mappings)))
        stack.enter_context(mock.patch.object(AmiBackend, "describe_images", describe_images))
        stack.enter_context(mock.patch.object(EBSBackend, "delete_snapshot", delete_snapshot))
        yield fidelity
