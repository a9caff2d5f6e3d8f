"""ssm-runcommand on moto made faithful (E40-E52: targets, whole-call InvalidInstanceId, per-invocation timeline,
ListCommandInvocations, DescribeInstanceInformation, MaxErrors, output to S3, the SSM events): one command per slot
and chunk, an outcome per instance, one alert per instance that did not succeed."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlparse

import boto3
import pytest
from aws_harness import (
    ACCOUNT,
    EVENTS_DIR,
    OTHER_REGION,
    REGION,
    RUN_OUTPUT_BUCKET,
    Captured,
    Clock,
    FakeContext,
    Infra,
    alerts_sent,
    emitted_metrics,
    run_instances,
    sqs_event,
    take_messages,
    work_body,
)
from botocore.exceptions import ClientError, ReadTimeoutError
from tests.support.moto_fidelity import MotoFidelity

from conftest import hook_every_request
from ops_automation.core.claims import IN_FLIGHT, claim_key
from ops_automation.core.clients import ClientFactory
from ops_automation.core.completion import ledger_key
from ops_automation.core.errors import PartialFailure
from ops_automation.core.events import format_time
from ops_automation.core.scope import Target
from ops_automation.ssm_runcommand import handlers

ConfigureRunCommand = Callable[..., Any]
NIGHTLY = {"Backup": "nightly-db"}
FAILED = "run command failed on instance"
NOT_SENT = "run command not sent"
HERE = Target(REGION, None)


class Runner:
    """Plays the schedule, the work queue and EventBridge; keeps the messages a test has not taken yet."""

    def __init__(self, infra: Infra, clock: Clock, fidelity: MotoFidelity) -> None:
        self.ec2 = infra.ec2
        self.ssm = boto3.client("ssm", region_name=REGION)
        self.clock = clock
        self.fidelity = fidelity
        self.queued: list[dict[str, Any]] = []

    @property
    def slot(self) -> str:
        return format_time(self.clock.now)

    def plan(self) -> dict[str, Any]:
        return dict(handlers.plan_handler({"scheduled_time": format_time(self.clock.now)}, FakeContext()))

    def work(self, bodies: list[str]) -> dict[str, Any]:
        assert bodies, "nothing to deliver"
        return dict(handlers.work_handler(sqs_event(bodies), FakeContext()))

    def take(self, kind: str) -> list[dict[str, Any]]:
        """The queued messages of `kind` (delayed or not: the test decides when "later" is); the others stay."""
        self.queued.extend(take_messages())
        taken = [m for m in self.queued if m["kind"] == kind]
        self.queued = [m for m in self.queued if m["kind"] != kind]
        return taken

    def run(self, kind: str) -> dict[str, Any]:
        return self.work([work_body(m) for m in self.take(kind)])

    def failures(self, result: dict[str, Any]) -> int:
        return len(result["batchItemFailures"])

    def run_item(self, slot: str, instance_id: str) -> Any:
        rt = handlers.worker_runtime()
        return rt.ledger.get(ledger_key(rt, HERE, handlers.run_id(slot, instance_id)))

    def command_entry(self, command_id: str) -> Any:
        rt = handlers.worker_runtime()
        return rt.ledger.get(ledger_key(rt, HERE, handlers.command_item(command_id)))

    def claim_entry(self, chunk: str, slot: str) -> Any:
        rt = handlers.worker_runtime()
        return rt.ledger.get(claim_key(rt, HERE, chunk, slot))

    def commands(self) -> list[dict[str, Any]]:
        """Every command SSM holds (read with the test's own client: not counted in `api_calls`)."""
        return list(self.ssm.list_commands()["Commands"])

    def invocations(self, command_id: str) -> dict[str, dict[str, Any]]:
        pages = self.ssm.get_paginator("list_command_invocations").paginate(CommandId=command_id, Details=True)
        return {i["InstanceId"]: i for page in pages for i in page["CommandInvocations"]}

    def emitted(self, detail_type: str | None = None) -> list[str]:
        """The SSM events of E52 not handed out yet, as the rule forwards them to the work queue."""
        events = self.fidelity.ssm_drain_events()
        return [json.dumps(e) for e in events if detail_type is None or e["detail-type"] == detail_type]


def client_error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} (injected)"}}, operation)


def sample_event(kind: str, command_id: str, status: str, instance_id: str = "", region: str = REGION) -> str:
    """One of the published samples in ../shared/events, re-pointed at a command (and instance). The invocation
    sample's `resources` names another instance than its `detail.instance-id`, as AWS's own example does: kept."""
    outcome = "success" if status == "Success" else "failed"
    event = json.loads((EVENTS_DIR / f"ssm-{kind}-status-{outcome}.json").read_text())
    event.update(id=str(uuid.uuid4()), account=ACCOUNT, region=region)
    event["detail"].update({"command-id": command_id, "status": status, "document-name": "AWS-RunShellScript"})
    if instance_id:
        event["detail"]["instance-id"] = instance_id
    return json.dumps(event)


def failure_alerts() -> list[dict[str, Any]]:
    return [a for a in alerts_sent() if a["alert"] == FAILED]


def by_instance(alerts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found = {a["instance_id"]: a for a in alerts}
    assert len(found) == len(alerts), f"more than one alert for an instance: {alerts}"
    return found


def respond(operation: str, answer: Callable[[], Any]) -> Callable[..., Any]:
    """A request hook: `answer()` returns None (the request goes to moto), a parsed response (the request is answered
    with it), or raises."""

    def hook(model: Any, **_: Any) -> Any:
        if model.name != operation:
            return None
        parsed = answer()
        return None if parsed is None else (SimpleNamespace(status_code=200, headers={}), parsed)

    return hook


def lose_the_answer_once(monkeypatch: pytest.MonkeyPatch, operation: str, error: Exception) -> list[int]:
    """The request reaches AWS and is done, but its answer is lost (a timeout, a 5xx on the way back), once."""
    lost = [0]
    original = ClientFactory.client

    def after(model: Any, **_: Any) -> None:
        if model.name == operation and not lost[0]:
            lost[0] += 1
            raise error

    def client(self: ClientFactory, *args: Any, **kwargs: Any) -> Any:
        made = original(self, *args, **kwargs)
        made.meta.events.unregister("after-call.*.*", after)
        made.meta.events.register("after-call.*.*", after)
        return made

    monkeypatch.setattr(ClientFactory, "client", client)
    return lost


@pytest.fixture
def runner(infra: Infra, clock: Clock, fidelity: MotoFidelity) -> Runner:
    return Runner(infra, clock, fidelity)


# ---------------------------------------------------------------------------------------------------------------
# Outcomes per instance
# ---------------------------------------------------------------------------------------------------------------


def test_a_failing_command_alerts_once_with_its_instance_status_exit_code_and_output(
    configure_runcommand: ConfigureRunCommand, runner: Runner, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_runcommand()
    good_one, good_two, bad = run_instances(runner.ec2, 3, NIGHTLY)
    (bystander,) = run_instances(runner.ec2, 1, {"Backup": "weekly"})
    runner.fidelity.ssm_outcome(bad, "Failed", exit_code=3, stdout="pg_basebackup: disk full")
    slot = runner.slot
    assert runner.plan()["enqueued"] == 1
    assert runner.run("send") == {"batchItemFailures": []}
    (command,) = runner.commands()
    assert set(runner.invocations(command["CommandId"])) == {good_one, good_two, bad}
    runner.clock.advance(minutes=5)
    (check,) = runner.take("check")
    assert runner.work([work_body(check)]) == {"batchItemFailures": []}
    (alert,) = failure_alerts()
    assert (alert["instance_id"], alert["status"], alert["exit_code"]) == (bad, "Failed", 3)
    assert alert["command_id"] == command["CommandId"] and alert["slot"] == slot and alert["region"] == REGION
    assert "exit code 3" in alert["reason"]
    # Where the output is: the bucket, the command and the instance (E50: the URL SSM reports).
    assert all(part in alert["output"] for part in (RUN_OUTPUT_BUCKET, command["CommandId"], bad))
    assert [runner.run_item(slot, i).state for i in (good_one, good_two, bad)] == ["available", "available", "failed"]
    assert runner.run_item(slot, bystander) is None
    # All final: settled, no other check; a late copy of it says nothing more.
    assert runner.take("check") == []
    runner.clock.advance(minutes=41)
    runner.work([work_body(check)])
    assert len(alerts_sent()) == 1
    metrics = emitted_metrics(capsys.readouterr().out)
    assert (metrics["CommandsSent"], metrics["InvocationsSucceeded"], metrics["InvocationsFailed"]) == (1, 2, 1)


def test_an_instance_not_managed_by_ssm_is_named_once(
    configure_runcommand: ConfigureRunCommand, runner: Runner, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_runcommand()
    managed_one, unmanaged, managed_two = run_instances(runner.ec2, 3, NIGHTLY)
    runner.fidelity.unmanage(unmanaged)
    slot = runner.slot
    runner.plan()
    (item,) = runner.take("send")
    assert runner.work([work_body(item)]) == {"batchItemFailures": []}
    runner.work([work_body(item)])  # a redelivery
    (command,) = runner.commands()
    assert set(runner.invocations(command["CommandId"])) == {managed_one, managed_two}  # SSM skips it
    runner.clock.advance(minutes=5)
    (check,) = runner.take("check")
    runner.work([work_body(check)])
    (alert,) = failure_alerts()
    assert (alert["instance_id"], alert["status"]) == (unmanaged, "NotManaged")
    assert alert["exit_code"] is None
    assert runner.run_item(slot, unmanaged).state == "failed"
    runner.clock.advance(minutes=60)
    runner.work([work_body(check), *[work_body(c) for c in runner.take("check")]])
    assert len(alerts_sent()) == 1
    assert {runner.run_item(slot, i).state for i in (managed_one, managed_two)} == {"available"}
    metrics = emitted_metrics(capsys.readouterr().out)
    assert (metrics["InvocationsSucceeded"], metrics["InvocationsFailed"]) == (2, 1)


def test_a_listed_id_not_managed_by_ssm_never_refuses_the_command_of_the_others(
    configure_runcommand: ConfigureRunCommand, runner: Runner, api_calls: Counter[str]
) -> None:
    """E41: one id that is no managed node refuses a whole id-targeted SendCommand with InvalidInstanceId."""
    ids = sorted(run_instances(runner.ec2, 3))
    configure_runcommand(OPS_TARGET_TAGS="{}", OPS_INSTANCE_IDS=json.dumps(ids))
    runner.fidelity.unmanage(ids[1])
    slot = runner.slot
    runner.plan()
    assert runner.run("send") == {"batchItemFailures": []}
    assert api_calls["ssm.SendCommand"] == 1
    (command,) = runner.commands()
    assert command["InstanceIds"] == [ids[0], ids[2]]
    (alert,) = failure_alerts()
    assert (alert["instance_id"], alert["status"]) == (ids[1], "NotManaged")
    runner.clock.advance(minutes=5)
    runner.run("check")
    assert len(alerts_sent()) == 1 and runner.run_item(slot, ids[2]).state == "available"


def test_an_id_that_stops_being_managed_between_the_listing_and_the_send_is_split_out(
    configure_runcommand: ConfigureRunCommand, runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = sorted(run_instances(runner.ec2, 4))
    configure_runcommand(OPS_TARGET_TAGS="{}", OPS_INSTANCE_IDS=json.dumps(ids))
    real = handlers.managed_nodes

    def listed_then_unregistered(ssm: Any, instance_ids: Any) -> dict[str, str]:
        found = real(ssm, instance_ids)
        runner.fidelity.unmanage(ids[1])
        return found

    monkeypatch.setattr(handlers, "managed_nodes", listed_then_unregistered)
    slot = runner.slot
    runner.plan()
    assert runner.run("send") == {"batchItemFailures": []}
    sent = sorted(i for c in runner.commands() for i in c["InstanceIds"])
    assert sent == [ids[0], ids[2], ids[3]]
    (alert,) = failure_alerts()
    assert (alert["instance_id"], alert["status"]) == (ids[1], "NotManaged")
    runner.clock.advance(minutes=5)
    runner.run("check")
    assert len(alerts_sent()) == 1
    assert {runner.run_item(slot, i).state for i in (ids[0], ids[2], ids[3])} == {"available"}


def test_a_tagged_instance_ssm_never_ran_on_is_named_at_the_deadline(
    configure_runcommand: ConfigureRunCommand, runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Listed as managed, deregistered before SSM resolved the tags: no invocation at all, named once."""
    configure_runcommand()
    kept, lost = run_instances(runner.ec2, 2, NIGHTLY)
    real = handlers.managed_nodes

    def listed_then_unregistered(ssm: Any, instance_ids: Any) -> dict[str, str]:
        found = real(ssm, instance_ids)
        runner.fidelity.unmanage(lost)
        return found

    monkeypatch.setattr(handlers, "managed_nodes", listed_then_unregistered)
    slot = runner.slot
    runner.plan()
    runner.run("send")
    runner.clock.advance(minutes=5)
    (check,) = runner.take("check")
    runner.work([work_body(check)])
    runner.clock.advance(minutes=60)
    runner.work([work_body(check), *[work_body(c) for c in runner.take("check")]])
    (alert,) = failure_alerts()
    assert (alert["instance_id"], alert["status"]) == (lost, "NoInvocation")
    assert runner.run_item(slot, kept).state == "available"


def test_an_execution_timeout_is_named_execution_timed_out(
    configure_runcommand: ConfigureRunCommand, runner: Runner
) -> None:
    configure_runcommand()  # executionTimeout 1800 s, delivery 600 s, deadline 60 minutes
    fine, stuck = run_instances(runner.ec2, 2, NIGHTLY)
    runner.fidelity.ssm_outcome(stuck, "ExecutionTimedOut")
    slot = runner.slot
    runner.plan()
    runner.run("send")
    runner.clock.advance(minutes=5)
    runner.run("check")
    assert alerts_sent() == [] and runner.run_item(slot, stuck).state == "pending"
    (again,) = runner.take("check")  # still running: looked at again at the deadline
    runner.clock.advance(minutes=26)  # 31 minutes: the 30-minute execution timeout has passed
    runner.work([work_body(again)])
    (alert,) = failure_alerts()
    assert (alert["instance_id"], alert["status"]) == (stuck, "ExecutionTimedOut")
    # It ran until stopped: its output is named as SSM gives it, whatever exit code the timeout carries.
    invocation = runner.invocations(alert["command_id"])[stuck]
    assert alert["output"] == invocation["StandardOutputUrl"] != ""
    assert runner.run_item(slot, fine).state == "available"


def test_an_execution_timeout_given_as_document_parameter_moves_the_deadline_to_the_commands_expiry(
    configure_runcommand: ConfigureRunCommand, runner: Runner
) -> None:
    """The command's own timeouts (600 s + 7200 s) outlast the deadline (80 minutes): a run of 100 minutes is healthy
    and must not be called timed out. SSM says when the command expires (ExpiresAfter). The settings refuse such a
    deadline when they can tell (here: the executionTimeout parameter); a document whose steps declare their own
    longer timeouts they cannot read, which the deadline shortened after the settings check stands for."""
    parameters = json.dumps({"commands": ["/usr/local/bin/db-online-backup"], "executionTimeout": ["7200"]})
    rt = configure_runcommand(
        OPS_DOCUMENT_PARAMETERS=parameters, OPS_EXECUTION_TIMEOUT_SECONDS="", OPS_COMPLETION_TIMEOUT_MINUTES="140"
    )
    rt.config = replace(rt.config, completion=replace(rt.config.completion, timeout_minutes=80))
    (slow,) = run_instances(runner.ec2, 1, NIGHTLY)
    runner.fidelity.ssm_outcome(slow, "Success", after=timedelta(minutes=100))
    sent_at = runner.clock.now
    slot = runner.slot
    runner.plan()
    runner.run("send")
    (check,) = runner.take("check")
    assert check["deadline"] >= format_time(sent_at + timedelta(seconds=600 + 7200))
    runner.clock.advance(minutes=81)
    runner.work([work_body(check)])
    assert alerts_sent() == [] and runner.run_item(slot, slow).state == "pending"
    runner.clock.advance(minutes=20)
    runner.work([work_body(check)])
    assert alerts_sent() == [] and runner.run_item(slot, slow).state == "available"


def test_a_stopped_tagged_instance_is_named_not_running_once(
    configure_runcommand: ConfigureRunCommand, runner: Runner
) -> None:
    configure_runcommand()
    running, stopped = run_instances(runner.ec2, 2, NIGHTLY)
    runner.ec2.stop_instances(InstanceIds=[stopped])
    slot = runner.slot
    runner.plan()
    (item,) = runner.take("send")
    runner.work([work_body(item)])
    runner.work([work_body(item)])
    runner.clock.advance(minutes=5)
    runner.run("check")
    runner.clock.advance(minutes=60)  # SSM's invocation of the stopped node (Delayed) timed out meanwhile
    runner.work(runner.emitted())
    runner.run("check")
    (alert,) = failure_alerts()
    assert alert["instance_id"] == stopped and "NotRunning" in alert["status"] + alert["reason"]
    assert "stopped" in alert["reason"]
    assert runner.run_item(slot, running).state == "available"


def test_an_offline_agent_is_delivery_timed_out_at_the_total_timeout_not_before(
    configure_runcommand: ConfigureRunCommand, runner: Runner
) -> None:
    configure_runcommand()
    online, offline = run_instances(runner.ec2, 2, NIGHTLY)
    runner.fidelity.lose_agent(offline)
    slot = runner.slot
    runner.plan()
    runner.run("send")  # sent to it too: the agent may come back before the delivery timeout
    (command,) = runner.commands()
    assert offline in runner.invocations(command["CommandId"])
    runner.clock.advance(minutes=39)
    runner.run("check")
    assert alerts_sent() == [] and runner.run_item(slot, offline).state == "pending"
    runner.clock.advance(minutes=22)  # 61: past ExpiresAfter (40) and the deadline (60)
    runner.run("check")
    (alert,) = failure_alerts()
    assert (alert["instance_id"], alert["status"]) == (offline, "DeliveryTimedOut")
    # Nothing ran (exit code -1): no output to point to, whatever URL SSM names.
    assert (alert["exit_code"], alert["output"]) == (-1, "none: the command did not run here")
    assert runner.run_item(slot, online).state == "available"


def test_max_errors_0_terminates_the_rest_and_names_them_not_run(
    configure_runcommand: ConfigureRunCommand, runner: Runner
) -> None:
    """E45: with MaxErrors 0 the first failure makes SSM cancel every invocation not yet sent (Terminated)."""
    configure_runcommand(OPS_MAX_ERRORS="0", OPS_MAX_CONCURRENCY="1")
    first, *rest = run_instances(runner.ec2, 4, NIGHTLY)
    runner.fidelity.ssm_outcome(first, "Failed", exit_code=1)
    runner.plan()
    runner.run("send")
    runner.clock.advance(minutes=5)
    runner.run("check")
    alerts = by_instance(failure_alerts())
    assert alerts[first]["status"] == "Failed"
    assert {alerts[i]["status"] for i in rest} == {"Terminated"}
    assert all("not run" in alerts[i]["reason"] for i in rest)
    assert len(alerts) == 4


# ---------------------------------------------------------------------------------------------------------------
# Once per slot, whatever the fleet size
# ---------------------------------------------------------------------------------------------------------------


def test_a_repeated_schedule_delivery_sends_one_command(
    configure_runcommand: ConfigureRunCommand, runner: Runner, api_calls: Counter[str]
) -> None:
    configure_runcommand()
    run_instances(runner.ec2, 2, NIGHTLY)
    runner.plan()
    runner.plan()
    first, second = runner.take("send")
    assert runner.work([work_body(first), work_body(second)]) == {"batchItemFailures": []}
    runner.clock.advance(minutes=20)
    assert runner.work([work_body(second)]) == {"batchItemFailures": []}  # a late copy
    assert api_calls["ssm.SendCommand"] == 1 and len(runner.commands()) == 1
    assert len(runner.take("check")) == 1


def test_more_than_50_tagged_instances_take_one_send_command(
    configure_runcommand: ConfigureRunCommand,
    runner: Runner,
    api_calls: Counter[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_runcommand()
    instances = run_instances(runner.ec2, 120, NIGHTLY)
    slot = runner.slot
    assert runner.plan()["enqueued"] == 1
    assert runner.run("send") == {"batchItemFailures": []}
    assert api_calls["ssm.SendCommand"] == 1
    (command,) = runner.commands()
    assert command["Targets"] == [{"Key": "tag:Backup", "Values": ["nightly-db"]}]
    assert len(runner.invocations(command["CommandId"])) == 120
    assert api_calls["ssm.DescribeInstanceInformation"] == 3  # 50 a page
    runner.clock.advance(minutes=5)
    runner.run("check")
    assert api_calls["ssm.ListCommandInvocations"] == 3
    assert alerts_sent() == []
    assert {runner.run_item(slot, i).state for i in instances} == {"available"}
    metrics = emitted_metrics(capsys.readouterr().out)
    assert (metrics["CommandsSent"], metrics["InvocationsSucceeded"]) == (1, 120)


def test_more_than_50_listed_ids_are_sent_in_commands_of_at_most_50(
    configure_runcommand: ConfigureRunCommand, runner: Runner, api_calls: Counter[str]
) -> None:
    ids = run_instances(runner.ec2, 120)
    configure_runcommand(OPS_TARGET_TAGS="{}", OPS_INSTANCE_IDS=json.dumps(ids))
    slot = runner.slot
    assert runner.plan()["enqueued"] == 3
    assert runner.run("send") == {"batchItemFailures": []}
    assert api_calls["ssm.SendCommand"] == 3
    sizes = sorted(len(c["InstanceIds"]) for c in runner.commands())
    assert sizes == [20, 50, 50]
    assert sorted(i for c in runner.commands() for i in c["InstanceIds"]) == sorted(ids)
    runner.clock.advance(minutes=5)
    runner.run("check")
    assert alerts_sent() == [] and {runner.run_item(slot, i).state for i in ids} == {"available"}


def test_no_instance_carrying_the_tags_is_said_once(configure_runcommand: ConfigureRunCommand, runner: Runner) -> None:
    configure_runcommand()
    run_instances(runner.ec2, 1, {"Backup": "nightly-dv"})  # a typo on the fleet's side
    runner.plan()
    (item,) = runner.take("send")
    runner.work([work_body(item)])
    runner.work([work_body(item)])
    (alert,) = alerts_sent()
    assert alert["alert"] == NOT_SENT and "no instance carries every target tag" in alert["reason"]
    assert runner.commands() == []


# ---------------------------------------------------------------------------------------------------------------
# Events and the check
# ---------------------------------------------------------------------------------------------------------------


def test_the_invocation_events_complete_instances_before_the_check(
    configure_runcommand: ConfigureRunCommand, runner: Runner, api_calls: Counter[str]
) -> None:
    configure_runcommand()
    runner.fidelity.ssm_run_time = timedelta(minutes=10)
    good, bad = run_instances(runner.ec2, 2, NIGHTLY)
    runner.fidelity.ssm_outcome(bad, "Failed", exit_code=2, after=timedelta(minutes=10))
    slot = runner.slot
    runner.plan()
    runner.run("send")
    runner.clock.advance(minutes=11)
    events = runner.emitted(handlers.INVOCATION_EVENT)
    assert len(events) == 2  # E52: one per invocation reaching Success / Failed
    assert runner.work(events) == {"batchItemFailures": []}
    (alert,) = failure_alerts()
    assert (alert["instance_id"], alert["status"], alert["exit_code"]) == (bad, "Failed", 2)
    assert (runner.run_item(slot, good).state, runner.run_item(slot, bad).state) == ("available", "failed")
    # The check finds both done and asks SSM nothing about them more than once per page.
    runner.clock.advance(minutes=50)
    before = api_calls["ssm.ListCommandInvocations"]
    runner.run("check")
    assert api_calls["ssm.ListCommandInvocations"] == before + 1
    assert len(alerts_sent()) == 1
    (command,) = runner.commands()
    assert runner.command_entry(command["CommandId"]).state == "available"


def test_the_published_event_samples_are_triggers_read_by_their_instance_id(
    configure_runcommand: ConfigureRunCommand, runner: Runner
) -> None:
    configure_runcommand()
    good, bad = run_instances(runner.ec2, 2, NIGHTLY)
    runner.fidelity.ssm_outcome(bad, "Failed", exit_code=4)
    slot = runner.slot
    runner.plan()
    runner.run("send")
    (command,) = runner.commands()
    command_id = command["CommandId"]
    # The failed sample names the bad instance; the status it carries is not trusted, SSM is re-read.
    result = runner.work([sample_event("command-invocation", command_id, "Failed", bad)])
    assert result == {"batchItemFailures": []}
    (alert,) = failure_alerts()
    assert (alert["instance_id"], alert["exit_code"]) == (bad, 4)
    assert runner.run_item(slot, good).state == "pending"  # only the instance named was read
    runner.work([sample_event("command-invocation", command_id, "Success", good)])
    assert runner.run_item(slot, good).state == "available" and len(alerts_sent()) == 1


def test_the_command_event_settles_every_final_instance(
    configure_runcommand: ConfigureRunCommand, runner: Runner
) -> None:
    configure_runcommand()
    good, bad = run_instances(runner.ec2, 2, NIGHTLY)
    runner.fidelity.ssm_outcome(bad, "Failed", exit_code=5)
    slot = runner.slot
    runner.plan()
    runner.run("send")
    runner.clock.advance(minutes=1)
    events = runner.emitted(handlers.COMMAND_EVENT)
    assert [json.loads(e)["detail"]["status"] for e in events] == ["Failed"]
    runner.work(events)
    (alert,) = failure_alerts()
    assert alert["instance_id"] == bad
    assert runner.run_item(slot, good).state == "available"
    runner.clock.advance(minutes=61)
    runner.run("check")
    assert len(alerts_sent()) == 1


def test_a_duplicate_event_alerts_once(configure_runcommand: ConfigureRunCommand, runner: Runner) -> None:
    configure_runcommand()
    (bad,) = run_instances(runner.ec2, 1, NIGHTLY)
    runner.fidelity.ssm_outcome(bad, "Failed", exit_code=1)
    runner.plan()
    runner.run("send")
    (command,) = runner.commands()
    invocation = sample_event("command-invocation", command["CommandId"], "Failed", bad)
    command_event = sample_event("command", command["CommandId"], "Failed")
    runner.work([invocation, invocation])
    runner.work([invocation, command_event, command_event])
    assert len(alerts_sent()) == 1


def test_an_event_of_a_command_not_in_the_ledger_is_ignored_without_ssm_calls(
    configure_runcommand: ConfigureRunCommand, runner: Runner, api_calls: Counter[str]
) -> None:
    """Another tool's command (or another policy's) of the same document: the rule forwards it; nothing is read."""
    configure_runcommand()
    (instance_id,) = run_instances(runner.ec2, 1, NIGHTLY)
    theirs = runner.ssm.send_command(
        DocumentName="AWS-RunShellScript", InstanceIds=[instance_id], Parameters={"commands": ["false"]}
    )["Command"]["CommandId"]
    events = [
        sample_event("command-invocation", theirs, "Failed", instance_id),
        sample_event("command", theirs, "Failed"),
        sample_event("command", str(uuid.uuid4()), "Success", region=OTHER_REGION),
    ]
    assert runner.work(events) == {"batchItemFailures": []}
    assert alerts_sent() == []
    assert not [call for call in api_calls if call.startswith("ssm.")]


def test_a_check_before_the_deadline_with_everything_final_settles_the_command(
    configure_runcommand: ConfigureRunCommand, runner: Runner
) -> None:
    configure_runcommand()
    instances = run_instances(runner.ec2, 3, NIGHTLY)
    slot = runner.slot
    runner.plan()
    runner.run("send")
    (check,) = runner.take("check")
    assert check["deadline"] == format_time(runner.clock.now + handlers.worker_runtime().config.deadline)
    runner.clock.advance(minutes=5)
    runner.work([work_body(check)])
    (command,) = runner.commands()
    assert runner.command_entry(command["CommandId"]).state == "available"
    assert runner.take("check") == []  # nothing left to look at
    assert {runner.run_item(slot, i).state for i in instances} == {"available"}


@pytest.mark.parametrize("how", ["empty", "InvalidCommandId"])
def test_invocations_not_visible_right_after_the_send_are_not_failures(
    configure_runcommand: ConfigureRunCommand, runner: Runner, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """Right after SendCommand the list may be empty, or the id unknown to the read (eventual consistency): neither is
    a failure; the item is settled later (handed back to the queue is fine)."""
    configure_runcommand()
    runner.fidelity.ssm_run_time = timedelta(minutes=10)
    instances = run_instances(runner.ec2, 2, NIGHTLY)
    visible = [False]

    def not_yet() -> Any:
        if visible[0]:
            return None
        if how == "empty":
            return {"CommandInvocations": []}
        raise client_error(how, "ListCommandInvocations")

    hook_every_request(monkeypatch, respond("ListCommandInvocations", not_yet))
    slot = runner.slot
    runner.plan()
    runner.run("send")
    runner.clock.advance(minutes=1)
    (check,) = runner.take("check")
    runner.work([work_body(check)])
    assert alerts_sent() == [] and {runner.run_item(slot, i).state for i in instances} == {"pending"}
    visible[0] = True
    runner.clock.advance(minutes=61)
    runner.work([work_body(check), *[work_body(c) for c in runner.take("check")]])
    assert alerts_sent() == [] and {runner.run_item(slot, i).state for i in instances} == {"available"}


# ---------------------------------------------------------------------------------------------------------------
# Failures of the send
# ---------------------------------------------------------------------------------------------------------------


def test_a_delivery_that_died_after_send_command_adopts_the_command(
    configure_runcommand: ConfigureRunCommand, runner: Runner, monkeypatch: pytest.MonkeyPatch, api_calls: Counter[str]
) -> None:
    """The invocation died between SendCommand and recording it (simulated: the record fails once). SendCommand takes
    no client token: the redelivery finds the command by its Comment instead of sending again."""
    configure_runcommand()
    instances = run_instances(runner.ec2, 2, NIGHTLY)
    real = handlers.track
    died = [False]

    def dies_once(*args: Any, **kwargs: Any) -> None:
        if not died[0]:
            died[0] = True
            raise RuntimeError("Task timed out after 300.00 seconds")
        real(*args, **kwargs)

    monkeypatch.setattr(handlers, "track", dies_once)
    slot = runner.slot
    runner.plan()
    (item,) = runner.take("send")
    assert runner.failures(runner.work([work_body(item)])) == 1
    runner.clock.advance(minutes=1)
    assert runner.failures(runner.work([work_body(item)])) == 1  # in flight: wait
    runner.clock.advance(minutes=IN_FLIGHT.total_seconds() / 60)
    assert runner.work([work_body(item)]) == {"batchItemFailures": []}
    assert api_calls["ssm.SendCommand"] == 1
    (command,) = runner.commands()
    assert runner.claim_entry("tags", slot).refs == (command["CommandId"],)
    assert runner.command_entry(command["CommandId"]).state == "pending"
    runner.clock.advance(minutes=61)
    runner.run("check")
    assert alerts_sent() == [] and {runner.run_item(slot, i).state for i in instances} == {"available"}


def test_a_delivery_that_died_before_send_command_sends_once_the_claim_is_stale(
    configure_runcommand: ConfigureRunCommand, runner: Runner, monkeypatch: pytest.MonkeyPatch, api_calls: Counter[str]
) -> None:
    configure_runcommand()
    run_instances(runner.ec2, 2, NIGHTLY)
    real = handlers.send_commands
    died = [False]

    def dies_once(*args: Any, **kwargs: Any) -> Any:
        if not died[0]:
            died[0] = True
            raise RuntimeError("Task timed out after 300.00 seconds")
        return real(*args, **kwargs)

    monkeypatch.setattr(handlers, "send_commands", dies_once)
    runner.plan()
    (item,) = runner.take("send")
    runner.work([work_body(item)])
    runner.clock.advance(minutes=IN_FLIGHT.total_seconds() / 60 + 1)
    assert runner.work([work_body(item)]) == {"batchItemFailures": []}
    runner.work([work_body(item)])
    assert api_calls["ssm.SendCommand"] == 1 and len(runner.commands()) == 1


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"OPS_DOCUMENT_NAME": "Db-Online-Backup"}, "InvalidDocument"),  # no such document in the account
        ({"OPS_DOCUMENT_PARAMETERS": json.dumps({"command": ["backup"]})}, "InvalidParameters"),  # a typo
        ({"OPS_DOCUMENT_VERSION": "7"}, "InvalidDocumentVersion"),
    ],
)
def test_a_configuration_error_alerts_once_is_not_retried_and_marks_the_instances_not_sent(
    configure_runcommand: ConfigureRunCommand,
    runner: Runner,
    api_calls: Counter[str],
    capsys: pytest.CaptureFixture[str],
    overrides: dict[str, str],
    code: str,
) -> None:
    configure_runcommand(**overrides)
    instances = run_instances(runner.ec2, 2, NIGHTLY)
    slot = runner.slot
    runner.plan()
    (item,) = runner.take("send")
    assert runner.work([work_body(item)]) == {"batchItemFailures": []}  # not handed back: a retry cannot cure it
    runner.work([work_body(item)])
    assert api_calls["ssm.SendCommand"] == 1 and runner.commands() == []
    (alert,) = alerts_sent()
    assert alert["alert"] == NOT_SENT and code in alert["reason"]
    for instance_id in instances:
        entry = runner.run_item(slot, instance_id)
        assert entry.state == "failed" and entry.reason == f"NotSent: {code}"
    assert runner.take("check") == []
    metrics = emitted_metrics(capsys.readouterr().out)
    assert (metrics["CommandsNotSent"], metrics["CommandsSent"], metrics["InvocationsFailed"]) == (1, 0, 2)


def test_a_configuration_error_of_an_id_targeted_command_marks_its_instances_not_sent(
    configure_runcommand: ConfigureRunCommand, runner: Runner, api_calls: Counter[str]
) -> None:
    ids = sorted(run_instances(runner.ec2, 2))
    configure_runcommand(OPS_TARGET_TAGS="{}", OPS_INSTANCE_IDS=json.dumps(ids), OPS_DOCUMENT_NAME="Db-Online-Backup")
    slot = runner.slot
    runner.plan()
    (item,) = runner.take("send")
    assert runner.work([work_body(item)]) == {"batchItemFailures": []}
    runner.work([work_body(item)])
    assert api_calls["ssm.SendCommand"] == 1
    (alert,) = alerts_sent()
    assert alert["alert"] == NOT_SENT and "InvalidDocument" in alert["reason"]
    assert [runner.run_item(slot, i).reason for i in ids] == ["NotSent: InvalidDocument"] * 2


@pytest.mark.parametrize(
    ("targeting", "error"),
    [
        ("tags", client_error("InternalServerError", "SendCommand")),
        ("ids", client_error("InternalServerError", "SendCommand")),
        ("ids", ReadTimeoutError(endpoint_url="https://ssm.us-east-1.amazonaws.com/")),
    ],
    ids=["tags-5xx", "ids-5xx", "ids-read-timeout"],
)
def test_a_send_command_whose_answer_was_lost_is_adopted_not_sent_again(
    configure_runcommand: ConfigureRunCommand,
    runner: Runner,
    monkeypatch: pytest.MonkeyPatch,
    api_calls: Counter[str],
    logs: Captured,
    targeting: str,
    error: Exception,
) -> None:
    """SendCommand made the command but its answer never came (a 5xx or a timeout after the request went out): the
    outcome is unknown, the claim stays; once stale, the command is found by its Comment, not sent a second time."""
    instances = sorted(run_instances(runner.ec2, 3, NIGHTLY))
    if targeting == "ids":
        configure_runcommand(OPS_TARGET_TAGS="{}", OPS_INSTANCE_IDS=json.dumps(instances))
    else:
        configure_runcommand()
    lost = lose_the_answer_once(monkeypatch, "SendCommand", error)
    slot = runner.slot
    runner.plan()
    (item,) = runner.take("send")
    assert runner.failures(runner.work([work_body(item)])) == 1
    # Handed back for what happened, the unknown outcome (BUG reported: a BotoCoreError broke in error_code()).
    assert [r["why"] for r in logs.matching("INFO", "record deferred")] == [type(error).__name__]
    assert lost == [1] and len(runner.commands()) == 1
    chunk = "tags" if targeting == "tags" else "ids-0"
    assert runner.claim_entry(chunk, slot).state == "pending"  # not released: it may have been sent
    runner.clock.advance(minutes=1)
    assert runner.failures(runner.work([work_body(item)])) == 1  # in flight: wait
    runner.clock.advance(minutes=IN_FLIGHT.total_seconds() / 60)
    assert runner.work([work_body(item)]) == {"batchItemFailures": []}
    assert api_calls["ssm.SendCommand"] == 1 and len(runner.commands()) == 1
    runner.clock.advance(minutes=61)
    runner.run("check")
    assert alerts_sent() == [] and {runner.run_item(slot, i).state for i in instances} == {"available"}


def test_a_throttled_send_command_releases_the_claim_and_is_retried(
    configure_runcommand: ConfigureRunCommand, runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_runcommand()
    instances = run_instances(runner.ec2, 2, NIGHTLY)
    throttled = [0]

    def throttle_once() -> None:
        if not throttled[0]:
            throttled[0] += 1
            raise client_error("ThrottlingException", "SendCommand")

    hook_every_request(monkeypatch, respond("SendCommand", throttle_once))
    slot = runner.slot
    runner.plan()
    (item,) = runner.take("send")
    assert runner.failures(runner.work([work_body(item)])) == 1
    assert runner.claim_entry("tags", slot).state == "failed"  # released: nothing was sent
    assert runner.commands() == [] and alerts_sent() == []
    runner.clock.advance(minutes=1)
    assert runner.work([work_body(item)]) == {"batchItemFailures": []}
    assert len(runner.commands()) == 1
    runner.clock.advance(minutes=5)
    runner.run("check")
    assert alerts_sent() == [] and {runner.run_item(slot, i).state for i in instances} == {"available"}


# ---------------------------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------------------------


def test_output_to_s3_the_alert_points_at_the_object_ssm_wrote(
    configure_runcommand: ConfigureRunCommand, runner: Runner
) -> None:
    """E50: the agent (the instance's role) writes the output under the prefix; the alert gives SSM's URL of it."""
    configure_runcommand()
    (bad,) = run_instances(runner.ec2, 1, NIGHTLY)
    runner.fidelity.ssm_outcome(bad, "Failed", exit_code=2, stdout="backup failed: /var/lib/db is full")
    runner.plan()
    runner.run("send")
    runner.clock.advance(minutes=5)
    runner.run("check")
    (alert,) = failure_alerts()
    (command,) = runner.commands()
    url = runner.invocations(command["CommandId"])[bad]["StandardOutputUrl"]
    assert url and alert["output"] == url
    bucket, key = urlparse(url).path.lstrip("/").split("/", 1)
    assert bucket == RUN_OUTPUT_BUCKET and key.startswith(f"run-command/{command['CommandId']}/{bad}/")
    body = boto3.client("s3", region_name=REGION).get_object(Bucket=bucket, Key=key)["Body"].read()
    assert body == b"backup failed: /var/lib/db is full"


def test_a_send_item_the_queue_refuses_is_alerted_and_the_plan_retried(
    configure_runcommand: ConfigureRunCommand, runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQS refuses the planner's entry (a sender fault is never retried by the batch sender): the slot must not go
    quiet. The planner alerts and raises, so Scheduler's retry plans again."""
    configure_runcommand()
    run_instances(runner.ec2, 1, NIGHTLY)

    def refuse_every_entry() -> dict[str, Any]:
        return {"Successful": [], "Failed": [{"Id": "0", "SenderFault": True, "Code": "InvalidParameterValue"}]}

    hook_every_request(monkeypatch, respond("SendMessageBatch", refuse_every_entry))
    with pytest.raises(PartialFailure):
        runner.plan()
    (alert,) = alerts_sent()
    assert alert["alert"] == "run command not planned for some targets"
    assert alert["failures"] == [f"{REGION} tags: not enqueued"]
    assert runner.take("send") == []


def test_a_listed_id_terminated_or_unknown_is_named_not_found_once_and_a_terminated_tagged_one_is_not_expected(
    configure_runcommand: ConfigureRunCommand, runner: Runner
) -> None:
    """A listed id that is terminated, or names no instance at all, fails NotFound once per slot (a typo must not go
    quiet); a tag-targeted instance being terminated (still listed while shutting down) left the fleet: nothing is
    expected of it."""
    kept, gone = run_instances(runner.ec2, 2)
    tagged_gone, tagged = run_instances(runner.ec2, 2, NIGHTLY)
    unknown = "i-0123456789abcdef0"
    runner.ec2.terminate_instances(InstanceIds=[gone])
    runner.fidelity.set_instance_state(REGION, tagged_gone, "shutting-down")
    configure_runcommand(OPS_INSTANCE_IDS=json.dumps([kept, gone, unknown]))
    slot = runner.slot
    runner.plan()
    items = runner.take("send")
    runner.work([work_body(i) for i in items])
    runner.work([work_body(i) for i in items])  # a redelivery of both
    runner.clock.advance(minutes=5)
    runner.run("check")
    alerts = by_instance(failure_alerts())
    assert set(alerts) == {gone, unknown}
    assert {alerts[gone]["status"], alerts[unknown]["status"]} == {"NotFound"}
    assert tagged_gone not in {i for c in runner.commands() for i in c.get("InstanceIds", [])}
    assert runner.run_item(slot, tagged_gone) is None
    assert {runner.run_item(slot, i).state for i in (kept, tagged)} == {"available"}
