"""What each module created and what became of it (docs/DESIGN.md, "Ledger table")."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from botocore.exceptions import ClientError

from .events import format_time

LedgerState = Literal["pending", "available", "failed", "deleted"]
LOCAL_ACCOUNT = "local"


@dataclass(frozen=True)
class LedgerKey:
    service: str
    policy: str
    account: str  # account id of an assumed role, or LOCAL_ACCOUNT for the function's own account
    region: str
    source_id: str
    slot: str
    resource_id: str

    @property
    def pk(self) -> str:
        return f"{self.service}#{self.policy}#{self.account}#{self.region}#{self.source_id}"

    @property
    def sk(self) -> str:
        return f"{self.slot}#{self.resource_id}"


@dataclass(frozen=True)
class LedgerEntry:
    key: LedgerKey
    state: LedgerState
    created_at: str
    updated_at: str
    expires_at: int


class Ledger(Protocol):
    def transition(
        self,
        key: LedgerKey,
        to_state: LedgerState,
        now: datetime,
        ttl_days: int,
        from_states: Collection[LedgerState] | None = None,
    ) -> bool:
        """Move to `to_state` if the entry is absent or in `from_states` (any state when None).

        Returns whether this call made the change, so side effects (metrics) happen once."""

    def get(self, key: LedgerKey) -> LedgerEntry | None: ...


def _expires_at(now: datetime, ttl_days: int) -> int:
    return int((now + timedelta(days=ttl_days)).timestamp())


class InMemoryLedger:
    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], LedgerEntry] = {}

    def transition(
        self,
        key: LedgerKey,
        to_state: LedgerState,
        now: datetime,
        ttl_days: int,
        from_states: Collection[LedgerState] | None = None,
    ) -> bool:
        current = self.entries.get((key.pk, key.sk))
        if current is None:
            stamp = format_time(now)
            self.entries[(key.pk, key.sk)] = LedgerEntry(key, to_state, stamp, stamp, _expires_at(now, ttl_days))
            return True
        if from_states is not None and current.state not in from_states:
            return False
        self.entries[(key.pk, key.sk)] = replace(
            current, state=to_state, updated_at=format_time(now), expires_at=_expires_at(now, ttl_days)
        )
        return True

    def get(self, key: LedgerKey) -> LedgerEntry | None:
        return self.entries.get((key.pk, key.sk))


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
    ) -> bool:
        stamp = format_time(now)
        values: dict[str, Any] = {
            ":state": {"S": to_state},
            ":now": {"S": stamp},
            ":expires": {"N": str(_expires_at(now, ttl_days))},
            ":resource": {"S": key.resource_id},
        }
        condition: dict[str, Any] = {}
        if from_states is not None:
            names = [f":from{index}" for index in range(len(from_states))]
            values.update({name: {"S": state} for name, state in zip(names, sorted(from_states), strict=True)})
            clauses = ["attribute_not_exists(pk)", *([f"#state IN ({', '.join(names)})"] if names else [])]
            condition["ConditionExpression"] = " OR ".join(clauses)
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={"pk": {"S": key.pk}, "sk": {"S": key.sk}},
                UpdateExpression=(
                    "SET #state = :state, updated_at = :now, expires_at = :expires, resource_id = :resource, "
                    "created_at = if_not_exists(created_at, :now)"
                ),
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues=values,
                **condition,
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get(self, key: LedgerKey) -> LedgerEntry | None:
        response = self._dynamodb.get_item(
            TableName=self._table, Key={"pk": {"S": key.pk}, "sk": {"S": key.sk}}, ConsistentRead=True
        )
        item = response.get("Item")
        if item is None:
            return None
        return LedgerEntry(
            key=key,
            state=item["state"]["S"],
            created_at=item["created_at"]["S"],
            updated_at=item["updated_at"]["S"],
            expires_at=int(item["expires_at"]["N"]),
        )
