"""Tier 3: `terraform apply` examples/ssm-runcommand (with `force_destroy_output_bucket = true`) against a local AWS,
run three simulated nights of its scheduled online backup through the deployed schedule input, planner, work queue,
worker and event rule with the real handlers, check what SSM, the ledger, the bucket and the alert topic show, then
`terraform destroy`.

Everything runs once (session-scoped fixture, one local AWS and the applies shared with the other examples' tier 3,
tests/e2e/conftest.py); each test checks one property of the outcome. The story is in
tests/e2e/ssm_runcommand_scenario.py.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from tests.e2e import scenario
from tests.e2e import ssm_runcommand_scenario as ssm

# Only the variant is applied (the example with its bucket emptied by destroy): no module-level EXAMPLE here.
VARIANTS = ssm.VARIANTS
DEPLOYED = ssm.FORCE_DESTROY.path
TAG_TARGETS = [{"Key": "tag:Backup", "Values": ["online-db"]}]
RAN = ("Success", "Failed", "ExecutionTimedOut")  # StatusDetails of an invocation that ran (and wrote output)


@dataclass(frozen=True)
class Outcome:
    run: scenario.TerraformRun
    report: ssm.NightsReport
    state: ssm.FinalState
    worker_policy: dict[str, Any]
    queue_arn: str
    seconds: float


@pytest.fixture(scope="session")
def outcome(applied: scenario.AppliedExamples) -> Outcome:
    """Session-scoped: the destroy check runs at the end of the session (tests/e2e/conftest.py)."""
    run = applied.run(DEPLOYED)
    started = time.monotonic()
    aws = applied.aws_for(DEPLOYED)
    deployed = ssm.deployment_from_terraform(aws, run.outputs, DEPLOYED)
    # The planner has no business policy (it only enqueues): the worker's, as attached in IAM.
    worker_policy = aws.client("iam").get_role_policy(RoleName=deployed.deployment.worker_role, PolicyName="business")[
        "PolicyDocument"
    ]
    queue_arn = aws.client("sqs").get_queue_attributes(
        QueueUrl=deployed.deployment.work_queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    report = ssm.run_nights(aws, deployed)
    state = ssm.final_state(aws, deployed)
    applied.start_destroy(DEPLOYED)
    return Outcome(run, report, state, worker_policy, queue_arn, time.monotonic() - started)


def _alerts(night: ssm.NightRun, name: str, report: ssm.NightsReport) -> list[dict[str, Any]]:
    instance_id = report.fleet.id_of(name)
    return [alert for alert in night.alerts if alert.get("instance_id") == instance_id]


def _object(outcome: Outcome, night: ssm.NightRun, url: str) -> str:
    """The body of the output object an SSM URL names, as found in the example's bucket after the night."""
    return night.objects[ssm.s3_key(outcome.report.deployed, url)]


def _listed(statement: dict[str, Any], key: str) -> list[str]:
    value = statement[key]
    return list(value) if isinstance(value, list) else [value]


def _ledger_time(item: dict[str, Any]) -> datetime:
    return datetime.strptime(str(item["updated_at"]), "%Y-%m-%dT%H:%M:%S%z")


def test_deployed_policy_is_what_terraform_reports(outcome: Outcome) -> None:
    deployed = outcome.report.deployed
    deployment = deployed.deployment
    assert (deployment.schedule_expression, deployment.schedule_timezone) == ("cron(30 2 * * ? *)", "Asia/Tokyo")
    terraform = deployed.outputs["function_environments"]
    assert deployment.worker_environment == terraform["worker"]
    assert deployment.planner_environment == terraform["planner"]
    assert (
        deployment.worker_environment["OPS_OUTPUT_S3_BUCKET"]
        == deployed.bucket
        == deployed.outputs["output_bucket_name"]
    )
    # The deployed rule: both Run Command detail-types, of the deployed document only, to the work queue (a status
    # filter may drop non-final statuses; which final ones pass is what the events of the nights show).
    pattern = dict(deployed.rule_pattern)
    detail = dict(pattern.pop("detail"))
    assert pattern == {"source": ["aws.ssm"], "detail-type": [ssm.COMMAND_EVENT, ssm.INVOCATION_EVENT]}
    assert detail.pop("document-name") == ["AWS-RunShellScript"]
    assert set(detail) <= {"status"}
    assert deployed.rule_targets == (outcome.queue_arn,)


def test_the_worker_may_send_the_document_only_to_tagged_instances_and_the_bucket(outcome: Outcome) -> None:
    """The worker's business policy as attached to its role in IAM: SendCommand on the AWS-owned document, on
    instances only with the target tag (SSM's resource tag condition), and on the output bucket."""
    sends = [
        statement
        for statement in outcome.worker_policy["Statement"]
        if "ssm:SendCommand" in _listed(statement, "Action")
    ]
    resources = {
        resource: statement.get("Condition", {}) for statement in sends for resource in _listed(statement, "Resource")
    }
    assert "arn:aws:ssm:ap-northeast-1::document/AWS-RunShellScript" in resources
    assert resources[f"arn:aws:s3:::{outcome.report.deployed.bucket}"] == {}
    (instances,) = [resource for resource in resources if ":instance/" in resource]
    assert resources[instances] == {"StringEquals": {"ssm:resourceTag/Backup": "online-db"}}
    assert all(statement["Effect"] == "Allow" for statement in sends)


def test_published_samples_reach_the_worker_only_for_the_deployed_document(outcome: Outcome) -> None:
    # Rewritten to the deployed document (and the night's command, db-1): forwarded. As published (their
    # document-name is AWS-RunPowerShellScript): dropped by the rule's document-name filter.
    assert outcome.report.sample_routing == {
        "reached": sorted(f"{name} rewritten" for name in ssm.SAMPLES),
        "filtered": sorted(f"{name} as published" for name in ssm.SAMPLES),
    }


def test_events_are_triggers_the_worker_re_reads_ssm(outcome: Outcome) -> None:
    """The rewritten samples say db-1's invocation and the command Failed while SSM runs them: the worker re-read SSM
    and left db-1 pending; it succeeded later, and no alert ever named it."""
    effect = outcome.report.sample_effect
    assert effect["alerts"] == []
    assert effect["db-1"]["state"] == "pending"
    first = outcome.report.night(1)
    assert first.invocation("db-1").details == "Success"
    assert first.runs["db-1"]["state"] == "available"
    assert all(not _alerts(night, "db-1", outcome.report) for night in outcome.report.nights)


def test_every_night_sends_one_command_by_tag(outcome: Outcome) -> None:
    deployed = outcome.report.deployed
    for night in outcome.report.nights:
        (params,) = night.send_commands
        assert params["Targets"] == TAG_TARGETS and "InstanceIds" not in params, night.number
        assert params["DocumentName"] == "AWS-RunShellScript"
        assert (params["OutputS3BucketName"], params["OutputS3KeyPrefix"]) == (deployed.bucket, deployed.prefix)
        assert (params["TimeoutSeconds"], params["Parameters"]["executionTimeout"]) == (600, ["3600"])
        # SSM has exactly one command of the document for the night, the one sent, and the ledger records it.
        (command,) = night.commands
        assert command["Comment"] == params["Comment"]
        assert set(night.command_items) == {command["CommandId"]}
        assert night.command_items[command["CommandId"]]["state"] == "available"
        bastion = outcome.report.fleet.id_of("bastion")
        assert "bastion" not in night.runs and all("bastion" not in found for found in night.invocations.values())
        assert all(alert.get("instance_id") != bastion for alert in night.alerts)


def test_night_one_records_each_instance_s_final_status(outcome: Outcome) -> None:
    first = outcome.report.night(1)
    (found,) = first.invocations.values()
    assert {name: (invocation.details, invocation.exit_code) for name, invocation in found.items()} == {
        "db-1": ("Success", 0),
        "db-2": ("Success", 0),
        "db-fail": ("Failed", ssm.FAILED_EXIT_CODE),
        "db-slow": ("ExecutionTimedOut", -1),
        "db-lost": ("DeliveryTimedOut", -1),
    }
    states = {name: item["state"] for name, item in first.runs.items()}
    assert states == {
        "db-1": "available",
        "db-2": "available",
        "db-fail": "failed",
        "db-slow": "failed",
        "db-noagent": "failed",
        "db-lost": "failed",
    }
    (command,) = first.commands
    assert (command["TargetCount"], command["Status"]) == (5, "Failed")


def test_an_instance_not_managed_by_ssm_is_named_once_per_night(outcome: Outcome) -> None:
    report = outcome.report
    for number in (1, 2):
        night = report.night(number)
        # SSM resolved the tag without it: no invocation, nothing in the bucket; the ledger and one alert name it.
        assert all("db-noagent" not in found for found in night.invocations.values())
        noagent = report.fleet.id_of("db-noagent")
        assert not [key for key in night.objects if f"/{noagent}/" in key]
        assert night.runs["db-noagent"]["state"] == "failed"
        assert str(night.runs["db-noagent"]["reason"]).startswith("NotManaged")
        (alert,) = _alerts(night, "db-noagent", report)
        assert alert["alert"] == ssm.FAILED_ALERT
        assert (alert["status"], alert["exit_code"], alert["slot"]) == ("NotManaged", None, night.slot)
    # Managed again on night 3: it ran like the rest.
    assert report.night(3).invocation("db-noagent").details == "Success"


def test_a_failing_command_alerts_with_its_exit_code_and_output(outcome: Outcome) -> None:
    report = outcome.report
    first = report.night(1)
    (command,) = first.commands
    invocation = first.invocation("db-fail")
    (alert,) = _alerts(first, "db-fail", report)
    assert alert["alert"] == ssm.FAILED_ALERT
    assert (alert["status"], alert["exit_code"], alert["command_id"]) == (
        "Failed",
        ssm.FAILED_EXIT_CODE,
        command["CommandId"],
    )
    assert f"exit code {ssm.FAILED_EXIT_CODE}" in alert["reason"]
    # Where the output is: the URL SSM reported, and the object is there in the example's bucket.
    assert alert["output"] == invocation.output_url
    assert _object(outcome, first, alert["output"]) == ssm.FAILED_STDOUT
    stderr = [body for key, body in first.objects.items() if report.fleet.id_of("db-fail") in key and "stderr" in key]
    assert stderr == [ssm.FAILED_STDERR]


def test_an_execution_timeout_is_reported_with_its_output(outcome: Outcome) -> None:
    first = outcome.report.night(1)
    (alert,) = _alerts(first, "db-slow", outcome.report)
    assert (alert["status"], alert["exit_code"]) == ("ExecutionTimedOut", -1)
    assert alert["output"] == first.invocation("db-slow").output_url
    assert _object(outcome, first, alert["output"]).startswith("pg_basebackup: waiting")


def test_a_lost_agent_times_out_undelivered(outcome: Outcome) -> None:
    report = outcome.report
    first = report.night(1)
    (alert,) = _alerts(first, "db-lost", report)
    assert (alert["status"], alert["exit_code"]) == ("DeliveryTimedOut", -1)
    # Nothing ran there: nothing in the bucket. Its agent back on night 2, it ran.
    assert not [key for key in first.objects if f"/{report.fleet.id_of('db-lost')}/" in key]
    assert report.night(2).invocation("db-lost").details == "Success"


def test_a_duplicate_schedule_delivery_sends_one_command(outcome: Outcome) -> None:
    second = outcome.report.night(ssm.DUPLICATE_NIGHT)
    assert [summary["enqueued"] for summary in second.summaries] == [1, 1]
    assert second.messages["send"] == 2  # both deliveries' send items reached the worker
    assert len(second.send_commands) == 1 and len(second.commands) == 1
    assert len(_alerts(second, "db-noagent", outcome.report)) == 1
    assert {name for name, item in second.runs.items() if item["state"] == "available"} == {
        "db-1",
        "db-2",
        "db-fail",
        "db-slow",
        "db-lost",
    }


def test_lost_events_are_settled_by_the_delayed_check(outcome: Outcome) -> None:
    report = outcome.report
    second = report.night(ssm.LOST_EVENTS_NIGHT)
    db_2 = report.fleet.id_of("db-2")
    assert "invocation event Success of db-2" in second.lost
    assert "command event Success of the command" in second.lost
    # No event naming db-2, and no command event, reached the worker that night ...
    assert not [body for body in second.bodies if body["detail"].get("instance-id") == db_2]
    assert not [body for body in second.bodies if body["detail-type"] == ssm.COMMAND_EVENT]
    assert second.messages["invocation event Success"] == 4
    # ... yet its run completed, when the worker handled a check, and without an alert.
    item = second.runs["db-2"]
    assert item["state"] == "available" and second.invocation("db-2").details == "Success"
    settled = _ledger_time(item)
    checks = [moment for moment, kind in second.handled if kind == "check"]
    assert any(abs((settled - moment).total_seconds()) <= 2 for moment in checks), (settled, checks)
    assert not _alerts(second, "db-2", report)


def test_more_than_fifty_targets_take_one_command(outcome: Outcome) -> None:
    third = outcome.report.night(ssm.FLEET_NIGHT)
    (params,) = third.send_commands
    assert params["Targets"] == TAG_TARGETS  # SSM resolves the tag: no 50-id limit, one call
    (command,) = third.commands
    assert (command["TargetCount"], command["CompletedCount"], command["Status"]) == (ssm.FLEET_SIZE,) * 2 + (
        "Success",
    )
    (found,) = third.invocations.values()
    assert len(found) == ssm.FLEET_SIZE and {i.details for i in found.values()} == {"Success"}
    assert len(third.runs) == ssm.FLEET_SIZE and {item["state"] for item in third.runs.values()} == {"available"}
    # DescribeInstanceInformation answers 50 a page: two pages for 60 instances, still one SendCommand.
    assert third.operations["DescribeInstanceInformation"] == 2
    assert third.alerts == []


def test_every_output_is_in_the_example_s_bucket_where_ssm_says(outcome: Outcome) -> None:
    report = outcome.report
    prefix = f"{report.deployed.prefix}/"
    for night in report.nights:
        ran = {
            name: invocation
            for found in night.invocations.values()
            for name, invocation in found.items()
            if invocation.details in RAN
        }
        for name, invocation in ran.items():
            expected = ssm.FAILED_STDOUT if invocation.details == "Failed" else None
            body = _object(outcome, night, invocation.output_url)
            if expected is not None:
                assert body == expected
            elif invocation.details == "Success":
                assert body == ssm.backup_stdout(name), (night.number, name)
        stdout = [key for key in night.objects if key.endswith("stdout")]
        assert len(stdout) == len(ran), night.number
    assert all(key.startswith(prefix) for key in outcome.state.bucket_keys)
    assert len(outcome.state.bucket_keys) == sum(len(night.objects) for night in report.nights)


def test_every_alert_is_one_the_scenario_caused_and_nothing_is_left(outcome: Outcome) -> None:
    report = outcome.report
    alerted = [
        Counter((report.fleet.names.get(str(alert.get("instance_id"))), alert.get("status")) for alert in night.alerts)
        for night in report.nights
    ]
    assert alerted == [
        Counter(
            {
                ("db-fail", "Failed"): 1,
                ("db-slow", "ExecutionTimedOut"): 1,
                ("db-lost", "DeliveryTimedOut"): 1,
                ("db-noagent", "NotManaged"): 1,
            }
        ),
        Counter({("db-noagent", "NotManaged"): 1}),
        Counter(),
    ]
    assert all(alert["alert"] == ssm.FAILED_ALERT for night in report.nights for alert in night.alerts)
    assert [night.number for night in report.nights if night.failed_records] == []
    assert (outcome.state.work_queue_messages, outcome.state.dlq_messages) == (0, 0)
    assert [item["sk"] for item in outcome.state.ledger if item["state"] == "pending"] == []
    assert ssm.problems(report, outcome.state) == []


def test_terraform_destroy_succeeds(outcome: Outcome, applied: scenario.AppliedExamples) -> None:
    applied.wait_destroyed(DEPLOYED)
    assert outcome.run.destroyed
    print(
        f"\ntier 3 ssm-runcommand: apply {outcome.run.apply_seconds:.0f}s; {len(outcome.report.nights)} nights "
        f"{outcome.seconds:.0f}s; destroy {outcome.run.destroy_seconds:.0f}s"
    )
