"""Faithful in-process stand-ins for the account-wide listings a planner or the sweeper pages through, so that
fleets of 1,000 and 10,000 sources are measured without moto (which slows down past a few thousand resources).

`Catalogue` answers DescribeInstances, DescribeVolumes, DescribeSnapshots, DescribeImages and
ListImagesInRecycleBin from items moto described (the items of a small fleet, cloned with fresh ids for a large
one): MaxResults pages and NextToken as EC2 documents them, the id parameters (InstanceIds, OwnerIds, ...) and the
filters the handlers send. A parameter or filter it does not know raises: it never answers differently in silence.
Large fleets are generated item by item as pages are asked for, so the memory a page takes is the page's (as the
parsed response of EC2 would be), never the whole catalogue's. `StandInSqs` keeps SendMessageBatch bodies (or only
counts them). bench/scale.py checks every stand-in against moto in the same run: same calls, same messages."""

from __future__ import annotations

import copy
import fnmatch
import pickle
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# operation -> (the response's list key, the item's id field); DescribeInstances wraps items in a reservation.
LISTINGS: dict[str, tuple[str, str]] = {
    "describe_instances": ("Reservations", "InstanceId"),
    "describe_volumes": ("Volumes", "VolumeId"),
    "describe_snapshots": ("Snapshots", "SnapshotId"),
    "describe_images": ("Images", "ImageId"),
    "list_images_in_recycle_bin": ("Images", "ImageId"),
}
CALL_NAMES = {
    "describe_instances": "ec2.DescribeInstances",
    "describe_volumes": "ec2.DescribeVolumes",
    "describe_snapshots": "ec2.DescribeSnapshots",
    "describe_images": "ec2.DescribeImages",
    "list_images_in_recycle_bin": "ec2.ListImagesInRecycleBin",
}
# Id parameters: the request's list narrows the listing to those ids ("self" owners: every item here is the account's).
ID_PARAMETERS = {"InstanceIds", "VolumeIds", "SnapshotIds", "ImageIds"}
OWNER_PARAMETERS = {"OwnerIds", "Owners"}
# No leading \b: in a protocol-0 pickle a string follows its opcode letter (`Vi-0123...`).
ID_TOKEN = re.compile(r"(?<![0-9a-z-])(i|vol|snap|ami)-([0-9a-f]{17}|[0-9a-f]{8})(?![0-9a-z])")


def _tag_values(key: str) -> Callable[[Mapping[str, Any]], list[str]]:
    return lambda item: [t["Value"] for t in item.get("Tags", []) if t["Key"] == key]


def _field(*path: str) -> Callable[[Mapping[str, Any]], list[str]]:
    def values(item: Mapping[str, Any]) -> list[str]:
        value: Any = item
        for step in path:
            value = value.get(step) if isinstance(value, Mapping) else None
        return [] if value is None else [str(value)]

    return values


FILTERS: dict[str, Callable[[Mapping[str, Any]], list[str]]] = {
    "instance-id": _field("InstanceId"),
    "instance-state-name": _field("State", "Name"),
    "volume-id": _field("VolumeId"),
    "snapshot-id": _field("SnapshotId"),
    "image-id": _field("ImageId"),
    "description": _field("Description"),
    "tag-key": lambda item: [t["Key"] for t in item.get("Tags", [])],
    "attachment.instance-id": lambda item: [a["InstanceId"] for a in item.get("Attachments", [])],
    "block-device-mapping.snapshot-id": lambda item: [
        m["Ebs"]["SnapshotId"] for m in item.get("BlockDeviceMappings", []) if "SnapshotId" in m.get("Ebs", {})
    ],
}
# `status` (volumes) and `state` (images, snapshots) name the item's State string.
STATE_FILTERS = {"status", "state"}


def matches(filters: Sequence[Mapping[str, Any]], item: Mapping[str, Any]) -> bool:
    """EC2's filter semantics: every filter must match; a filter matches when one of its values does (`*` and `?`
    wildcards)."""
    for entry in filters:
        name, wanted = entry["Name"], entry["Values"]
        if name.startswith("tag:"):
            found = _tag_values(name[4:])(item)
        elif name in STATE_FILTERS:
            found = [str(item.get("State"))]
        elif name in FILTERS:
            found = FILTERS[name](item)
        else:
            raise KeyError(f"the stand-in does not know the filter {name!r}")
        if not any(fnmatch.fnmatchcase(value, pattern) for value in found for pattern in wanted):
            return False
    return True


def remap(value: Any, ids: Callable[[str], str]) -> Any:
    """`value` with every resource id (i-, vol-, snap-, ami-) replaced by `ids(id)`, wherever it appears (fields,
    tag values, descriptions), so a clone keeps its relations (a snapshot's volume, an AMI's snapshots)."""
    if isinstance(value, str):
        return ID_TOKEN.sub(lambda match: ids(match.group(0)), value)
    if isinstance(value, dict):
        return {key: remap(inner, ids) for key, inner in value.items()}
    if isinstance(value, list):
        return [remap(inner, ids) for inner in value]
    return copy.copy(value)


@dataclass
class IdMap:
    """Clone k of an id: the same prefix, then k and the id's serial number in the world (17 hex digits, unique)."""

    serials: dict[str, int] = field(default_factory=dict)

    def learn(self, value: Any) -> None:
        for token in ID_TOKEN.findall(repr(value)):
            original = f"{token[0]}-{token[1]}"
            self.serials.setdefault(original, len(self.serials))

    def clone(self, original: str, k: int) -> str:
        if k == 0:
            return original
        prefix = original.split("-", 1)[0]
        return f"{prefix}-{k:07x}{self.serials.get(original, 0):010x}"


@dataclass
class Catalogue:
    """The listings of one account (one region): `items[operation]` as moto described them, served `copies` times
    (clone 0 is moto's own items, clone k has ids remapped by `IdMap`), generated as the pages are asked for."""

    items: dict[str, list[dict[str, Any]]]
    copies: int = 1
    calls: Counter[str] = field(default_factory=Counter)
    ids: IdMap = field(default_factory=IdMap)
    _templates: dict[tuple[str, int], tuple[list[str], list[str]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for listed in self.items.values():
            for item in listed:
                self.ids.learn(item)

    def size(self, operation: str) -> int:
        return len(self.items.get(operation, [])) * self.copies

    def item(self, operation: str, index: int) -> dict[str, Any]:
        group = self.items[operation]
        k, position = divmod(index, len(group))
        if k == 0:
            return copy.deepcopy(group[position])
        parts, tokens = self._template(operation, position)
        text = parts[0] + "".join(
            self.ids.clone(token, k) + part for token, part in zip(tokens, parts[1:], strict=True)
        )
        return dict(pickle.loads(text.encode("latin-1")))

    def _template(self, operation: str, position: int) -> tuple[list[str], list[str]]:
        """The item pickled as text (protocol 0 ends strings with a newline, not a length: ids may change length),
        split around its ids, so a clone is a join and one `pickle.loads`."""
        key = (operation, position)
        if key not in self._templates:
            text = pickle.dumps(self.items[operation][position], protocol=0).decode("latin-1")
            pieces = ID_TOKEN.split(text)
            # split() with 2 groups: text, prefix, digits, text, ...
            parts = pieces[0::3]
            tokens = [f"{prefix}-{digits}" for prefix, digits in zip(pieces[1::3], pieces[2::3], strict=True)]
            self._templates[key] = (parts, tokens)
        return self._templates[key]

    def answer(self, operation: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        self.calls[CALL_NAMES[operation]] += 1
        key, id_field = LISTINGS[operation]
        request = dict(kwargs)
        filters = list(request.pop("Filters", []))
        limit = request.pop("MaxResults", None)
        start = int(request.pop("NextToken", "") or 0)
        for name in OWNER_PARAMETERS & request.keys():
            if request.pop(name) != ["self"]:
                raise KeyError(f"the stand-in answers only {name}=['self']")
        if not request.pop("IncludeDisabled", False) and operation == "describe_images":
            filters.append({"Name": "state", "Values": ["available", "pending", "failed", "deregistered"]})
        for name in ID_PARAMETERS & request.keys():
            filters.append({"Name": id_field_filter(id_field), "Values": request.pop(name)})
        if request:
            raise KeyError(f"the stand-in does not know {sorted(request)} of {operation}")
        found: list[dict[str, Any]] = []
        index, size = start, self.size(operation)
        while index < size and (limit is None or len(found) < limit):
            candidate = self.item(operation, index)
            index += 1
            if matches(filters, candidate):
                found.append(candidate)
        page: dict[str, Any] = {key: _wrap(operation, found)}
        if index < size:
            page["NextToken"] = str(index)
        return page

    def __getattr__(self, name: str) -> Any:
        if name in LISTINGS:
            return lambda **kwargs: self.answer(name, kwargs)
        raise AttributeError(f"the stand-in does not answer {name}")

    def get_paginator(self, operation: str) -> Paginator:
        if operation not in LISTINGS:
            raise KeyError(f"the stand-in does not page {operation}")
        return Paginator(self, operation)


def id_field_filter(id_field: str) -> str:
    return {"InstanceId": "instance-id", "VolumeId": "volume-id", "SnapshotId": "snapshot-id", "ImageId": "image-id"}[
        id_field
    ]


def _wrap(operation: str, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if operation == "describe_instances":
        return [{"Instances": found}] if found else []
    return found


@dataclass
class Paginator:
    catalogue: Catalogue
    operation: str

    def paginate(self, PaginationConfig: Mapping[str, int] | None = None, **kwargs: Any) -> Iterator[dict[str, Any]]:
        size = (PaginationConfig or {}).get("PageSize")
        token = ""
        while True:
            request = {**kwargs, **({"MaxResults": size} if size else {}), **({"NextToken": token} if token else {})}
            page = self.catalogue.answer(self.operation, request)
            yield page
            token = page.get("NextToken", "")
            if not token:
                return


@dataclass
class StandInSqs:
    """SendMessageBatch (and SendMessage) answered at once; bodies kept when `keep` (the moto check), else only
    counted, so memory measures the function and not a queue."""

    calls: Counter[str] = field(default_factory=Counter)
    bodies: list[str] = field(default_factory=list)
    keep: bool = False
    sent: int = 0

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls["sqs.SendMessageBatch"] += 1
        self._keep([entry["MessageBody"] for entry in Entries])
        return {"Successful": [{"Id": entry["Id"], "MessageId": entry["Id"]} for entry in Entries], "Failed": []}

    def send_message(self, QueueUrl: str, MessageBody: str, **_: Any) -> dict[str, Any]:
        self.calls["sqs.SendMessage"] += 1
        self._keep([MessageBody])
        return {"MessageId": str(self.sent)}

    def _keep(self, bodies: list[str]) -> None:
        self.sent += len(bodies)
        if self.keep:
            self.bodies.extend(bodies)
