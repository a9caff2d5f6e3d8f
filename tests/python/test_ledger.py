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
