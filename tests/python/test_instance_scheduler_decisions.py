"""instance-scheduler's pure decisions: which instances act, excluded dates in the schedule's
time zone, batches split around the ids that refuse a whole request, and what a verified state means."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime

import pytest
from botocore.exceptions import ClientError

from ops_automation.core.errors import ConfigError
from ops_automation.core.targeting import Instance
from ops_automation.instance_scheduler.decisions import (
    ASG_TAG,
    InstanceSchedulerConfig,
    call_in_batches,
    excluded,
    scheduling_decision,
    verification,
)

ENV = {
    "OPS_TARGET_REGIONS": "[]",
    "OPS_TARGET_ROLE_ARNS": "[]",
    "OPS_TARGET_ROLE_EXTERNAL_ID": "",
    "OPS_TARGET_ACCOUNTS": "[]",
    "OPS_TARGET_ORGANIZATIONAL_UNITS": "[]",
    "OPS_TARGET_ROLE_NAME": "",
    "OPS_ORGANIZATIONS_ROLE_ARN": "",
    "OPS_EXCLUDE_ACCOUNTS": "[]",
    "OPS_INSTANCE_IDS": "[]",
    "OPS_TARGET_TAGS": json.dumps({"Schedule": "office-hours"}),
    "OPS_COMPLETION_TIMEOUT_MINUTES": "30",
    "OPS_LEDGER_TTL_DAYS": "30",
    "OPS_SCHEDULE_TIMEZONE": "Asia/Tokyo",
    "OPS_EXCLUDED_DATES": json.dumps(["2026-12-31"]),
    "OPS_OPT_OUT_TAG_KEY": "ops-automation:no-schedule",
    "OPS_ASG_MODE": "skip",
    "OPS_HIBERNATE": "false",
    "OPS_SCHEDULE_RDS": "false",
}


def instance(state: str, **tags: str) -> Instance:
    return Instance("i-0123456789abcdef0", state, dict(tags))


@pytest.mark.parametrize(
    ("state", "action", "verdict"),
    [
        ("stopped", "start", "act"),
        ("running", "start", "already"),
        ("pending", "start", "already"),
        ("stopping", "start", "wait"),
        ("running", "stop", "act"),
        ("stopped", "stop", "already"),
        ("stopping", "stop", "already"),
        ("pending", "stop", "wait"),
        ("terminated", "start", "report"),
        ("shutting-down", "stop", "report"),
    ],
)
def test_each_state_has_one_verdict_per_action(state: str, action: str, verdict: str) -> None:
    assert scheduling_decision(instance(state), action, None, "skip").verdict == verdict  # type: ignore[arg-type]


def test_an_opt_out_tag_skips_whatever_its_case() -> None:
    decision = scheduling_decision(
        instance("running", **{"OPS-Automation:No-Schedule": ""}), "stop", "ops-automation:no-schedule", "skip"
    )
    assert decision.verdict == "skip" and "opt-out" in decision.reason


@pytest.mark.parametrize("mode", ["skip", "capacity"])
def test_an_auto_scaling_member_is_never_stopped_itself(mode: str) -> None:
    decision = scheduling_decision(instance("running", **{ASG_TAG: "web"}), "stop", None, mode)  # type: ignore[arg-type]
    assert decision.verdict == "skip" and "web" in decision.reason


def test_a_terminated_instance_is_reported_even_with_an_opt_out_tag() -> None:
    assert scheduling_decision(instance("terminated", Skip="1"), "stop", "Skip", "skip").verdict == "report"


def test_excluded_dates_are_calendar_dates_of_the_schedule_time_zone() -> None:
    holidays = frozenset({date(2026, 12, 31)})
    # 2026-12-30 15:30 UTC is 2026-12-31 00:30 in Tokyo.
    assert excluded(datetime(2026, 12, 30, 15, 30, tzinfo=UTC), "Asia/Tokyo", holidays)
    assert not excluded(datetime(2026, 12, 30, 14, 30, tzinfo=UTC), "Asia/Tokyo", holidays)
    assert not excluded(datetime(2026, 12, 30, 15, 30, tzinfo=UTC), "UTC", holidays)


def refusing(bad: Mapping[str, str], calls: list[list[str]]) -> object:
    def call(ids: list[str]) -> dict[str, str]:
        calls.append(ids)
        for instance_id in ids:
            if instance_id in bad:
                raise ClientError({"Error": {"Code": bad[instance_id], "Message": "x"}}, "StopInstances")
        return dict.fromkeys(ids, "stopping")

    return call


def test_a_refused_batch_is_split_until_the_bad_ids_stand_alone() -> None:
    ids = [f"i-{n:017x}" for n in range(8)]
    calls: list[list[str]] = []
    results = call_in_batches(
        ids, refusing({ids[5]: "IncorrectInstanceState", ids[6]: "InvalidInstanceID.NotFound"}, calls), 8
    )  # type: ignore[arg-type]
    by_id = {r.instance_id: r for r in results}
    assert {i for i, r in by_id.items() if r.outcome == "done"} == set(ids) - {ids[5], ids[6]}
    assert by_id[ids[5]].outcome == "retry" and by_id[ids[6]].outcome == "refused"
    assert len(calls) < 2 * len(ids)


def test_throttling_is_not_split_and_what_is_not_called_yet_is_throttled() -> None:
    calls: list[list[str]] = []
    ids = ["i-1", "i-2", "i-3", "i-4"]
    results = call_in_batches(ids, refusing({"i-3": "RequestLimitExceeded"}, calls), 2)  # type: ignore[arg-type]
    assert calls == [["i-1", "i-2"], ["i-3", "i-4"]]
    assert [(r.instance_id, r.outcome) for r in results] == [
        ("i-1", "done"), ("i-2", "done"), ("i-3", "throttled"), ("i-4", "throttled")
    ]  # fmt: skip


def test_batches_respect_their_size() -> None:
    calls: list[list[str]] = []
    call_in_batches([f"i-{n}" for n in range(5)], refusing({}, calls), 2)  # type: ignore[arg-type]
    assert [len(c) for c in calls] == [2, 2, 1]


def test_a_start_that_fell_back_to_stopped_names_the_kms_grant() -> None:
    reason = {"Code": "Client.InternalError", "Message": "Client.InternalError: Client error on launch"}
    result = verification("start", "stopped", reason)
    assert result.state == "failed" and "kms:CreateGrant" in result.reason and "Client error on launch" in result.reason
    assert verification("start", "pending", None).state == "pending"
    assert verification("stop", "stopped", None).state == "ok"
    assert verification("stop", "running", None).state == "failed"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OPS_SCHEDULE_TIMEZONE", "Asia/Tokio"),
        ("OPS_EXCLUDED_DATES", json.dumps(["2026-02-30"])),
        ("OPS_EXCLUDED_DATES", json.dumps(["31/12/2026"])),
        ("OPS_ASG_MODE", "suspend"),
        ("OPS_COMPLETION_TIMEOUT_MINUTES", "0"),
    ],
)
def test_bad_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        InstanceSchedulerConfig.from_env({**ENV, name: value})
    assert raised.value.field == name


@pytest.mark.parametrize("name, value", [("OPS_ASG_MODE", "capacity"), ("OPS_SCHEDULE_RDS", "true")])
def test_groups_and_databases_need_target_tags(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        InstanceSchedulerConfig.from_env(
            {**ENV, "OPS_TARGET_TAGS": "{}", "OPS_INSTANCE_IDS": '["i-0123456789abcdef0"]', name: value}
        )
    assert raised.value.field == name


def test_settings_are_read() -> None:
    settings = InstanceSchedulerConfig.from_env(ENV)
    assert settings.excluded_dates == frozenset({date(2026, 12, 31)}) and settings.completion.timeout_minutes == 30


def test_an_error_of_the_service_is_not_split_and_is_retried_whole() -> None:
    calls: list[list[str]] = []
    results = call_in_batches(["i-1", "i-2", "i-3"], refusing({"i-2": "Unavailable"}, calls), 3)  # type: ignore[arg-type]
    assert calls == [["i-1", "i-2", "i-3"]]
    assert {(r.instance_id, r.outcome) for r in results} == {("i-1", "retry"), ("i-2", "retry"), ("i-3", "retry")}


def test_a_capacity_shortage_of_one_instance_type_does_not_hold_back_the_others() -> None:
    """InsufficientInstanceCapacity is a server error, but of one instance type in one zone: split like a refusal."""
    calls: list[list[str]] = []
    results = call_in_batches(["i-1", "i-2", "i-3"], refusing({"i-2": "InsufficientInstanceCapacity"}, calls), 3)  # type: ignore[arg-type]
    assert {(r.instance_id, r.outcome) for r in results} == {("i-1", "done"), ("i-2", "retry"), ("i-3", "done")}
