"""Target resolution on moto: filters only, paginated, and API calls that grow with pages, not targets."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable
from typing import Any

import boto3
import pytest
from aws_harness import REGION, run_instances
from moto.core.responses import ActionResult
from moto.ec2.responses.elastic_block_store import ElasticBlockStore

from ops_automation.core import targeting
from ops_automation.core.errors import InvalidInputError
from ops_automation.core.targeting import (
    resolve_instances,
    resolve_volumes,
    tag_filters,
    validate_instance_id,
    validate_tag_key,
    validate_volume_id,
)

AWS_VOLUME_PAGE_CAP = 500


@pytest.fixture
def paged_volumes(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto 5 ignores MaxResults/NextToken on DescribeVolumes and answers every volume in one page. AWS returns
    at most MaxResults volumes per page (capped at 500) with a NextToken; page moto's answer the same way."""
    original = ElasticBlockStore.describe_volumes

    def describe_volumes(self: ElasticBlockStore) -> ActionResult:
        volumes = list(original(self).result["Volumes"])  # type: ignore[index]
        max_results = self._get_param("MaxResults")
        if max_results is None:
            return ActionResult({"Volumes": volumes})
        size = min(int(max_results), AWS_VOLUME_PAGE_CAP)
        start = int(self._get_param("NextToken") or 0)
        result: dict[str, Any] = {"Volumes": volumes[start : start + size]}
        if start + size < len(volumes):
            result["NextToken"] = str(start + size)
        return ActionResult(result)

    monkeypatch.setattr(ElasticBlockStore, "describe_volumes", describe_volumes)


def _create_volumes(ec2: Any, count: int, tags: dict[str, str] | None = None) -> list[str]:
    kwargs: dict[str, Any] = {"AvailabilityZone": f"{REGION}a", "Size": 1}
    if tags:
        kwargs["TagSpecifications"] = [
            {"ResourceType": "volume", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]
    return [ec2.create_volume(**kwargs)["VolumeId"] for _ in range(count)]


def _volume_ids(volumes: Iterable[targeting.Volume]) -> list[str]:
    return sorted(volume.volume_id for volume in volumes)


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
    monkeypatch.setattr(targeting, "INSTANCES", dataclasses.replace(targeting.INSTANCES, page_size=10))
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


# --- volumes: the same machinery with the DescribeVolumes spec ------------------------------------------------


@pytest.mark.parametrize("value", ["vol-01234567", "vol-0123456789abcdef0"])
def test_valid_volume_ids(value: str) -> None:
    assert validate_volume_id(value) == value


@pytest.mark.parametrize(
    "value", ["vol-0123456", "vol-0123456789ABCDEF0", "i-0123456789abcdef0", "vol-0123456789abcdef", "vol-", ""]
)
def test_invalid_volume_ids_name_field_and_value(value: str) -> None:
    with pytest.raises(InvalidInputError, match="'vol-' followed by 8 or 17") as caught:
        validate_volume_id(value)
    assert (caught.value.field, caught.value.value) == ("volume_id", value)


def test_volume_tags_are_anded_and_a_value_on_another_key_does_not_match(aws: None) -> None:
    ec2, _ = _counting_ec2()
    wanted = _create_volumes(ec2, 2, {"Backup": "nightly", "Env": "prod"})
    _create_volumes(ec2, 1, {"Backup": "nightly", "Env": "dev"})
    _create_volumes(ec2, 1, {"Backup": "nightly"})
    # A tag-key=Backup + tag-value=nightly pair would match this one: "nightly" is the value of another key.
    _create_volumes(ec2, 1, {"Backup": "weekly", "Schedule": "nightly", "Env": "prod"})
    resolution = resolve_volumes(ec2, [], {"Backup": "nightly", "Env": "prod"})
    assert _volume_ids(resolution.volumes) == sorted(wanted)
    assert resolution.missing == ()


def test_volume_ids_union_tags_report_missing_and_carry_attachments(aws: None) -> None:
    ec2, _ = _counting_ec2()
    by_id = _create_volumes(ec2, 2)
    by_tag = _create_volumes(ec2, 1, {"Backup": "nightly"})
    _create_volumes(ec2, 1, {"Backup": "weekly"})
    deleted = _create_volumes(ec2, 1)[0]
    ec2.delete_volume(VolumeId=deleted)
    instance_id = run_instances(ec2, 1)[0]
    ec2.attach_volume(VolumeId=by_id[0], InstanceId=instance_id, Device="/dev/sdf")
    unknown = "vol-0123456789abcdef0"

    resolution = resolve_volumes(ec2, [*by_id, deleted, unknown, by_id[0]], {"Backup": "nightly"})

    assert _volume_ids(resolution.volumes) == sorted([*by_id, *by_tag])
    assert resolution.missing == tuple(sorted([deleted, unknown]))
    by_volume = {volume.volume_id: volume for volume in resolution.volumes}
    assert (by_volume[by_id[0]].state, by_volume[by_id[0]].instance_ids) == ("in-use", (instance_id,))
    assert (by_volume[by_id[1]].state, by_volume[by_id[1]].instance_ids) == ("available", ())
    assert by_volume[by_tag[0]].tags == {"Backup": "nightly"}


def test_volume_states_narrow_the_result(aws: None) -> None:
    ec2, _ = _counting_ec2()
    attached, loose = _create_volumes(ec2, 2, {"Backup": "nightly"})
    ec2.attach_volume(VolumeId=attached, InstanceId=run_instances(ec2, 1)[0], Device="/dev/sdf")
    resolution = resolve_volumes(ec2, [attached, loose], {}, states=["available"])
    assert _volume_ids(resolution.volumes) == [loose]
    assert resolution.missing == (attached,)


def test_volume_calls_grow_with_pages_not_with_targets(paged_volumes: None, monkeypatch: pytest.MonkeyPatch) -> None:
    ec2, calls = _counting_ec2()
    tagged = _create_volumes(ec2, 40, {"Backup": "nightly"})
    _create_volumes(ec2, 5, {"Backup": "weekly"})
    calls.clear()
    assert _volume_ids(resolve_volumes(ec2, [], {"Backup": "nightly"}).volumes) == sorted(tagged)
    assert calls == Counter({"DescribeVolumes": 1})

    calls.clear()
    assert len(resolve_volumes(ec2, tagged, {}).volumes) == 40
    assert calls == Counter({"DescribeVolumes": 1})

    # Smaller pages: the same 40 targets now take ceil(40 / 10) requests, and still all of them come back.
    monkeypatch.setattr(targeting, "VOLUMES", dataclasses.replace(targeting.VOLUMES, page_size=10))
    calls.clear()
    assert _volume_ids(resolve_volumes(ec2, [], {"Backup": "nightly"}).volumes) == sorted(tagged)
    assert calls == Counter({"DescribeVolumes": 4})


def test_every_volume_request_is_filtered_and_paged_at_the_describe_volumes_maximum(aws: None) -> None:
    ec2, _ = _counting_ec2()
    requests: list[dict[str, Any]] = []
    ec2.meta.events.register("provide-client-params.ec2.DescribeVolumes", lambda params, **_: requests.append(params))
    _create_volumes(ec2, 1, {"Backup": "nightly"})
    resolve_volumes(ec2, ["vol-01234567"], {"Backup": "nightly"})
    assert len(requests) == 2
    for params in requests:
        # DescribeVolumes documents MaxResults between 5 and 500 (DescribeInstances goes to 1000).
        assert params["MaxResults"] == AWS_VOLUME_PAGE_CAP
        assert "VolumeIds" not in params
        assert {"Name": "status", "Values": ["in-use", "available"]} in params["Filters"]
        assert not {"tag-key", "tag-value"} & {f["Name"] for f in params["Filters"]}
    assert [f for f in requests[0]["Filters"] if f["Name"] == "volume-id"] == [
        {"Name": "volume-id", "Values": ["vol-01234567"]}
    ]
    assert {"Name": "tag:Backup", "Values": ["nightly"]} in requests[1]["Filters"]
