"""One request per (policy, source, slot): the claim's states and its fencing, on the in-memory ledger."""

from __future__ import annotations

from typing import Any

from aws_harness import REGION, Clock

from ops_automation.core.claims import IN_FLIGHT, claim, record_made, release, take_over
from ops_automation.core.ledger import InMemoryLedger
from ops_automation.core.runtime import Runtime
from ops_automation.core.scope import Target

TARGET = Target(REGION, None)
SLOT = "2024-05-01T01:00:00Z"
VOLUME = "vol-0123456789abcdef0"


def _runtime(clock: Clock) -> Runtime[Any]:
    # Only the ledger, clock, service and policy are used by claims.
    common = type("Common", (), {"policy_name": "nightly"})()
    return Runtime(None, common, None, InMemoryLedger(), None, clock, "ebs-snapshot")  # type: ignore[arg-type]


def test_a_claim_is_new_once_then_in_flight_then_stale() -> None:
    clock = Clock()
    rt = _runtime(clock)
    assert claim(rt, TARGET, VOLUME, SLOT, 90).status == "new"
    assert claim(rt, TARGET, VOLUME, SLOT, 90).status == "in_flight"
    clock.advance(seconds=IN_FLIGHT.total_seconds() + 1)
    assert claim(rt, TARGET, VOLUME, SLOT, 90).status == "stale"


def test_a_made_claim_returns_what_the_request_made() -> None:
    rt = _runtime(Clock())
    held = claim(rt, TARGET, VOLUME, SLOT, 90)
    record_made(rt, held, ["snap-0123456789abcdef0"], 90)
    again = claim(rt, TARGET, VOLUME, SLOT, 90)
    assert (again.status, again.refs) == ("made", ("snap-0123456789abcdef0",))


def test_a_released_claim_can_be_claimed_again() -> None:
    rt = _runtime(Clock())
    release(rt, claim(rt, TARGET, VOLUME, SLOT, 90), "SnapshotCreationPerVolumeRateExceeded", 90)
    assert claim(rt, TARGET, VOLUME, SLOT, 90).status == "new"


def test_only_one_of_two_deliveries_takes_a_stale_claim_over() -> None:
    clock = Clock()
    rt = _runtime(clock)
    claim(rt, TARGET, VOLUME, SLOT, 90)
    clock.advance(minutes=20)
    first, second = claim(rt, TARGET, VOLUME, SLOT, 90), claim(rt, TARGET, VOLUME, SLOT, 90)
    assert first.status == second.status == "stale"
    clock.advance(seconds=1)
    assert take_over(rt, first, 90)
    assert not take_over(rt, second, 90)
    # The winner's claim is fresh again: a third delivery waits.
    assert claim(rt, TARGET, VOLUME, SLOT, 90).status == "in_flight"
