"""The completion state machine (pure): what the event or the delayed check does, from the ledger and EC2's state."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from aws_harness import START

from ops_automation.core.completion import completion_action, needs_observation
from ops_automation.core.events import CheckMessage
from ops_automation.core.fanout import backoff_seconds
from ops_automation.core.ledger import LedgerEntry, LedgerKey

DEADLINE = START + timedelta(hours=1)


@pytest.mark.parametrize(
    ("ledger", "observed", "now", "deadline", "action"),
    [
        (None, "available", START, None, "ignore"),  # not in the ledger: not this policy's
        ("available", "available", START, None, "done"),  # duplicate event
        ("deleted", None, START, DEADLINE, "done"),
        ("pending", "available", START, None, "complete"),
        ("pending", "available", DEADLINE + timedelta(hours=1), DEADLINE, "complete"),
        ("failed", "available", START, None, "complete"),  # a late success after the timeout
        ("failed", "failed", START, None, "done"),
        ("pending", "failed", START, None, "fail"),
        ("pending", None, START, DEADLINE, "fail"),  # disappeared before completion
        ("pending", "pending", START, None, "wait"),  # the event path has no deadline
        ("pending", "pending", START, DEADLINE, "wait"),
        ("pending", "pending", DEADLINE, DEADLINE, "time_out"),
    ],
)
def test_completion_action(ledger: Any, observed: Any, now: datetime, deadline: datetime | None, action: str) -> None:
    assert completion_action(ledger, observed, now, deadline) == action


def _entry(state: Any) -> LedgerEntry:
    key = LedgerKey("ami-backup", "nightly", "local", "us-east-1", "ami-01234567")
    return LedgerEntry(key, state, "i-01234567", "2024-05-01T01:00:00Z", "", "", 0)


CHECK = CheckMessage("nightly", "ami-01234567", "i-01234567", "us-east-1", None, "2024-05-01T01:00:00Z", "x")


@pytest.mark.parametrize(
    ("state", "check", "asks_ec2"),
    [
        (None, None, False),
        ("available", CHECK, False),  # the check after the event: no EC2 at all
        ("available", None, False),
        ("deleted", None, False),
        ("failed", CHECK, False),
        ("failed", None, True),  # an event may bring a late success
        ("pending", CHECK, True),
        ("pending", None, True),
    ],
)
def test_ec2_is_asked_only_while_the_outcome_is_open(
    state: str | None, check: CheckMessage | None, asks_ec2: bool
) -> None:
    assert needs_observation(_entry(state) if state else None, check) is asks_ec2


def test_backoff_doubles_from_30_seconds_and_is_capped_at_15_minutes() -> None:
    assert [backoff_seconds(attempt) for attempt in range(1, 8)] == [30, 60, 120, 240, 480, 900, 900]
