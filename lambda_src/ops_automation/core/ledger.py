"""What each module created and what became of it (docs/DESIGN.md, "Ledger table").

One item per resource, keyed so that a state event naming only the resource id (an AMI event carries nothing else)
finds it with one GetItem: no item means the resource is not this policy's, and no EC2 call is needed to say so.
Transitions are conditional, so side effects tied to them (a metric, an alert) happen once.

Leases (`acquire_lease`) cap how many of something run at once across concurrent workers: a lease item names its
holder and an expiry, so a holder that crashed frees its slot by itself.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from botocore.exceptions import ClientError

from .errors import error_code
from .events import format_time

# pending: requested; available: complete and retention applied; failed: failed or timed out; deleted: retired.
LedgerState = Literal["pending", "available", "failed", "deleted"]
LOCAL_ACCOUNT = "local"


@dataclass(frozen=True)
class LedgerKey:
    service: str
    policy: str
    account: str  # account id of an assumed role, or LOCAL_ACCOUNT for the function's own account
    region: str
    resource_id: str

    @property
    def pk(self) -> str:
        return f"{self.service}#{self.policy}#{self.account}#{self.region}"

    @property
    def sk(self) -> str:
        return self.resource_id


@dataclass(frozen=True)
class LedgerEntry:
    key: LedgerKey
    state: LedgerState
    source_id: str
    slot: str
    created_at: str
    updated_at: str
    expires_at: int
    reason: str = ""
    # Resources a request made (the snapshots of one CreateSnapshots call), so a repeated delivery finds them
    # without asking EC2.
    refs: tuple[str, ...] = ()
    # What a multi-step operation records as it goes (a restore test's resources, timings and result).
    details: Mapping[str, str] = field(default_factory=dict)


# Lease items outlive their expiry by a day in the table (TTL), so an operator can still see who held a slot.
LEASE_RETENTION = timedelta(days=1)
# A released lease's expiry: the epoch, before any `now`.
_RELEASED = datetime.fromtimestamp(0, UTC)


class Ledger(Protocol):
    def transition(
        self,
        key: LedgerKey,
        to_state: LedgerState,
        now: datetime,
        ttl_days: int,
        from_states: Collection[LedgerState] | None = None,
        source_id: str | None = None,
        slot: str | None = None,
        reason: str | None = None,
        refs: Sequence[str] | None = None,
        expected_updated_at: str | None = None,
        details: Mapping[str, str] | None = None,
    ) -> bool:
        """Move to `to_state` if the entry is absent or in `from_states` (any state when None) and, when
        `expected_updated_at` is given, still as last read (a fencing token); `source_id`, `slot`, `reason`,
        `refs` and `details` (replacing the stored map) are stored when given. Returns whether this call made the
        change."""

    def get(self, key: LedgerKey) -> LedgerEntry | None: ...

    def add_counts(self, key: LedgerKey, increments: Mapping[str, int], now: datetime, ttl_days: int) -> dict[str, int]:
        """Atomically add `increments` to the named counters of `key`'s item (created at 0, state "pending"), and
        return every counter as it now stands: concurrent workers each add their share, none is lost."""

    def counts(self, key: LedgerKey) -> dict[str, int]:
        """The counters of `key`'s item ({} when there is none)."""

    def partition(self, service: str, policy: str, account: str, region: str) -> Iterator[LedgerEntry]:
        """Every entry of one policy in one account and region, in key order, claims and markers included
        (read-only: the operator CLI's history and report)."""

    def acquire_lease(self, key: LedgerKey, holder: str, now: datetime, until: datetime) -> bool:
        """Take the lease `key` for `holder` until `until` if it is free (absent, or expired: its expiry before
        `now`) or already `holder`'s (the expiry is then moved to `until`). Returns whether `holder` holds it."""

    def release_lease(self, key: LedgerKey, holder: str, now: datetime) -> bool:
        """Free the lease if `holder` still holds it (the item stays, `deleted`, its expiry zeroed: a write the
        ledger's UpdateItem permission covers); False when it expired and another holder took it, or it is already
        free."""


def _expires_at(now: datetime, ttl_days: int) -> int:
    return int((now + timedelta(days=ttl_days)).timestamp())


class InMemoryLedger:
    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], LedgerEntry] = {}
        self.counters: dict[tuple[str, str], dict[str, int]] = {}
        self.leases: dict[tuple[str, str], datetime] = {}

    def transition(
        self,
        key: LedgerKey,
        to_state: LedgerState,
        now: datetime,
        ttl_days: int,
        from_states: Collection[LedgerState] | None = None,
        source_id: str | None = None,
        slot: str | None = None,
        reason: str | None = None,
        refs: Sequence[str] | None = None,
        expected_updated_at: str | None = None,
        details: Mapping[str, str] | None = None,
    ) -> bool:
        current = self.entries.get((key.pk, key.sk))
        stamp = format_time(now)
        if expected_updated_at is not None and (current is None or current.updated_at != expected_updated_at):
            return False
        if current is None:
            current = LedgerEntry(key, to_state, source_id or "", slot or "", stamp, stamp, 0)
        elif from_states is not None and current.state not in from_states:
            return False
        self.entries[(key.pk, key.sk)] = replace(
            current,
            state=to_state,
            updated_at=stamp,
            expires_at=_expires_at(now, ttl_days),
            source_id=source_id or current.source_id,
            slot=slot or current.slot,
            reason=current.reason if reason is None else reason,
            refs=current.refs if refs is None else tuple(refs),
            details=current.details if details is None else dict(details),
        )
        return True

    def get(self, key: LedgerKey) -> LedgerEntry | None:
        return self.entries.get((key.pk, key.sk))

    def add_counts(self, key: LedgerKey, increments: Mapping[str, int], now: datetime, ttl_days: int) -> dict[str, int]:
        if (key.pk, key.sk) not in self.entries:
            self.transition(key, "pending", now, ttl_days)
        counters = self.counters.setdefault((key.pk, key.sk), {})
        for name, value in increments.items():
            counters[name] = counters.get(name, 0) + value
        return dict(counters)

    def counts(self, key: LedgerKey) -> dict[str, int]:
        return dict(self.counters.get((key.pk, key.sk), {}))

    def partition(self, service: str, policy: str, account: str, region: str) -> Iterator[LedgerEntry]:
        pk = LedgerKey(service, policy, account, region, "").pk
        for (entry_pk, _), entry in sorted(self.entries.items()):
            if entry_pk == pk:
                yield entry

    def acquire_lease(self, key: LedgerKey, holder: str, now: datetime, until: datetime) -> bool:
        current = self.entries.get((key.pk, key.sk))
        expiry = self.leases.get((key.pk, key.sk))
        if current is not None and current.source_id != holder and expiry is not None and expiry >= now:
            return False
        stamp = format_time(now)
        created = current.created_at if current is not None else stamp
        self.entries[(key.pk, key.sk)] = LedgerEntry(
            key, "pending", holder, "", created, stamp, _expires_at(until + LEASE_RETENTION, 0)
        )
        self.leases[(key.pk, key.sk)] = until
        return True

    def release_lease(self, key: LedgerKey, holder: str, now: datetime) -> bool:
        current = self.entries.get((key.pk, key.sk))
        expiry = self.leases.get((key.pk, key.sk))
        if current is None or current.source_id != holder or expiry is None or expiry <= _RELEASED:
            return False
        self.entries[(key.pk, key.sk)] = replace(current, state="deleted", updated_at=format_time(now))
        self.leases[(key.pk, key.sk)] = _RELEASED
        return True


class DynamoLedger:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self._dynamodb = dynamodb
        self._table = table_name

    def transition(
        self,
        key: LedgerKey,
        to_state: LedgerState,
        now: datetime,
        ttl_days: int,
        from_states: Collection[LedgerState] | None = None,
        source_id: str | None = None,
        slot: str | None = None,
        reason: str | None = None,
        refs: Sequence[str] | None = None,
        expected_updated_at: str | None = None,
        details: Mapping[str, str] | None = None,
    ) -> bool:
        values: dict[str, Any] = {
            ":state": {"S": to_state},
            ":now": {"S": format_time(now)},
            ":expires": {"N": str(_expires_at(now, ttl_days))},
        }
        sets = [
            "#state = :state",
            "updated_at = :now",
            "expires_at = :expires",
            "created_at = if_not_exists(created_at, :now)",
        ]
        for attribute, value in (("source_id", source_id), ("slot", slot), ("reason", reason)):
            if value is not None:
                values[f":{attribute}"] = {"S": value}
                sets.append(f"{attribute} = :{attribute}")
        if refs is not None:
            values[":refs"] = {"L": [{"S": ref} for ref in refs]}
            sets.append("refs = :refs")
        if details is not None:
            values[":details"] = {"M": {name: {"S": value} for name, value in details.items()}}
            sets.append("details = :details")
        condition: dict[str, Any] = {}
        if from_states is not None:
            names = [f":from{index}" for index in range(len(from_states))]
            values.update({name: {"S": state} for name, state in zip(names, sorted(from_states), strict=True)})
            clauses = ["attribute_not_exists(pk)", *([f"#state IN ({', '.join(names)})"] if names else [])]
            condition["ConditionExpression"] = " OR ".join(clauses)
        if expected_updated_at is not None:
            values[":expected"] = {"S": expected_updated_at}
            fence = "updated_at = :expected"
            existing = condition.get("ConditionExpression")
            condition["ConditionExpression"] = f"({existing}) AND {fence}" if existing else fence
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={"pk": {"S": key.pk}, "sk": {"S": key.sk}},
                UpdateExpression="SET " + ", ".join(sets),
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues=values,
                **condition,
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get(self, key: LedgerKey) -> LedgerEntry | None:
        # Strongly consistent: a check that runs right after the event's transition must see it.
        response = self._dynamodb.get_item(
            TableName=self._table, Key={"pk": {"S": key.pk}, "sk": {"S": key.sk}}, ConsistentRead=True
        )
        item = response.get("Item")
        return None if item is None else entry_of(key, item)

    def add_counts(self, key: LedgerKey, increments: Mapping[str, int], now: datetime, ttl_days: int) -> dict[str, int]:
        """One UpdateItem: ADD creates a missing number at 0 and adds atomically (DynamoDB Developer Guide, "Update
        expressions", ADD); the item gets the attributes every ledger entry has, so the CLI can list it."""
        names = {f"#c{index}": name for index, name in enumerate(sorted(increments))}
        values: dict[str, Any] = {
            f":c{index}": {"N": str(increments[name])} for index, name in enumerate(sorted(increments))
        }
        values.update(
            {
                ":pending": {"S": "pending"},
                ":now": {"S": format_time(now)},
                ":expires": {"N": str(_expires_at(now, ttl_days))},
            }
        )
        response = self._dynamodb.update_item(
            TableName=self._table,
            Key={"pk": {"S": key.pk}, "sk": {"S": key.sk}},
            UpdateExpression=(
                "SET #state = if_not_exists(#state, :pending), created_at = if_not_exists(created_at, :now), "
                "updated_at = :now, expires_at = :expires ADD " + ", ".join(f"{name} :{name[1:]}" for name in names)
            ),
            ExpressionAttributeNames={"#state": "state", **names},
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )
        return _counters(response.get("Attributes", {}))

    def counts(self, key: LedgerKey) -> dict[str, int]:
        response = self._dynamodb.get_item(
            TableName=self._table, Key={"pk": {"S": key.pk}, "sk": {"S": key.sk}}, ConsistentRead=True
        )
        return _counters(response.get("Item", {}))

    def partition(self, service: str, policy: str, account: str, region: str) -> Iterator[LedgerEntry]:
        """A paginated Query on the partition key (strongly consistent reads, like `get`)."""
        pk = LedgerKey(service, policy, account, region, "").pk
        paginator = self._dynamodb.get_paginator("query")
        pages = paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": pk}},
            ConsistentRead=True,
        )
        for page in pages:
            for item in page.get("Items", []):
                yield entry_of(LedgerKey(service, policy, account, region, item["sk"]["S"]), item)

    def acquire_lease(self, key: LedgerKey, holder: str, now: datetime, until: datetime) -> bool:
        """One conditional UpdateItem: the condition is the whole decision, so of concurrent takers of a free slot
        exactly one wins (DynamoDB Developer Guide, "Condition expressions"). The holder is the item's
        `source_id`, so the operator CLI lists who holds which slot."""
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={"pk": {"S": key.pk}, "sk": {"S": key.sk}},
                UpdateExpression=(
                    "SET #state = :pending, source_id = :holder, lease_until = :until, updated_at = :now, "
                    "created_at = if_not_exists(created_at, :now), expires_at = :expires"
                ),
                ConditionExpression="attribute_not_exists(pk) OR source_id = :holder OR lease_until < :epoch",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":pending": {"S": "pending"},
                    ":holder": {"S": holder},
                    ":until": {"N": str(int(until.timestamp()))},
                    ":epoch": {"N": str(int(now.timestamp()))},
                    ":now": {"S": format_time(now)},
                    ":expires": {"N": str(_expires_at(until + LEASE_RETENTION, 0))},
                },
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release_lease(self, key: LedgerKey, holder: str, now: datetime) -> bool:
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={"pk": {"S": key.pk}, "sk": {"S": key.sk}},
                UpdateExpression="SET #state = :deleted, lease_until = :released, updated_at = :now",
                ConditionExpression="source_id = :holder AND lease_until > :released",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":holder": {"S": holder},
                    ":deleted": {"S": "deleted"},
                    ":released": {"N": "0"},
                    ":now": {"S": format_time(now)},
                },
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True


# The counters of a tally item (`add_counts`): its numeric attributes other than the TTL and a lease's expiry.
def _counters(item: Mapping[str, Any]) -> dict[str, int]:
    return {
        name: int(value["N"])
        for name, value in item.items()
        if "N" in value and name not in ("expires_at", "lease_until")
    }


def entry_of(key: LedgerKey, item: dict[str, Any]) -> LedgerEntry:
    """A ledger item as DynamoDB returns it (attribute-value form) → its entry."""
    return LedgerEntry(
        key=key,
        state=item["state"]["S"],
        source_id=item.get("source_id", {}).get("S", ""),
        slot=item.get("slot", {}).get("S", ""),
        created_at=item["created_at"]["S"],
        updated_at=item["updated_at"]["S"],
        expires_at=int(item["expires_at"]["N"]),
        reason=item.get("reason", {}).get("S", ""),
        refs=tuple(ref["S"] for ref in item.get("refs", {}).get("L", [])),
        details={name: value["S"] for name, value in item.get("details", {}).get("M", {}).items()},
    )
