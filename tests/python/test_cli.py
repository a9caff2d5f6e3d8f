"""The operator CLI (`ops-automation`) on moto: the deployed configuration read back from Lambda, tables holding
every source, `--json` as one document, exit codes 0/1/2, `plan` making no mutating call for any module, `history`
over the ledger, `invoke` running a handler."""

from __future__ import annotations

import functools
import io
import json
import os
import sys
import zipfile
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import click
import pytest
from aws_harness import (
    LEDGER_TABLE,
    OTHER_REGION,
    POLICY,
    REGION,
    START,
    Clock,
    Infra,
    alerts_sent,
    assumed_client,
    run_instances,
    take_messages,
)
from click.testing import CliRunner, Result
from rich.console import Console
from tests.support.moto_fidelity import MotoFidelity
from tests.support.python_scan import iam_action

from ops_automation.cli import history as history_module
from ops_automation.cli import invoke
from ops_automation.cli.context import Operator
from ops_automation.cli.main import cli, main
from ops_automation.core import observability, tagging
from ops_automation.core.clients import ClientFactory
from ops_automation.core.events import format_time
from ops_automation.core.ledger import LOCAL_ACCOUNT, DynamoLedger, LedgerKey

FUNCTION_ROLE = "ops-automation-test-function"
# What a read-only look may call: the List and Read access levels of the Service Authorization Reference, and
# AssumeRole (listed as Write: it only mints credentials for a spoke account's role).
READ_ONLY_LEVELS = {"List", "Read"}
ALSO_READ_ONLY = {"sts:AssumeRole"}
HANDLER_OF = {
    "planner": "plan_handler",
    "starter": "plan_handler",
    "sweeper": "sweep_handler",
    "worker": "work_handler",
}


# ---------------------------------------------------------------------------------------------------------------
# Helpers: a deployed policy as Lambda holds it, the CLI run, the access levels
# ---------------------------------------------------------------------------------------------------------------


def deploy(
    package: str,
    scheduled: str = "planner",
    schedule: tuple[str, str] = ("cron(0 1 * * ? *)", "Asia/Tokyo"),
) -> str:
    """The policy's functions and schedule on moto, with the environment the `configure*` fixture just set (what
    modules/internal gives every function). Returns the policy name."""
    environment = {name: value for name, value in os.environ.items() if name.startswith("OPS_")}
    policy = environment["OPS_POLICY_NAME"]
    iam = boto3.client("iam", region_name=REGION)
    role_arn = iam.create_role(RoleName=f"{policy}-{FUNCTION_ROLE}", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lambda_ = boto3.client("lambda", region_name=REGION)
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("placeholder.py", "")
    arns = {}
    for key in (scheduled, "worker"):
        arns[key] = lambda_.create_function(
            FunctionName=f"{policy}-{key}",
            Runtime="python3.13",
            Role=role_arn,
            Handler=f"ops_automation.{package}.handlers.{HANDLER_OF[key]}",
            Code={"ZipFile": code.getvalue()},
            Environment={"Variables": environment},
        )["FunctionArn"]
    boto3.client("scheduler", region_name=REGION).create_schedule(
        Name=f"{policy}-{scheduled}",
        ScheduleExpression=schedule[0],
        ScheduleExpressionTimezone=schedule[1],
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": arns[scheduled], "RoleArn": role_arn, "Input": json.dumps({"scheduled_time": "x"})},
    )
    return policy


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["--region", REGION, *args])


def document(result: Result) -> Any:
    """`--json`: stdout is exactly one JSON document."""
    return json.loads(result.stdout)


@functools.cache
def access_levels() -> dict[str, str]:
    """`service:Action` → access level, from parliament's copy of the Service Authorization Reference."""
    import importlib.util

    spec = importlib.util.find_spec("parliament")
    assert spec is not None and spec.origin, "parliament (requirements-dev) is not installed"
    data = json.loads((Path(spec.origin).parent / "iam_definition.json").read_text(encoding="utf-8"))
    return {
        f"{service['prefix']}:{privilege['privilege']}": privilege["access_level"]
        for service in data
        for privilege in service["privileges"]
    }


def iam_actions(calls: Counter[str]) -> set[str]:
    """`api_calls` keys (`ec2.DescribeInstances`) as IAM actions (the signing name is the IAM prefix)."""
    loader = botocore.session.get_session()
    actions = set()
    for call in calls:
        service, operation = call.split(".", 1)
        prefix = loader.get_service_model(service).metadata.get("signingName") or service
        actions.add(iam_action(f"{prefix}:{operation}"))
    return actions


def mutating(calls: Counter[str]) -> set[str]:
    levels = access_levels()
    for action in iam_actions(calls):
        assert action in levels, f"{action}: not in the Service Authorization Reference"
    return {
        action
        for action in iam_actions(calls)
        if levels[action] not in READ_ONLY_LEVELS and action not in ALSO_READ_ONLY
    }


def aws_state(infra: Infra) -> dict[str, Any]:
    """What a mutating call would change: resources, tags, instance states, ledger items, queued work, alerts."""
    queue = infra.sqs.get_queue_attributes(QueueUrl=infra.queue_url, AttributeNames=["All"])["Attributes"]
    return {
        "images": sorted((i["ImageId"], i["State"]) for i in infra.ec2.describe_images(Owners=["self"])["Images"]),
        "snapshots": sorted(s["SnapshotId"] for s in infra.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]),
        "instances": sorted(
            (i["InstanceId"], i["State"]["Name"])
            for r in infra.ec2.describe_instances()["Reservations"]
            for i in r["Instances"]
        ),
        "tags": sorted((t["ResourceId"], t["Key"], t["Value"]) for t in infra.ec2.describe_tags()["Tags"]),
        "ledger": infra.dynamodb.scan(TableName=LEDGER_TABLE)["Items"],
        "queued": {k: v for k, v in queue.items() if k.startswith("ApproximateNumberOfMessages")},
        "alerts": alerts_sent(),
    }


def managed_image(infra: Infra, instance: str, slot: str, policy: str = POLICY) -> str:
    tags = {
        tagging.MANAGED_BY: tagging.MANAGED_BY_VALUE,
        tagging.POLICY: policy,
        tagging.SOURCE_INSTANCE: instance,
        "ops-automation:slot": slot,
    }
    return str(
        infra.ec2.create_image(
            InstanceId=instance,
            Name=f"seed-{instance}-{slot}".replace(":", "-"),
            TagSpecifications=[{"ResourceType": "image", "Tags": tagging.tag_list(tags)}],
        )["ImageId"]
    )


# ---------------------------------------------------------------------------------------------------------------
# plan
# ---------------------------------------------------------------------------------------------------------------


def test_plan_table_names_every_instance_and_what_retention_would_keep_and_delete(
    configure: Callable[..., Any], infra: Infra, fidelity: MotoFidelity, clock: Clock
) -> None:
    instances = run_instances(infra.ec2, 4, {"Backup": "nightly"})
    run_instances(infra.ec2, 2, {"Backup": "weekly"})
    configure(OPS_GENERATIONS="2")
    images = []
    for day in range(3):
        clock.now = START + timedelta(days=day)
        images.append(managed_image(infra, instances[0], format_time(clock.now)))
    policy = deploy("ami_backup")
    slot = format_time(START + timedelta(days=3))

    result = run("plan", "ami-backup", "--policy", policy, "--slot", slot)

    assert result.exit_code == 0, result.output
    for instance in instances:
        assert instance in result.stdout
    assert all(image in result.stdout for image in images) and "(next backup)" in result.stdout
    assert f"plan for {slot} (dry run)" in result.stdout

    as_json = run("--json", "plan", "ami-backup", "--policy", policy, "--slot", slot)

    assert as_json.exit_code == 0
    plan = {row["instance_id"]: row for row in document(as_json)["plan"]}
    # Two generations: the next backup and the newest one stay, the two older ones would go.
    assert sorted(plan) == sorted(instances)
    assert [item["image_id"] for item in plan[instances[0]]["would_delete"]] == [images[1], images[0]]
    assert [item["image_id"] for item in plan[instances[0]]["would_keep"]] == ["(next backup)", images[2]]
    assert document(as_json)["findings"] == []


def _seed_ami_backup(infra: Infra, configure: Callable[..., Any]) -> str:
    instance = run_instances(infra.ec2, 2, {"Backup": "nightly"})[0]
    configure(OPS_GENERATIONS="1")
    managed_image(infra, instance, "2024-04-30T01:00:00Z")
    return deploy("ami_backup")


def _seed_ebs_snapshot(infra: Infra, configure: Callable[..., Any]) -> str:
    for _ in range(2):
        volume = infra.ec2.create_volume(
            AvailabilityZone=f"{REGION}a",
            Size=8,
            TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "Backup", "Value": "hourly"}]}],
        )["VolumeId"]
    infra.ec2.create_snapshot(
        VolumeId=volume,
        TagSpecifications=[
            {
                "ResourceType": "snapshot",
                "Tags": tagging.tag_list({tagging.MANAGED_BY: tagging.MANAGED_BY_VALUE, tagging.POLICY: POLICY}),
            }
        ],
    )
    configure(OPS_GENERATIONS="1")
    return deploy("ebs_snapshot")


def _seed_snapshot_copy(infra: Infra, configure: Callable[..., Any]) -> str:
    configure()
    return deploy("snapshot_copy")


def _seed_deregister_cleanup(infra: Infra, configure: Callable[..., Any]) -> str:
    [instance] = run_instances(infra.ec2, 1)
    image = infra.ec2.create_image(
        InstanceId=instance,
        Name="to-deregister",
        TagSpecifications=[
            {"ResourceType": kind, "Tags": tagging.tag_list({tagging.MANAGED_BY: tagging.MANAGED_BY_VALUE})}
            for kind in ("image", "snapshot")
        ],
    )["ImageId"]
    infra.ec2.deregister_image(ImageId=image)
    configure()
    return deploy("deregister_cleanup", scheduled="sweeper")


def _seed_instance_scheduler(infra: Infra, configure: Callable[..., Any]) -> str:
    running = run_instances(infra.ec2, 2, {"Schedule": "office-hours"})
    infra.ec2.stop_instances(InstanceIds=running[:1])
    configure()
    return deploy("instance_scheduler", scheduled="starter")


def _seed_ssm_runcommand(infra: Infra, configure: Callable[..., Any]) -> str:
    run_instances(infra.ec2, 2, {"Backup": "nightly-db"})
    configure()
    return deploy("ssm_runcommand")


# module → (fixture, seed, exit code): snapshot-copy has no source snapshot at all, a finding.
MODULE_CASES = {
    "ami-backup": ("configure", _seed_ami_backup, 0),
    "ebs-snapshot": ("configure_ebs", _seed_ebs_snapshot, 0),
    "snapshot-copy": ("configure_copy", _seed_snapshot_copy, 1),
    "deregister-cleanup": ("configure_cleanup", _seed_deregister_cleanup, 0),
    "instance-scheduler": ("configure_scheduler", _seed_instance_scheduler, 0),
    "ssm-runcommand": ("configure_runcommand", _seed_ssm_runcommand, 0),
}


@pytest.mark.parametrize("module", list(MODULE_CASES))
def test_plan_makes_no_mutating_call_and_changes_nothing(
    module: str, request: pytest.FixtureRequest, infra: Infra, fidelity: MotoFidelity, api_calls: Counter[str]
) -> None:
    fixture, seed, exit_code = MODULE_CASES[module]
    policy = seed(infra, request.getfixturevalue(fixture))
    before = aws_state(infra)
    api_calls.clear()

    result = run("--json", "plan", module, "--policy", policy, "--slot", format_time(START + timedelta(days=2)))

    assert result.exit_code == exit_code, result.output
    assert document(result)["module"] == module
    assert api_calls, "plan read nothing"
    assert {"lambda:GetFunctionConfiguration", "ec2:DescribeInstances"} & iam_actions(api_calls)
    assert mutating(api_calls) == set(), f"plan of {module} called {sorted(api_calls)}"
    assert aws_state(infra) == before


def test_plan_of_the_scheduler_says_what_a_start_and_a_stop_would_do_to_each_instance(
    configure_scheduler: Callable[..., Any], infra: Infra, fidelity: MotoFidelity
) -> None:
    policy = _seed_instance_scheduler(infra, configure_scheduler)
    states = {
        i["InstanceId"]: i["State"]["Name"]
        for r in infra.ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
    }
    assert sorted(states.values()) == ["running", "stopped"]

    result = run("--json", "plan", "instance-scheduler", "--policy", policy)

    assert result.exit_code == 0, result.output
    verdicts = {row["state"]: (row["start"]["verdict"], row["stop"]["verdict"]) for row in document(result)["plan"]}
    assert verdicts == {"running": ("already", "act"), "stopped": ("act", "already")}
    table = run("plan", "instance-scheduler", "--policy", policy)
    assert all(instance in table.stdout for instance in states)


def test_plan_of_the_orphan_sweep_lists_the_snapshots_it_would_delete(
    configure_cleanup: Callable[..., Any], infra: Infra, fidelity: MotoFidelity
) -> None:
    policy = _seed_deregister_cleanup(infra, configure_cleanup)
    [orphan] = [s["SnapshotId"] for s in infra.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]]

    # A day later the grace period (24 h) is over.
    result = run("--json", "plan", "deregister-cleanup", "--policy", policy, "--slot", "2030-01-01T00:00:00Z")

    assert result.exit_code == 0, result.output
    assert [row["snapshot_id"] for row in document(result)["plan"]] == [orphan]


def test_plan_with_nothing_matched_exits_1_names_it_and_publishes_nothing(
    configure: Callable[..., Any], infra: Infra, api_calls: Counter[str]
) -> None:
    run_instances(infra.ec2, 2, {"Backup": "weekly"})
    configure()
    policy = deploy("ami_backup")

    result = run("--json", "plan", "ami-backup", "--policy", policy)

    assert result.exit_code == 1
    [finding] = document(result)["findings"]
    assert finding.startswith("no instance matched")
    assert alerts_sent() == [] and take_messages() == []
    assert not {"sns.Publish", "sqs.SendMessageBatch"} & set(api_calls)


def test_plan_reads_the_configuration_from_terraform_outputs_without_asking_lambda(
    configure: Callable[..., Any], infra: Infra, tmp_path: Path, api_calls: Counter[str]
) -> None:
    instances = run_instances(infra.ec2, 2, {"Backup": "nightly"})
    configure()
    environment = {name: value for name, value in os.environ.items() if name.startswith("OPS_")}
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        json.dumps(
            {
                "function_environment_variables": {"sensitive": False, "type": "map", "value": environment},
                "planner_function_name": {"value": f"{POLICY}-planner"},
                "planner_handler": {"value": "ops_automation.ami_backup.handlers.plan_handler"},
                "schedule": {"value": {"arn": "arn", "expression": "cron(0 1 * * ? *)", "timezone": "UTC"}},
            }
        )
    )

    result = run("--json", "plan", "ami-backup", "--policy", POLICY, "--from-state", str(outputs))

    assert result.exit_code == 0, result.output
    assert sorted(row["instance_id"] for row in document(result)["plan"]) == sorted(instances)
    assert not any(call.startswith("lambda.") for call in api_calls)
    assert run("plan", "ami-backup", "--policy", "other", "--from-state", str(outputs)).exit_code == 2


# ---------------------------------------------------------------------------------------------------------------
# Exit codes 2: usage, and could not look
# ---------------------------------------------------------------------------------------------------------------


def test_an_unknown_policy_exits_2_with_one_line_and_no_traceback(infra: Infra) -> None:
    result = run("plan", "ami-backup", "--policy", "no-such-policy")

    assert result.exit_code == 2
    assert "no function no-such-policy-planner" in result.stderr
    assert "Traceback" not in result.output and result.stdout == ""
    assert run("history", "--policy", "no-such-policy").exit_code == 2


def test_a_policy_of_another_module_exits_2(configure: Callable[..., Any], infra: Infra) -> None:
    configure()
    policy = deploy("ami_backup")

    result = run("plan", "ebs-snapshot", "--policy", policy)

    # ebs-snapshot's planner is <policy>-planner too: the handler says whose it is.
    assert result.exit_code == 2
    assert "is a ami-backup policy, not ebs-snapshot" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["plan", "no-such-module", "--policy", "p"],
        ["plan", "ami-backup"],
        ["history"],
        ["history", "--policy", "p", "--state", "lost"],
        ["plan", "ami-backup", "--policy", "p", "--slot", "yesterday"],
        ["no-such-command"],
    ],
)
def test_usage_errors_exit_2(args: list[str], aws: None) -> None:
    assert run(*args).exit_code == 2


def test_no_region_exits_2_but_help_still_works(monkeypatch: pytest.MonkeyPatch, aws: None) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")

    result = CliRunner().invoke(cli, ["history", "--policy", "p"])

    assert result.exit_code == 2 and "no AWS region" in result.stderr
    assert CliRunner().invoke(cli, ["plan", "--help"]).exit_code == 0


def test_access_denied_is_could_not_look(
    configure: Callable[..., Any], infra: Infra, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure()
    policy = deploy("ami_backup")
    from botocore.exceptions import ClientError

    def denied(*_: Any, **__: Any) -> Any:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetFunctionConfiguration")

    monkeypatch.setattr("botocore.client.BaseClient._make_api_call", denied)

    result = run("plan", "ami-backup", "--policy", policy)

    assert result.exit_code == 2 and "AccessDeniedException" in result.stderr


# ---------------------------------------------------------------------------------------------------------------
# Logs and progress stay off stdout
# ---------------------------------------------------------------------------------------------------------------


def test_the_functions_logs_go_to_stderr_and_the_logger_is_put_back(
    configure: Callable[..., Any], infra: Infra
) -> None:
    run_instances(infra.ec2, 1, {"Backup": "nightly"})
    configure()
    policy = deploy("ami_backup")
    handler = observability.logger.registered_handler
    stream_before, level_before = getattr(handler, "stream", None), observability.logger.log_level

    result = run("--json", "--verbose", "plan", "ami-backup", "--policy", policy)

    assert result.exit_code == 0
    assert document(result)["plan"]  # stdout parsed as one document: no log line in it
    logged = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert "dry run: nothing enqueued" in [line["message"] for line in logged]
    assert getattr(handler, "stream", None) is stream_before and observability.logger.log_level == level_before
    quiet = run("--json", "plan", "ami-backup", "--policy", policy)
    assert quiet.stderr == ""


# ---------------------------------------------------------------------------------------------------------------
# history
# ---------------------------------------------------------------------------------------------------------------


def _ledger(infra: Infra) -> DynamoLedger:
    return DynamoLedger(infra.dynamodb, LEDGER_TABLE)


def _key(resource: str, service: str = "ami-backup", region: str = REGION) -> LedgerKey:
    return LedgerKey(service, POLICY, LOCAL_ACCOUNT, region, resource)


def _seed_history(infra: Infra) -> dict[str, str]:
    ledger = _ledger(infra)
    entries = {
        "ami-kept": ("i-aaaa", "2024-05-01T01:00:00Z", "available", None),
        "ami-retired": ("i-aaaa", "2024-04-30T01:00:00Z", "deleted", "superseded"),
        "ami-broken": ("i-bbbb", "2024-05-01T01:00:00Z", "failed", "CreateImage failed: no space"),
    }
    for resource, (source, slot, state, reason) in entries.items():
        ledger.transition(_key(resource), state, START, 90, source_id=source, slot=slot, reason=reason)
    ledger.transition(_key("request#i-aaaa#2024-05-01T01:00:00Z"), "pending", START, 90, source_id="i-aaaa")
    # Another policy's, and another module's entries in the same table are not this policy's history.
    ledger.transition(LedgerKey("ami-backup", "other", LOCAL_ACCOUNT, REGION, "ami-x"), "available", START, 90)
    ledger.transition(_key("snap-1", service="ebs-snapshot"), "available", START, 90)
    return {resource: state for resource, (_, _, state, _) in entries.items()}


def test_history_lists_the_policys_ledger_entries_and_hides_claims(configure: Callable[..., Any], infra: Infra) -> None:
    configure()
    policy = deploy("ami_backup")
    states = _seed_history(infra)

    table = run("history", "--policy", policy)
    as_json = run("--json", "history", "--policy", policy)

    assert table.exit_code == 1 and as_json.exit_code == 1  # one failed backup is a finding
    for resource in states:
        assert resource in table.stdout
    assert "request#" not in table.stdout and "ami-x" not in table.stdout and "snap-1" not in table.stdout
    assert "CreateImage failed: no space" in table.stdout
    entries = document(as_json)["entries"]
    assert {entry["resource"]: entry["state"] for entry in entries} == states
    assert {entry["account"] for entry in entries} == {LOCAL_ACCOUNT}
    assert all(entry["age_seconds"] > 0 for entry in entries)
    everything = document(run("--json", "history", "--policy", policy, "--all"))["entries"]
    assert {entry["resource"] for entry in everything} == {*states, "request#i-aaaa#2024-05-01T01:00:00Z"}


def test_history_filters_by_source_and_state(configure: Callable[..., Any], infra: Infra) -> None:
    configure()
    policy = deploy("ami_backup")
    _seed_history(infra)

    by_source = run("--json", "history", "--policy", policy, "--source", "i-aaaa")
    available = run("--json", "history", "--policy", policy, "--state", "available", "--state", "deleted")

    assert by_source.exit_code == 0 and available.exit_code == 0  # the failed entry is filtered out
    assert {e["resource"] for e in document(by_source)["entries"]} == {"ami-kept", "ami-retired"}
    assert {e["resource"] for e in document(available)["entries"]} == {"ami-kept", "ami-retired"}


def test_history_reads_every_target_of_the_scope(configure: Callable[..., Any], infra: Infra) -> None:
    configure(OPS_TARGET_REGIONS=json.dumps([REGION, "eu-west-1"]))
    policy = deploy("ami_backup")
    _ledger(infra).transition(_key("ami-here"), "available", START, 90, source_id="i-1")
    _ledger(infra).transition(_key("ami-there", region="eu-west-1"), "available", START, 90, source_id="i-2")

    result = run("--json", "history", "--policy", policy)

    assert {(e["resource"], e["region"]) for e in document(result)["entries"]} == {
        ("ami-here", REGION),
        ("ami-there", "eu-west-1"),
    }


def test_history_of_a_copy_policy_reads_where_the_copies_are_recorded(
    configure_copy: Callable[..., Any], infra: Infra
) -> None:
    """snapshot-copy records a copy under its destination (region, account), not under the source targets."""
    configure_copy()
    policy = deploy("snapshot_copy")
    copy_key = LedgerKey("snapshot-copy", policy, LOCAL_ACCOUNT, OTHER_REGION, "snap-copy")
    _ledger(infra).transition(copy_key, "failed", START, 90, source_id="snap-source", reason="CopySnapshot failed")

    result = run("--json", "history", "--policy", policy)

    assert result.exit_code == 1, result.output  # the failed copy is a finding
    assert {(e["resource"], e["region"]) for e in document(result)["entries"]} == {("snap-copy", OTHER_REGION)}


# ---------------------------------------------------------------------------------------------------------------
# invoke
# ---------------------------------------------------------------------------------------------------------------


def test_invoke_runs_the_deployed_handler_in_its_environment(
    configure: Callable[..., Any], infra: Infra, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    instances = run_instances(infra.ec2, 2, {"Backup": "nightly"})
    configure()
    policy = deploy("ami_backup")
    # The process environment says another policy: the function's own variables must win.
    monkeypatch.setenv("OPS_POLICY_NAME", "not-this-one")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"scheduled_time": "2024-05-01T01:00:00Z"}))

    refused = run("invoke", f"{policy}-planner", "--event", str(event))
    assert refused.exit_code == 2 and "--yes" in refused.stderr
    assert take_messages() == []

    result = run("--json", "invoke", f"{policy}-planner", "--event", str(event), "--yes")

    assert result.exit_code == 0, result.output
    assert document(result)["result"]["enqueued"] == 2
    assert sorted(m["instance_id"] for m in take_messages()) == sorted(instances)
    assert os.environ["OPS_POLICY_NAME"] == "not-this-one"


def test_invoke_exits_1_when_the_handler_raises(configure: Callable[..., Any], infra: Infra, tmp_path: Path) -> None:
    configure()
    policy = deploy("ami_backup")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"not": "a schedule"}))

    result = run("--json", "invoke", f"{policy}-planner", "--event", str(event), "--yes")

    assert result.exit_code == 1
    assert "MalformedEventError" in document(result)["error"]
    assert run("invoke", "no-such-function", "--event", str(event), "--yes").exit_code == 2


def test_invoke_against_the_local_emulator_needs_no_confirmation(
    configure: Callable[..., Any], infra: Infra, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure()
    policy = deploy("ami_backup")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"scheduled_time": "2024-05-01T01:00:00Z"}))
    for endpoint, local in (("http://127.0.0.1:5000", True), ("https://ec2.us-east-1.amazonaws.com", False)):
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        assert invoke.is_local_endpoint() is local
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setattr(invoke, "is_local_endpoint", lambda: True)

    result = run("--json", "invoke", f"{policy}-planner", "--event", str(event))

    assert result.exit_code == 1  # nothing is tagged: the planner raised, as Lambda would report it
    assert "no instance matched" in document(result)["error"]


def test_endpoint_url_holds_for_the_command_only(aws: None) -> None:
    seen: list[str | None] = []
    probe = click.Command("probe", callback=lambda: seen.append(os.environ.get("AWS_ENDPOINT_URL")))
    cli.add_command(probe)
    try:
        assert run("--endpoint-url", "http://127.0.0.1:9", "probe").exit_code == 0
    finally:
        cli.commands.pop("probe")
    assert seen == ["http://127.0.0.1:9"] and "AWS_ENDPOINT_URL" not in os.environ


def test_plan_sends_the_deployments_external_id_when_it_assumes_a_spoke_role(
    configure: Callable[..., Any], infra: Infra, monkeypatch: pytest.MonkeyPatch
) -> None:
    spoke_role = "arn:aws:iam::111111111111:role/ops-automation-ami-backup"
    configure(OPS_TARGET_ROLE_ARNS=json.dumps([spoke_role]), OPS_TARGET_ROLE_EXTERNAL_ID="hub-4711")
    policy = deploy("ami_backup")
    assumed: list[dict[str, Any]] = []
    make_client = boto3.session.Session.client

    def client(self: boto3.session.Session, service: str, *args: Any, **kwargs: Any) -> Any:
        made = make_client(self, service, *args, **kwargs)
        if service == "sts":
            made.meta.events.register(
                "provide-client-params.sts.AssumeRole", lambda params, **_: assumed.append(params)
            )
        return made

    monkeypatch.setattr(boto3.session.Session, "client", client)

    result = run("--json", "plan", "ami-backup", "--policy", policy)

    assert [(call["RoleArn"], call.get("ExternalId")) for call in assumed] == [(spoke_role, "hub-4711")]
    assert assumed[0]["RoleSessionName"].startswith("ops-automation-")
    assert result.exit_code == 1  # nothing is tagged in the spoke account


def test_invoke_runs_the_handler_with_the_operators_session_not_the_default_chain(
    aws: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`--profile` chose the account the operator confirmed: the handler's own boto3 sessions must act there too,
    whatever the environment's default credentials or profile say (Lambda hands credentials over the same way)."""
    credentials = tmp_path / "credentials"
    credentials.write_text("[someone-else]\naws_access_key_id = AKIASOMEONEELSE\naws_secret_access_key = x\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_PROFILE", "someone-else")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIADEFAULTCHAIN")
    operator_session = boto3.session.Session(
        aws_access_key_id="AKIAOPERATOR", aws_secret_access_key="secret", aws_session_token="token", region_name=REGION
    )
    op = Operator(
        factory=ClientFactory("ops-automation-cli", session=operator_session),
        region=REGION,
        json=True,
        console=Console(),
        err=Console(stderr=True),
        session=operator_session,
    )

    with invoke.function_environment(op, {"OPS_POLICY_NAME": "nightly"}):
        seen = boto3.session.Session().get_credentials().get_frozen_credentials()
        assert (seen.access_key, seen.token) == ("AKIAOPERATOR", "token")
        assert "AWS_PROFILE" not in os.environ
        assert os.environ["OPS_POLICY_NAME"] == "nightly"

    assert os.environ["AWS_PROFILE"] == "someone-else"
    assert os.environ["AWS_ACCESS_KEY_ID"] == "AKIADEFAULTCHAIN"


def test_the_console_script_exits_2_not_1_when_something_unexpected_stops_the_look(
    configure: Callable[..., Any], infra: Infra, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 1 means "looked and found something": an error no command expected must not look like a finding."""
    configure()
    policy = deploy("ami_backup")

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("cron field L is not supported")

    monkeypatch.setattr(history_module, "entries", broken)
    for argv, expected in (
        (["history", "--policy", policy], 2),
        (["history"], 2),  # usage: --policy missing
        (["--help"], 0),
    ):
        monkeypatch.setattr(sys, "argv", ["ops-automation", "--region", REGION, *argv])
        with pytest.raises(SystemExit) as exited:
            main()
        assert exited.value.code == expected, argv
    assert "could not finish: RuntimeError: cron field L" in capsys.readouterr().err


def test_plan_of_an_ou_targeted_policy_resolves_its_accounts_through_organizations(
    configure: Callable[..., Any], infra: Infra
) -> None:
    organizations = boto3.client("organizations", region_name=REGION)
    organizations.create_organization(FeatureSet="ALL")
    root = organizations.list_roots()["Roots"][0]["Id"]
    unit = organizations.create_organizational_unit(ParentId=root, Name="workloads")["OrganizationalUnit"]["Id"]
    account = organizations.create_account(AccountName="spoke", Email="spoke@example.com")["CreateAccountStatus"][
        "AccountId"
    ]
    organizations.move_account(AccountId=account, SourceParentId=root, DestinationParentId=unit)
    role = f"arn:aws:iam::{account}:role/ops-automation-ami-backup"
    spoke_ec2 = assumed_client(role, "ec2")
    [instance] = run_instances(spoke_ec2, 1, {"Backup": "nightly"})
    configure(
        OPS_TARGET_ORGANIZATIONAL_UNITS=json.dumps([{"id": unit, "recursive": True}]),
        OPS_TARGET_ROLE_NAME="ops-automation-ami-backup",
    )
    policy = deploy("ami_backup")

    result = run("--json", "plan", "ami-backup", "--policy", policy)

    assert result.exit_code == 0, result.output
    [row] = document(result)["plan"]
    assert (row["region"], row["instance_id"], row["role_arn"]) == (REGION, instance, role)
    # An account the workers could not reach is in the ledger once per slot (region "-"): history shows it.
    ledger = DynamoLedger(infra.dynamodb, LEDGER_TABLE)
    reason = "AccessDenied: access denied (the role is missing)"
    ledger.transition(LedgerKey("ami-backup", policy, account, "-", "scope#x"), "failed", START, 90, reason=reason)

    history = run("--json", "history", "--policy", policy)

    assert history.exit_code == 1
    assert [(e["account"], e["state"], e["reason"]) for e in document(history)["entries"]] == [
        (account, "failed", reason)
    ]
