"""Target resolution on moto: filters only, paginated, and API calls that grow with pages, not targets."""

from __future__ import annotations

from collections import Counter
from typing import Any

import boto3
import pytest
from aws_harness import REGION, run_instances

from ops_automation import targeting
from ops_automation.targeting import (
    InvalidInputError,
    resolve_instances,
    tag_filters,
    validate_instance_id,
    validate_tag_key,
)


def _counting_ec2() -> tuple[Any, Counter[str]]:
    ec2 = boto3.client("ec2", region_name=REGION)
    calls: Counter[str] = Counter()
    ec2.meta.events.register("before-call.ec2.*", lambda model, **_: calls.update([model.name]))
    return ec2, calls


@pytest.mark.parametrize("value", ["i-01234567", "i-0123456789abcdef0"])
def test_valid_instance_ids(value: str) -> None:
    assert validate_instance_id(value) == value


@pytest.mark.parametrize("value", ["i-0123456", "i-0123456789ABCDEF0", "0123456789abcdef0", "i-0123456789abcdef", ""])
def test_invalid_instance_ids_name_field_and_value(value: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        validate_instance_id(value)
    assert (caught.value.field, caught.value.value) == ("instance_id", value)


@pytest.mark.parametrize(("key", "reason"), [("", "non-empty"), ("k" * 129, "128"), ("aws:x", "reserved")])
def test_invalid_tag_keys(key: str, reason: str) -> None:
    with pytest.raises(InvalidInputError, match=reason):
        validate_tag_key(key)


def test_tag_filters_use_tag_colon_key_never_key_value_pairs() -> None:
    filters = tag_filters({"Backup": "nightly", "Env": "prod"})
    assert filters == [{"Name": "tag:Backup", "Values": ["nightly"]}, {"Name": "tag:Env", "Values": ["prod"]}]


def test_tags_are_anded_and_a_value_on_another_key_does_not_match(aws: None) -> None:
    ec2, _ = _counting_ec2()
    wanted = run_instances(ec2, 2, {"Backup": "nightly", "Env": "prod"})
    run_instances(ec2, 1, {"Backup": "nightly", "Env": "dev"})
    # The origin's tag-key/tag-value pair matched this one: value "nightly" sits on another key.
    run_instances(ec2, 1, {"Backup": "weekly", "Schedule": "nightly", "Env": "prod"})
    resolution = resolve_instances(ec2, [], {"Backup": "nightly", "Env": "prod"})
    assert sorted(instance.instance_id for instance in resolution.instances) == sorted(wanted)
    assert resolution.missing == ()


def test_explicit_ids_union_tags_and_report_missing_and_terminated(aws: None) -> None:
    ec2, _ = _counting_ec2()
    by_id = run_instances(ec2, 2)
    by_tag = run_instances(ec2, 1, {"Backup": "nightly"})
    terminated = run_instances(ec2, 1)[0]
    ec2.terminate_instances(InstanceIds=[terminated])
    stopped = run_instances(ec2, 1)[0]
    ec2.stop_instances(InstanceIds=[stopped])
    unknown = "i-0123456789abcdef0"
    resolution = resolve_instances(ec2, [*by_id, stopped, terminated, unknown], {"Backup": "nightly"})
    assert sorted(instance.instance_id for instance in resolution.instances) == sorted([*by_id, stopped, *by_tag])
    assert resolution.missing == tuple(sorted([terminated, unknown]))
    assert {instance.state for instance in resolution.instances} == {"running", "stopped"}


def test_calls_grow_with_pages_not_with_targets(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    ec2, calls = _counting_ec2()
    # One reservation each: EC2 (and moto) page by reservation.
    tagged = [instance for _ in range(40) for instance in run_instances(ec2, 1, {"Backup": "nightly"})]
    calls.clear()
    resolution = resolve_instances(ec2, [], {"Backup": "nightly"})
    assert len(resolution.instances) == 40
    assert calls == Counter({"DescribeInstances": 1})

    calls.clear()
    resolve_instances(ec2, tagged, {})
    assert calls == Counter({"DescribeInstances": 1})

    # Smaller pages: the same 40 targets now take ceil(40 / 10) requests.
    monkeypatch.setattr(targeting, "PAGE_SIZE", 10)
    calls.clear()
    assert len(resolve_instances(ec2, [], {"Backup": "nightly"}).instances) == 40
    assert calls == Counter({"DescribeInstances": 4})


def test_explicit_ids_are_chunked_below_the_filter_value_limit(aws: None) -> None:
    ec2, calls = _counting_ec2()
    seen: list[int] = []
    ec2.meta.events.register(
        "provide-client-params.ec2.DescribeInstances",
        lambda params, **_: seen.extend(len(f["Values"]) for f in params["Filters"] if f["Name"] == "instance-id"),
    )
    ids = [f"i-{n:017x}" for n in range(450)]
    resolution = resolve_instances(ec2, ids, {})
    assert calls["DescribeInstances"] == 3
    assert seen == [199, 199, 52]
    assert len(resolution.missing) == 450


def test_every_request_is_filtered_and_paged_at_1000(aws: None) -> None:
    ec2, _ = _counting_ec2()
    requests: list[dict[str, Any]] = []
    ec2.meta.events.register("provide-client-params.ec2.DescribeInstances", lambda params, **_: requests.append(params))
    run_instances(ec2, 1, {"Backup": "nightly"})
    resolve_instances(ec2, ["i-01234567"], {"Backup": "nightly"})
    assert len(requests) == 2
    for params in requests:
        assert params["MaxResults"] == 1000
        assert "InstanceIds" not in params
        names = [f["Name"] for f in params["Filters"]]
        assert "instance-state-name" in names
        assert not {"tag-key", "tag-value"} & set(names)
