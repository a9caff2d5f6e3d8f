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


def test_details_are_stored_replaced_when_given_and_kept_otherwise(ledger: Ledger) -> None:
    ledger.transition(KEY, "pending", START, 90, details={"started_at": "2024-05-01T01:00:00Z", "backup_ids": "a,b"})
    ledger.transition(KEY, "pending", START, 90, reason="still starting")
    entry = ledger.get(KEY)
    assert entry is not None and entry.details == {"started_at": "2024-05-01T01:00:00Z", "backup_ids": "a,b"}
    # Replaced whole, not merged: a caller that wants to keep a key writes it again.
    assert ledger.transition(KEY, "failed", START, 90, from_states={"pending"}, details={"result": "failed"})
    entry = ledger.get(KEY)
    assert entry is not None and entry.details == {"result": "failed"}
    [listed] = ledger.partition("ami-backup", "nightly", "local", REGION)
    assert listed.details == {"result": "failed"}


def test_an_entry_without_details_reads_back_an_empty_map(ledger: Ledger) -> None:
    ledger.transition(KEY, "pending", START, 90)
    entry = ledger.get(KEY)
    assert entry is not None and entry.details == {}


LEASE = LedgerKey("ami-backup", "nightly", "local", REGION, "restore-lease#0")
UNTIL = START + timedelta(minutes=45)


def test_a_free_lease_is_taken_by_one_holder_only(ledger: Ledger) -> None:
    assert ledger.acquire_lease(LEASE, "test-a", START, UNTIL)
    assert not ledger.acquire_lease(LEASE, "test-b", START + timedelta(minutes=1), UNTIL)
    # The holder's own redelivery keeps it (and moves its expiry).
    assert ledger.acquire_lease(LEASE, "test-a", START + timedelta(minutes=2), UNTIL + timedelta(minutes=5))
    assert not ledger.acquire_lease(LEASE, "test-b", UNTIL + timedelta(minutes=1), UNTIL + timedelta(hours=1))
    entry = ledger.get(LEASE)  # listed like any entry: the CLI shows who holds the slot
    assert entry is not None and (entry.state, entry.source_id) == ("pending", "test-a")


def test_an_expired_lease_is_free_for_another_holder(ledger: Ledger) -> None:
    assert ledger.acquire_lease(LEASE, "crashed", START, UNTIL)
    assert not ledger.acquire_lease(LEASE, "next", UNTIL, UNTIL + timedelta(minutes=45))  # expiry is inclusive
    assert ledger.acquire_lease(LEASE, "next", UNTIL + timedelta(seconds=1), UNTIL + timedelta(minutes=45))
    # The crashed holder's late release must not free the new holder's slot.
    assert not ledger.release_lease(LEASE, "crashed", UNTIL + timedelta(minutes=1))
    assert not ledger.acquire_lease(LEASE, "third", UNTIL + timedelta(minutes=2), UNTIL + timedelta(hours=1))


def test_a_released_lease_is_free_and_releasing_twice_says_so(ledger: Ledger) -> None:
    assert ledger.acquire_lease(LEASE, "test-a", START, UNTIL)
    assert ledger.release_lease(LEASE, "test-a", START)
    assert not ledger.release_lease(LEASE, "test-a", START)
    entry = ledger.get(LEASE)  # kept (UpdateItem only: the roles have no DeleteItem), marked free
    assert entry is not None and entry.state == "deleted"
    assert ledger.acquire_lease(LEASE, "test-b", START, UNTIL)
    entry = ledger.get(LEASE)
    assert entry is not None and (entry.state, entry.source_id) == ("pending", "test-b")


def test_release_of_a_lease_never_taken_is_false(ledger: Ledger) -> None:
    assert not ledger.release_lease(LEASE, "nobody", START)


def test_dynamodb_lease_items_expire_a_day_after_the_lease(infra: Infra) -> None:
    ledger = DynamoLedger(infra.dynamodb, LEDGER_TABLE)
    assert ledger.acquire_lease(LEASE, "test-a", START, UNTIL)
    [item] = infra.dynamodb.scan(TableName=LEDGER_TABLE)["Items"]
    assert item["lease_until"] == {"N": str(int(UNTIL.timestamp()))}
    assert item["expires_at"] == {"N": str(int((UNTIL + timedelta(days=1)).timestamp()))}
    assert ledger.counts(LEASE) == {}  # the expiry is not a counter
