"""Ledger semantics, identical for the DynamoDB and the in-memory implementation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import boto3
import pytest
from aws_harness import LEDGER_TABLE, REGION, START, Infra

from ops_automation.core.ledger import DynamoLedger, InMemoryLedger, Ledger, LedgerKey

KEY = LedgerKey("ami-backup", "nightly", "local", REGION, "ami-0123456789abcdef0")


@pytest.fixture(params=["dynamodb", "memory"])
def ledger(request: pytest.FixtureRequest) -> Iterator[Ledger]:
    if request.param == "memory":
        yield InMemoryLedger()
        return
    request.getfixturevalue("infra")
    yield DynamoLedger(boto3.client("dynamodb", region_name=REGION), LEDGER_TABLE)


def test_key_layout_follows_the_design() -> None:
    # An AMI event names only the image: one GetItem by (pk, image id) says whether it is this policy's.
    assert KEY.pk == f"ami-backup#nightly#local#{REGION}"
    assert KEY.sk == "ami-0123456789abcdef0"


def test_first_transition_creates_the_entry_with_ttl(ledger: Ledger) -> None:
    assert ledger.get(KEY) is None
    assert ledger.transition(
        KEY, "pending", START, 90, from_states={"pending"}, source_id="i-01234567", slot="2024-05-01T01:00:00Z"
    )
    entry = ledger.get(KEY)
    assert entry is not None
    assert (entry.state, entry.created_at) == ("pending", "2024-05-01T01:00:00Z")
    assert (entry.source_id, entry.slot, entry.reason) == ("i-01234567", "2024-05-01T01:00:00Z", "")
    assert entry.expires_at == int((START + timedelta(days=90)).timestamp())


def test_conditional_transition_happens_once(ledger: Ledger) -> None:
    ledger.transition(KEY, "pending", START, 90, from_states={"pending"})
    later = START + timedelta(minutes=20)
    assert ledger.transition(KEY, "available", later, 90, from_states={"pending"})
    assert not ledger.transition(KEY, "available", later, 90, from_states={"pending"})
    assert not ledger.transition(KEY, "pending", later, 90, from_states={"pending"})
    entry = ledger.get(KEY)
    assert entry is not None
    assert (entry.state, entry.created_at, entry.updated_at) == (
        "available",
        "2024-05-01T01:00:00Z",
        "2024-05-01T01:20:00Z",
    )


def test_unconditional_transition_always_applies(ledger: Ledger) -> None:
    ledger.transition(KEY, "available", START, 90)
    assert ledger.transition(KEY, "deleted", START, 90)
    entry = ledger.get(KEY)
    assert entry is not None and entry.state == "deleted"


def test_later_transitions_keep_source_and_slot_and_record_the_reason(ledger: Ledger) -> None:
    ledger.transition(KEY, "pending", START, 90, source_id="i-01234567", slot="2024-05-01T01:00:00Z")
    ledger.transition(KEY, "failed", START, 90, from_states={"pending"}, reason="still pending past its deadline")
    entry = ledger.get(KEY)
    assert entry is not None
    assert (entry.state, entry.source_id, entry.reason) == ("failed", "i-01234567", "still pending past its deadline")


def test_dynamodb_items_carry_exactly_the_design_attributes(infra: Infra) -> None:
    DynamoLedger(infra.dynamodb, LEDGER_TABLE).transition(
        KEY, "pending", START, 90, source_id="i-01234567", slot="2024-05-01T01:00:00Z"
    )
    [item] = infra.dynamodb.scan(TableName=LEDGER_TABLE)["Items"]
    assert set(item) == {"pk", "sk", "source_id", "slot", "state", "created_at", "updated_at", "expires_at"}


def test_refs_are_stored_and_kept_until_replaced(ledger: Ledger) -> None:
    ledger.transition(KEY, "pending", START, 90)
    ledger.transition(KEY, "available", START, 90, refs=["snap-0123456789abcdef0", "snap-0123456789abcdef1"])
    ledger.transition(KEY, "deleted", START, 90)
    entry = ledger.get(KEY)
    assert entry is not None
    assert entry.refs == ("snap-0123456789abcdef0", "snap-0123456789abcdef1")


def test_a_fenced_transition_applies_only_to_the_entry_as_last_read(ledger: Ledger) -> None:
    ledger.transition(KEY, "pending", START, 90)
    read = ledger.get(KEY)
    assert read is not None
    later = START + timedelta(minutes=20)
    assert ledger.transition(KEY, "pending", later, 90, from_states={"pending"}, expected_updated_at=read.updated_at)
    # A second delivery that read the same entry before the first one's write loses.
    assert not ledger.transition(
        KEY, "pending", later, 90, from_states={"pending"}, expected_updated_at=read.updated_at
    )
    missing = LedgerKey("ami-backup", "nightly", "local", REGION, "absent")
    assert not ledger.transition(missing, "pending", START, 90, expected_updated_at=read.updated_at)


def test_partition_lists_one_policy_account_and_region_only_in_key_order(ledger: Ledger) -> None:
    def key(policy: str, region: str, resource: str) -> LedgerKey:
        return LedgerKey("ami-backup", policy, "local", region, resource)

    for resource in ("ami-3", "ami-1", "ami-2"):
        assert ledger.transition(key("nightly", REGION, resource), "pending", START, 30, source_id="i-1", slot="s")
    assert ledger.transition(key("weekly", REGION, "ami-9"), "pending", START, 30)
    assert ledger.transition(key("nightly", "ap-northeast-3", "ami-8"), "pending", START, 30)
    assert ledger.transition(key("nightly", REGION, "ami-2"), "failed", START, 30, reason="boom")

    listed = list(ledger.partition("ami-backup", "nightly", "local", REGION))

    assert [entry.key.resource_id for entry in listed] == ["ami-1", "ami-2", "ami-3"]
    assert [entry.state for entry in listed] == ["pending", "failed", "pending"]
    assert listed[1] == ledger.get(key("nightly", REGION, "ami-2"))
    assert list(ledger.partition("ami-backup", "monthly", "local", REGION)) == []


def test_partition_pages_through_a_large_partition() -> None:
    """DynamoDB Query returns at most 1 MB per page: the listing follows LastEvaluatedKey (the paginator)."""
    pages = [
        {"Items": [_item("ami-1")], "LastEvaluatedKey": {"pk": {"S": "x"}, "sk": {"S": "ami-1"}}},
        {"Items": [_item("ami-2")]},
    ]

    class Paginator:
        def paginate(self, **kwargs: object) -> list[dict[str, object]]:
            assert kwargs["KeyConditionExpression"] == "pk = :pk"
            assert kwargs["ExpressionAttributeValues"] == {":pk": {"S": KEY.pk}}
            return pages

    class Client:
        def get_paginator(self, name: str) -> Paginator:
            assert name == "query"
            return Paginator()

    listed = list(DynamoLedger(Client(), LEDGER_TABLE).partition("ami-backup", "nightly", "local", REGION))
    assert [entry.key.resource_id for entry in listed] == ["ami-1", "ami-2"]


def _item(resource: str) -> dict[str, dict[str, str]]:
    return {
        "pk": {"S": KEY.pk},
        "sk": {"S": resource},
        "state": {"S": "available"},
        "created_at": {"S": "2026-01-01T00:00:00Z"},
        "updated_at": {"S": "2026-01-01T00:00:00Z"},
        "expires_at": {"N": "1"},
    }


def test_counts_are_added_atomically_and_read_back(ledger: Ledger) -> None:
    tally = LedgerKey("ami-backup", "nightly", "fan-out", "-", "tally#2024-05-01T01:00:00Z")
    assert ledger.counts(tally) == {}
    assert ledger.add_counts(tally, {"done": 1, "planned": 3}, START, 7) == {"done": 1, "planned": 3}
    assert ledger.add_counts(tally, {"done": 1, "failed": 1}, START, 7) == {"done": 2, "planned": 3, "failed": 1}
    assert ledger.counts(tally) == {"done": 2, "planned": 3, "failed": 1}
    entry = ledger.get(tally)  # an entry like any other: the operator CLI can list it
    assert entry is not None and entry.state == "pending"
