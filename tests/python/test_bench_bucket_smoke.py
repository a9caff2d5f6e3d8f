"""bench/bucket.py: the EC2 token buckets as published, and a throttled cycle on them (behaviour, never timing)."""

from __future__ import annotations

import pytest
from bench import bucket


def test_a_bucket_refuses_beyond_its_burst_and_refills_at_its_rate() -> None:
    buckets = bucket.Ec2Buckets()
    assert all(buckets.admit(0.0, "CreateImage") for _ in range(50))  # mutating: 50 tokens
    assert not buckets.admit(0.0, "CreateImage")
    assert all(buckets.admit(1.0, "CreateImage") for _ in range(5))  # 5 tokens a second
    assert not buckets.admit(1.0, "CreateImage")
    assert buckets.refused["CreateImage"] == 2
    assert buckets.admit(0.0, "CreateTags")  # another action: its own bucket


@pytest.mark.parametrize(
    ("action", "filtered", "capacity", "rate"),
    [
        ("DescribeInstances", True, 100, 20),
        ("DescribeInstances", False, 50, 10),
        ("DescribeImages", False, 100, 20),
        ("CreateTags", True, 100, 10),
        ("CopyImage", True, 100, 1),
        ("DeregisterImage", True, 100, 5),
        ("CopySnapshot", True, 50, 5),
        ("StartInstances", True, 5, 2),
    ],
)
def test_each_action_draws_from_its_published_bucket(action: str, filtered: bool, capacity: int, rate: int) -> None:
    buckets = bucket.Ec2Buckets()
    admitted = sum(buckets.admit(0.0, action, filtered, instances=1) for _ in range(capacity + 1))
    assert admitted == capacity
    refill = min(capacity, 10)  # after refill / rate seconds, `refill` tokens are back (never above the capacity)
    assert sum(buckets.admit(refill / rate, action, filtered, instances=1) for _ in range(20)) == refill


def test_stop_instances_also_takes_a_token_per_instance() -> None:
    buckets = bucket.Ec2Buckets()
    assert buckets.admit(0.0, "StopInstances", instances=1000)
    assert not buckets.admit(0.0, "StopInstances", instances=1)  # the resource bucket is empty, the request one not
    assert buckets.admit(1.0, "StopInstances", instances=20)


def test_ec2_requests_are_classified_from_their_query() -> None:
    assert bucket._ec2_request(b"Action=DescribeInstances&Version=2016-11-15") == ("DescribeInstances", False, 0)
    assert bucket._ec2_request(b"Action=DescribeInstances&Filter.1.Name=tag%3AB") == ("DescribeInstances", True, 0)
    assert bucket._ec2_request(b"Action=StopInstances&InstanceId.1=i-1&InstanceId.2=i-2") == ("StopInstances", False, 2)


def test_a_throttled_cycle_loses_nothing_and_beats_the_origin() -> None:
    result = bucket.smoke()
    create = result["phases"]["create_image"]
    assert create["throttled"] > 0  # the buckets did refuse requests
    assert result["lost"] == 0 and create["done"] == create["records"] == bucket.SMOKE_FLEET
    # Nothing is admitted faster than the buckets allow: the wall time is at least their minimum.
    assert create["seconds"] >= create["bucket_s"] > 0
    assert create["invocations"] > bucket.SMOKE_FLEET // bucket.BATCH  # throttled records came back from SQS
    assert result["seconds"] <= result["baseline"]["seconds"]
    assert result["longest_run_share"] < bucket.BUDGET_SHARE
