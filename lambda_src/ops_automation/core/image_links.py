"""Which AMI a snapshot was made for, and whether that AMI still needs it.

The only link trusted here is the description EC2 itself writes on the snapshots it creates for an AMI
(CreateImage, CopyImage), matched exactly. A snapshot that an AMI merely *uses* (an AMI registered from a backup
snapshot) is not that AMI's: deleting it with the AMI would destroy someone else's backup.

An AMI holds its snapshots while DescribeImages lists it in any state but `deregistered` (disabled AMIs are
listed only with `IncludeDisabled`), and while it sits in the Recycle Bin (restoring it needs them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from . import tagging
from .retention import State
from .targeting import MAX_FILTER_VALUES, PAGE_SIZE, chunked

# The descriptions EC2 writes (see the module README for the sources). Anchored: a description a person wrote, or
# one a copy prefixed with "[Copied snap-… from …]", is not a link.
_ID = r"[0-9a-f]{8}(?:[0-9a-f]{9})?"
CREATE_IMAGE_DESCRIPTION = re.compile(
    rf"^Created by CreateImage\((?P<instance>i-{_ID})\) for (?P<image>ami-{_ID})(?: from (?P<volume>vol-{_ID}))?$"
)
COPY_IMAGE_DESCRIPTION = re.compile(
    rf"^Copied for DestinationAmi (?P<image>ami-{_ID}) from SourceAmi (?P<source_image>ami-{_ID})"
    rf" for SourceSnapshot (?P<source_snapshot>snap-{_ID})\. Task created on (?P<task>[0-9,]+)\.$"
)
# Server-side prefilters (DescribeSnapshots filters accept `*` wildcards); the exact match above decides.
ANY_IMAGE_SNAPSHOT_FILTER = {
    "Name": "description",
    "Values": ["Created by CreateImage(*", "Copied for DestinationAmi *"],
}
DEREGISTERED = "deregistered"
# CopySnapshot gives a copy this arbitrary volume id ("Snapshots created by CopySnapshot have an arbitrary volume ID
# that should not be used for any purpose", API_Snapshot). A CreateImage snapshot has its real source volume.
COPY_VOLUME_ID = "vol-ffffffff"
# EC2 image states. `deregistered` images linger in DescribeImages for a while and `disabled` ones are listed only
# on request: neither is a backup that counts, and neither is ours to deregister again.
IMAGE_STATES: Mapping[str, State] = {
    "available": "available",
    "pending": "pending",
    "transient": "pending",
    "failed": "failed",
    "error": "failed",
    "invalid": "failed",
}
NOT_COUNTED_STATES = frozenset({DEREGISTERED, "disabled"})


def image_state(image: Mapping[str, Any]) -> State | None:
    """How an image counts for completion: None for images that are gone (deregistered) or not usable."""
    raw = str(image.get("State", ""))
    if raw in NOT_COUNTED_STATES:
        return None
    return IMAGE_STATES.get(raw, "pending")


def image_of(snapshot: Mapping[str, Any]) -> str | None:
    """The AMI the snapshot was created for, from its EC2-written description; None when it has no such link.

    A copy that kept such a description (a DR copy made with `CopySnapshot(Description=<the original's>)`, or one
    of this project's copies, tagged with its source snapshot) is not linked: its AMI never existed where it is."""
    if tagging.SOURCE_SNAPSHOT in tagging.tag_dict(snapshot.get("Tags")):
        return None
    description = str(snapshot.get("Description") or "")
    match = CREATE_IMAGE_DESCRIPTION.match(description)
    if match:
        return match.group("image") if snapshot.get("VolumeId") != COPY_VOLUME_ID else None
    match = COPY_IMAGE_DESCRIPTION.match(description)
    return match.group("image") if match else None


def image_snapshot_filter(image_id: str) -> dict[str, Any]:
    """The descriptions EC2 writes on the snapshots it made for `image_id`."""
    return {
        "Name": "description",
        "Values": [
            f"Created by CreateImage(*) for {image_id}",
            f"Created by CreateImage(*) for {image_id} from vol-*",
            f"Copied for DestinationAmi {image_id} from SourceAmi *",
        ],
    }


@dataclass(frozen=True)
class Holds:
    """What the account's AMIs hold: the AMIs listed in a state other than `deregistered` (disabled included), and
    every snapshot one of them maps (its own, or one it was registered from)."""

    image_ids: frozenset[str]
    snapshot_ids: frozenset[str]


def image_pages(
    ec2: Any, filters: list[dict[str, Any]], include_disabled: bool = False
) -> Iterator[list[dict[str, Any]]]:
    """This account's AMIs page by page (an owner sees its deprecated ones without asking); disabled ones only when
    asked."""
    paginator = ec2.get_paginator("describe_images")
    extra = {"IncludeDisabled": True} if include_disabled else {}
    for page in paginator.paginate(Owners=["self"], Filters=filters, PaginationConfig={"PageSize": PAGE_SIZE}, **extra):
        yield page.get("Images", [])


def list_images(ec2: Any, filters: list[dict[str, Any]], include_disabled: bool = False) -> list[dict[str, Any]]:
    """This account's AMIs (an owner sees its deprecated ones without asking); disabled ones only when asked."""
    return [image for page in image_pages(ec2, filters, include_disabled) for image in page]


def list_images_by_id(ec2: Any, image_ids: Iterable[str]) -> list[dict[str, Any]]:
    """A filter rather than `ImageIds`: one id deregistered meanwhile would otherwise fail the whole call."""
    found: list[dict[str, Any]] = []
    for chunk in chunked(sorted(set(image_ids)), MAX_FILTER_VALUES):
        found.extend(list_images(ec2, [{"Name": "image-id", "Values": chunk}]))
    return found


def snapshot_ids(images: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every snapshot the images map, sorted."""
    ids = {
        str(mapping["Ebs"]["SnapshotId"])
        for image in images
        for mapping in image.get("BlockDeviceMappings", [])
        if mapping.get("Ebs", {}).get("SnapshotId")
    }
    return sorted(ids)


def account_holds(ec2: Any) -> Holds:
    """One listing of the account's AMIs in the region (pages of 1,000), keeping ids only: the full descriptions of
    200,000 AMIs would take some 800 MB of a 256 MB function (make bench, peak memory)."""
    image_ids: set[str] = set()
    held: set[str] = set()
    for page in image_pages(ec2, [], include_disabled=True):
        live = [image for image in page if image.get("State") != DEREGISTERED]
        image_ids.update(str(image["ImageId"]) for image in live)
        held.update(snapshot_ids(live))
    return Holds(frozenset(image_ids), frozenset(held))


def holding_image_ids(ec2: Any, image_ids: Iterable[str]) -> set[str]:
    """The given AMIs that DescribeImages lists in a state other than `deregistered`, disabled ones included: they
    hold their snapshots."""
    holding: set[str] = set()
    for chunk in chunked(sorted(set(image_ids)), MAX_FILTER_VALUES):
        for image in list_images(ec2, [{"Name": "image-id", "Values": chunk}], include_disabled=True):
            if image.get("State") != DEREGISTERED:
                holding.add(str(image["ImageId"]))
    return holding


def recycle_bin_image_ids(ec2: Any, image_ids: Iterable[str] | None = None) -> set[str]:
    """The AMIs (among the given ones, or all) in the Recycle Bin: restorable, so their snapshots must stay.

    The whole bin is listed (usually one page) rather than asked for ids: AWS does not document how the call
    answers an id that is not in the bin, and an error there must not stop every clean-up."""
    paginator = ec2.get_paginator("list_images_in_recycle_bin")
    binned = {str(image["ImageId"]) for page in paginator.paginate() for image in page.get("Images", [])}
    return binned if image_ids is None else binned & set(image_ids)
