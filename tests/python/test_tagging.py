"""Ownership tags: what proves a resource is ours, and copied tags that can never forge that proof."""

from __future__ import annotations

import pytest

from ops_automation.core import tagging


def test_ownership_tags_carry_managed_by_policy_and_sources() -> None:
    tags = tagging.ownership_tags("nightly", source_instance="i-01234567", slot="2024-05-01T01:00:00Z")
    assert tags == {
        "ops-automation:managed-by": "terraform-aws-ops-automation",
        "ops-automation:policy": "nightly",
        "ops-automation:source-instance": "i-01234567",
        "ops-automation:slot": "2024-05-01T01:00:00Z",
    }
    with pytest.raises(TypeError, match="unknown ownership source"):
        tagging.ownership_tags("nightly", source_bucket="b")


@pytest.mark.parametrize(
    ("tags", "owned"),
    [
        ({"ops-automation:managed-by": "terraform-aws-ops-automation", "ops-automation:policy": "nightly"}, True),
        ({"ops-automation:managed-by": "terraform-aws-ops-automation", "ops-automation:policy": "weekly"}, False),
        ({"ops-automation:policy": "nightly"}, False),
        ({"ops-automation:managed-by": "someone-else", "ops-automation:policy": "nightly"}, False),
        ({}, False),
    ],
)
def test_is_owned_needs_both_tags(tags: dict[str, str], owned: bool) -> None:
    assert tagging.is_owned(tags, "nightly") is owned
    assert tagging.is_owned(tagging.tag_list(tags), "nightly") is owned


def test_copied_tags_skip_aws_and_our_prefix_and_respect_the_limit() -> None:
    ownership = tagging.ownership_tags("nightly", source_instance="i-01234567")
    copied = {
        "aws:cloudformation:stack-name": "s",
        "ops-automation:policy": "forged",
        "ops-automation:managed-by": "forged",
        "Name": "web",
        **{f"k{n:02d}": "v" for n in range(60)},
    }
    merged = tagging.with_copied_tags(ownership, copied)
    assert len(merged) == tagging.MAX_TAGS_PER_RESOURCE
    assert {key: merged[key] for key in ownership} == ownership
    assert merged["Name"] == "web"
    assert not any(key.startswith("aws:") for key in merged)


def test_carries_all_needs_every_wanted_tag_and_something_wanted() -> None:
    tags = {"Schedule": "office-hours", "Env": "dev"}
    assert tagging.carries_all(tags, [("Schedule", "office-hours")])
    assert not tagging.carries_all(tags, [("Schedule", "office-hours"), ("Env", "prod")])
    assert not tagging.carries_all(tags, [])


def test_carries_key_ignores_case_as_iam_does() -> None:
    assert tagging.carries_key({"Ops-Automation:No-Schedule": ""}, "ops-automation:no-schedule")
    assert not tagging.carries_key({"Schedule": "x"}, "ops-automation:no-schedule")
    assert not tagging.carries_key({"Schedule": "x"}, None)
