"""instance-scheduler for RDS DB instances and Aurora clusters (OPS_SCHEDULE_RDS): one call per resource and slot,
verified by the RDS event or the deadline check, read replicas and the like reported once, Aurora members left to
their cluster, and a resource RDS starts after seven days stopped stopped again once it is available.

moto answers Start/Stop at once; the statuses in between (starting, stopping, backing-up) are set on its backend."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import boto3
import pytest
from aws_harness import ACCOUNT, REGION, Clock, FakeContext, Infra, alerts_sent, sqs_event, take_messages, work_body
from botocore.exceptions import ClientError
from moto.rds.models import rds_backends
from tests.support.moto_fidelity import MotoFidelity

from ops_automation.core.completion import ledger_key
from ops_automation.core.events import format_time
from ops_automation.core.scope import Target
from ops_automation.instance_scheduler import handlers, rds

ConfigureScheduler = Callable[..., Any]
OFFICE = {"Schedule": "office-hours"}
EVENT_MESSAGES = {
    "RDS-EVENT-0087": "DB instance stopped",
    "RDS-EVENT-0088": "DB instance started",
    "RDS-EVENT-0154": "DB instance is being started due to it exceeding the maximum allowed time being stopped.",
    "RDS-EVENT-0150": "DB cluster stopped",
    "RDS-EVENT-0151": "DB cluster started",
    "RDS-EVENT-0153": "DB cluster is being started due to it exceeding the maximum allowed time being stopped.",
}


def rds_event(resource_id: str, event_id: str, at: str) -> str:
    """As the RDS User Guide's EventBridge example (rds-cloud-watch-events): the ARN names the resource."""
    kind, identifier = resource_id.split(":", 1)
    arn = f"arn:aws:rds:{REGION}:{ACCOUNT}:{kind}:{identifier}"
    return json.dumps(
        {
            "version": "0", "id": str(uuid.uuid4()),
            "detail-type": "RDS DB Instance Event" if kind == "db" else "RDS DB Cluster Event",
            "source": "aws.rds", "account": ACCOUNT, "time": at, "region": REGION, "resources": [arn],
            "detail": {
                "EventCategories": ["notification"], "SourceType": "DB_INSTANCE" if kind == "db" else "CLUSTER",
                "SourceArn": arn, "Date": at.replace("Z", ".123Z"), "Message": EVENT_MESSAGES[event_id],
                "SourceIdentifier": identifier, "EventID": event_id,
            },
        }
    )  # fmt: skip


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


class Scheduler:
    def __init__(self, clock: Clock) -> None:
        self.rds = boto3.client("rds", region_name=REGION)
        self.clock = clock

    def plan(self, action: str) -> dict[str, Any]:
        return dict(
            handlers.plan_handler({"scheduled_time": format_time(self.clock.now), "action": action}, FakeContext())
        )

    def work(self, bodies: list[str]) -> dict[str, Any]:
        return dict(handlers.work_handler(sqs_event(bodies), FakeContext()))

    def run(self, kind: str) -> dict[str, Any]:
        bodies = [work_body(m) for m in take_messages() if m["kind"] == kind]
        return self.work(bodies) if bodies else {"batchItemFailures": []}

    def drain(self) -> dict[str, Any]:
        """Every message now due or delayed, whatever its kind."""
        bodies = [work_body(m) for m in take_messages()]
        return self.work(bodies) if bodies else {"batchItemFailures": []}

    def event(self, resource_id: str, event_id: str) -> dict[str, Any]:
        return self.work([rds_event(resource_id, event_id, format_time(self.clock.now))])

    def instance(self, name: str, tags: dict[str, str], **extra: Any) -> str:
        self.rds.create_db_instance(
            DBInstanceIdentifier=name, Engine=extra.pop("Engine", "postgres"), DBInstanceClass="db.t3.micro",
            AllocatedStorage=20, MasterUsername="owner", MasterUserPassword="password1", Tags=tag_list(tags), **extra,
        )  # fmt: skip
        return f"db:{name}"

    def cluster(self, name: str, tags: dict[str, str], members: int = 1, **extra: Any) -> str:
        self.rds.create_db_cluster(
            DBClusterIdentifier=name, Engine="aurora-postgresql", MasterUsername="owner",
            MasterUserPassword="password1", Tags=tag_list(tags), **extra,
        )  # fmt: skip
        for index in range(members):
            self.instance(f"{name}-{index}", tags, Engine="aurora-postgresql", DBClusterIdentifier=name)
        return f"cluster:{name}"

    def status(self, resource_id: str) -> str:
        kind, identifier = resource_id.split(":", 1)
        if kind == "db":
            return str(
                self.rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]["DBInstanceStatus"]
            )
        return str(self.rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]["Status"])

    def set_status(self, resource_id: str, status: str) -> None:
        """What RDS shows between two moto answers (starting, stopping, backing-up...)."""
        kind, identifier = resource_id.split(":", 1)
        backend = rds_backends[ACCOUNT][REGION]
        (backend.databases if kind == "db" else backend.clusters)[identifier].status = status

    def ledger(self, resource_id: str) -> Any:
        rt = handlers.worker_runtime()
        return rt.ledger.get(ledger_key(rt, Target(REGION, None), resource_id))


@pytest.fixture
def scheduler(infra: Infra, clock: Clock, fidelity: MotoFidelity) -> Scheduler:
    return Scheduler(clock)


@pytest.fixture
def with_rds(configure_scheduler: ConfigureScheduler) -> None:
    configure_scheduler(OPS_SCHEDULE_RDS="true")


def not_cannot_schedule(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in alerts if "action" in a]


def acts() -> list[dict[str, Any]]:
    return [m for m in take_messages() if m["kind"] == "rds-act"]


def deliver_waiting(scheduler: Scheduler, minutes: int) -> list[dict[str, Any]]:
    """Deliver the act items sent back to wait, every 15 minutes (the back-off's cap) for `minutes`; the other
    messages queued meanwhile (checks), for the test to deliver."""
    others: list[dict[str, Any]] = []
    for _ in range(minutes // 15):
        scheduler.clock.advance(minutes=15)
        queued = take_messages()
        others += [m for m in queued if m["kind"] != "rds-act"]
        if due := [work_body(m) for m in queued if m["kind"] == "rds-act"]:
            scheduler.work(due)
    return others


@pytest.mark.usefixtures("with_rds")
def test_a_stop_slot_stops_instances_and_aurora_clusters_and_the_events_verify_them(
    scheduler: Scheduler, api_calls: Counter[str]
) -> None:
    instance = scheduler.instance("orders", OFFICE)
    cluster = scheduler.cluster("reports", OFFICE, members=2)
    summary = scheduler.plan("stop")
    assert sorted(summary["skipped"]) == [
        f"db:reports-{i}: member of Aurora cluster reports: scheduled through the cluster" for i in range(2)
    ]
    assert scheduler.run("rds-act") == {"batchItemFailures": []}
    assert (scheduler.status(instance), scheduler.status(cluster)) == ("stopped", "stopped")
    # The members are the cluster's business: StopDBInstance only for the instance of its own.
    assert (api_calls["rds.StopDBInstance"], api_calls["rds.StopDBCluster"]) == (1, 1)
    assert scheduler.status("db:reports-0") == "available"
    assert {scheduler.ledger(r).state for r in (instance, cluster)} == {"pending"}
    scheduler.clock.advance(minutes=5)
    scheduler.event(instance, "RDS-EVENT-0087")
    scheduler.event(cluster, "RDS-EVENT-0150")
    assert {(scheduler.ledger(r).state, scheduler.ledger(r).source_id) for r in (instance, cluster)} == {
        ("available", "stop")
    }
    assert alerts_sent() == []


@pytest.mark.usefixtures("with_rds")
def test_a_start_slot_starts_stopped_instances_and_clusters(scheduler: Scheduler, api_calls: Counter[str]) -> None:
    instance = scheduler.instance("orders", OFFICE)
    cluster = scheduler.cluster("reports", OFFICE)
    scheduler.rds.stop_db_instance(DBInstanceIdentifier="orders")
    scheduler.rds.stop_db_cluster(DBClusterIdentifier="reports")
    scheduler.plan("start")
    scheduler.run("rds-act")
    assert (scheduler.status(instance), scheduler.status(cluster)) == ("available", "available")
    assert (api_calls["rds.StartDBInstance"], api_calls["rds.StartDBCluster"]) == (1, 1)
    scheduler.clock.advance(minutes=21)
    scheduler.run("check")
    assert {scheduler.ledger(r).state for r in (instance, cluster)} == {"available"}
    assert alerts_sent() == []


@pytest.mark.usefixtures("with_rds")
def test_untagged_resources_are_never_touched(scheduler: Scheduler, api_calls: Counter[str]) -> None:
    other = scheduler.instance("billing", {"Schedule": "always-on"})
    other_cluster = scheduler.cluster("ledger", {})
    kept = scheduler.instance("orders", OFFICE)
    left = scheduler.instance("search", OFFICE)
    scheduler.plan("stop")
    scheduler.rds.remove_tags_from_resource(
        ResourceName=f"arn:aws:rds:{REGION}:{ACCOUNT}:db:search", TagKeys=["Schedule"]
    )
    scheduler.run("rds-act")
    assert [scheduler.status(r) for r in (other, other_cluster, kept, left)] == [
        "available", "available", "stopped", "available",
    ]  # fmt: skip
    # RDS's auto-start of a resource this policy never stopped is not its business either.
    scheduler.set_status(other, "starting")
    scheduler.event(other, "RDS-EVENT-0154")
    scheduler.set_status(other, "available")
    scheduler.run("rds-act")
    assert api_calls["rds.StopDBInstance"] == 1 and api_calls["rds.StopDBCluster"] == 0


@pytest.mark.usefixtures("with_rds")
def test_read_replicas_and_their_source_are_reported_once_and_not_called(
    scheduler: Scheduler, api_calls: Counter[str]
) -> None:
    source = scheduler.instance("orders", OFFICE)
    scheduler.rds.create_db_instance_read_replica(
        DBInstanceIdentifier="orders-replica", SourceDBInstanceIdentifier="orders", Tags=tag_list(OFFICE)
    )
    summary = scheduler.plan("stop")
    assert sorted(summary["reported"]) == [
        "db:orders-replica: a read replica: RDS cannot stop it",
        "db:orders: has read replicas: RDS cannot stop it",
    ]
    scheduler.run("rds-act")
    assert sorted(a["resource_id"] for a in alerts_sent()) == [source, "db:orders-replica"]
    assert api_calls["rds.StopDBInstance"] == 0
    scheduler.clock.advance(hours=24)
    scheduler.plan("stop")
    scheduler.run("rds-act")
    assert len(alerts_sent()) == 2
    assert scheduler.status(source) == "available"


@pytest.mark.usefixtures("with_rds")
def test_a_duplicate_delivery_calls_once(scheduler: Scheduler, api_calls: Counter[str]) -> None:
    """A redelivered item of a slot already done must not act again, even on a resource someone started since."""
    instance = scheduler.instance("orders", OFFICE)
    cluster = scheduler.cluster("reports", OFFICE)
    scheduler.plan("stop")
    (item,) = [m for m in take_messages() if m["kind"] == "rds-act"]
    scheduler.work([work_body(item)])
    scheduler.rds.start_db_instance(DBInstanceIdentifier="orders")  # its owner needs it back now
    scheduler.rds.start_db_cluster(DBClusterIdentifier="reports")
    scheduler.work([work_body(item)])
    assert (api_calls["rds.StopDBInstance"], api_calls["rds.StopDBCluster"]) == (1, 1)
    assert (scheduler.status(instance), scheduler.status(cluster)) == ("available", "available")


@pytest.mark.usefixtures("with_rds")
def test_a_resource_in_a_transitional_status_is_waited_for_then_acted_on(
    scheduler: Scheduler, api_calls: Counter[str]
) -> None:
    instance = scheduler.instance("orders", OFFICE)
    scheduler.plan("stop")
    scheduler.set_status(instance, "backing-up")
    scheduler.run("rds-act")
    assert api_calls["rds.StopDBInstance"] == 0
    (retry,) = [m for m in take_messages() if m["kind"] == "rds-act"]
    assert (retry["resource_ids"], retry["waits"]) == ([instance], 1)
    scheduler.set_status(instance, "available")
    scheduler.clock.advance(minutes=1)
    scheduler.work([work_body(retry)])
    assert scheduler.status(instance) == "stopped" and api_calls["rds.StopDBInstance"] == 1
    assert alerts_sent() == []


@pytest.mark.parametrize("code", [
    "InvalidDBInstanceState", "InvalidDBClusterStateFault",
    "InvalidDBShardGroupState",  # Aurora Limitless: "The DB shard group must be in the available state."
])  # fmt: skip
@pytest.mark.usefixtures("with_rds")
def test_a_status_change_between_read_and_call_waits(
    scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch, code: str
) -> None:
    cluster = scheduler.cluster("reports", OFFICE)
    scheduler.plan("stop")

    def refused(*_: Any) -> str:
        raise ClientError({"Error": {"Code": code, "Message": "not available"}}, "StopDBCluster")

    monkeypatch.setattr(rds, "_call", refused)
    scheduler.run("rds-act")
    assert [m["resource_ids"] for m in acts()] == [[cluster]]
    assert alerts_sent() == []


@pytest.mark.usefixtures("with_rds")
def test_a_stop_refused_until_the_deadline_alerts_with_aws_s_answer(
    scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A member in a state StopDBCluster refuses: the cluster itself reads `available`, so only AWS's answer says
    why."""
    cluster = scheduler.cluster("reports", OFFICE)
    scheduler.plan("stop")
    message = "DbCluster reports has a member instance reports-0 in storage-full state"

    def refused(*_: Any) -> str:
        raise ClientError({"Error": {"Code": "InvalidDBInstanceState", "Message": message}}, "StopDBCluster")

    monkeypatch.setattr(rds, "_call", refused)
    scheduler.run("rds-act")
    deliver_waiting(scheduler, 4 * 60)
    (alert,) = alerts_sent()
    assert (alert["resource_id"], alert["reason"]) == (
        cluster, f"not acted on by the deadline: refused InvalidDBInstanceState: {message}"
    )  # fmt: skip


@pytest.mark.usefixtures("with_rds")
def test_a_start_refused_for_its_kms_key_alerts_once_with_the_code(
    scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduler.instance("orders", OFFICE)
    scheduler.rds.stop_db_instance(DBInstanceIdentifier="orders")
    scheduler.plan("start")
    (item,) = [m for m in take_messages() if m["kind"] == "rds-act"]

    def refused(*_: Any) -> str:
        message = "An error occurred accessing an Amazon Web Services KMS key."
        raise ClientError({"Error": {"Code": "KMSKeyNotAccessibleFault", "Message": message}}, "StartDBInstance")

    monkeypatch.setattr(rds, "_call", refused)
    scheduler.work([work_body(item)])
    scheduler.work([work_body(item)])
    (alert,) = alerts_sent()
    assert alert["resource_id"] == "db:orders"
    assert alert["reason"] == (
        "refused: KMSKeyNotAccessibleFault: An error occurred accessing an Amazon Web Services KMS key."
    )
    assert [m for m in take_messages() if m["kind"] == "rds-act"] == []


@pytest.mark.usefixtures("with_rds")
def test_a_stop_not_done_by_the_deadline_alerts_once_with_the_status(scheduler: Scheduler) -> None:
    instance = scheduler.instance("orders", OFFICE)
    scheduler.plan("stop")
    scheduler.run("rds-act")
    scheduler.set_status(instance, "stopping")  # stuck
    scheduler.clock.advance(minutes=5)
    scheduler.event(instance, "RDS-EVENT-0087")  # a stale or early event decides nothing before the deadline
    assert alerts_sent() == []
    (check,) = [m for m in take_messages() if m["kind"] == "check"]
    # A Multi-AZ or large instance takes longer than EC2's 20 minutes: an hour before the alert.
    assert check["deadline"] == format_time(scheduler.clock.now + timedelta(minutes=55))
    scheduler.clock.advance(minutes=30)
    scheduler.work([work_body(check)])
    assert alerts_sent() == []
    scheduler.clock.advance(minutes=25)
    scheduler.work([work_body(check)])
    scheduler.work([work_body(check)])
    (alert,) = alerts_sent()
    assert alert["resource_id"] == instance and alert["reason"] == "stopping (wanted stopped after stop)"


@pytest.mark.parametrize(("kind", "auto_started", "stopped_event"), [
    ("db", "RDS-EVENT-0154", "RDS-EVENT-0087"), ("cluster", "RDS-EVENT-0153", "RDS-EVENT-0150"),
])  # fmt: skip
@pytest.mark.usefixtures("with_rds")
def test_a_resource_rds_starts_after_seven_days_is_stopped_again_once_available(
    scheduler: Scheduler, api_calls: Counter[str], kind: str, auto_started: str, stopped_event: str
) -> None:
    resource = scheduler.instance("orders", OFFICE) if kind == "db" else scheduler.cluster("orders", OFFICE)
    call = "rds.StopDBInstance" if kind == "db" else "rds.StopDBCluster"
    scheduler.plan("stop")
    scheduler.run("rds-act")
    scheduler.event(resource, stopped_event)
    take_messages()
    scheduler.clock.advance(days=7)
    scheduler.set_status(resource, "starting")  # RDS starts it
    scheduler.event(resource, auto_started)
    assert api_calls[call] == 1  # it cannot be stopped while starting
    (retry,) = [m for m in take_messages() if m["kind"] == "rds-act"]
    assert (retry["action"], retry["slot"]) == ("stop", format_time(scheduler.clock.now))
    scheduler.set_status(resource, "available")
    scheduler.clock.advance(minutes=2)
    scheduler.work([work_body(retry), work_body(retry)])
    assert scheduler.status(resource) == "stopped" and api_calls[call] == 2
    scheduler.event(resource, stopped_event)
    entry = scheduler.ledger(resource)
    assert (entry.state, entry.source_id, entry.slot) == ("available", "stop", retry["slot"])
    assert alerts_sent() == []


@pytest.mark.usefixtures("with_rds")
def test_a_manual_start_is_not_undone(scheduler: Scheduler, api_calls: Counter[str]) -> None:
    instance = scheduler.instance("orders", OFFICE)
    scheduler.plan("stop")
    scheduler.run("rds-act")
    scheduler.event(instance, "RDS-EVENT-0087")
    scheduler.clock.advance(hours=2)
    scheduler.rds.start_db_instance(DBInstanceIdentifier="orders")  # its owner needs it
    scheduler.event(instance, "RDS-EVENT-0088")
    scheduler.clock.advance(minutes=30)
    scheduler.drain()
    assert scheduler.status(instance) == "available" and api_calls["rds.StopDBInstance"] == 1
    assert alerts_sent() == []


@pytest.mark.usefixtures("with_rds")
def test_an_auto_start_after_a_scheduled_start_is_left_alone(scheduler: Scheduler, api_calls: Counter[str]) -> None:
    instance = scheduler.instance("orders", OFFICE)
    scheduler.rds.stop_db_instance(DBInstanceIdentifier="orders")
    scheduler.plan("start")
    scheduler.run("rds-act")
    assert scheduler.event(instance, "RDS-EVENT-0154") == {"batchItemFailures": []}
    scheduler.run("rds-act")
    assert api_calls["rds.StopDBInstance"] == 0
    assert scheduler.status(instance) == "available"


@pytest.mark.usefixtures("with_rds")
def test_unsupported_clusters_are_reported_once(scheduler: Scheduler, api_calls: Counter[str]) -> None:
    serverless = scheduler.cluster("legacy", OFFICE, members=0, EngineMode="serverless")
    summary = scheduler.plan("stop")
    assert summary["reported"] == [f"{serverless}: Aurora Serverless v1: RDS cannot stop it"]
    scheduler.run("rds-act")
    (alert,) = alerts_sent()
    assert alert["resource_id"] == serverless and api_calls["rds.StopDBCluster"] == 0


def test_rds_is_not_scheduled_unless_asked(
    configure_scheduler: ConfigureScheduler, scheduler: Scheduler, api_calls: Counter[str]
) -> None:
    configure_scheduler()
    instance = scheduler.instance("orders", OFFICE)
    scheduler.plan("stop")
    assert [m for m in take_messages() if m["kind"] == "rds-act"] == []
    assert api_calls["rds.DescribeDBInstances"] == 0 and scheduler.status(instance) == "available"


@pytest.mark.usefixtures("with_rds")
def test_an_event_without_a_db_or_cluster_arn_is_handed_back(scheduler: Scheduler) -> None:
    body = json.loads(rds_event("db:orders", "RDS-EVENT-0087", format_time(scheduler.clock.now)))
    body["detail"]["SourceArn"] = f"arn:aws:rds:{REGION}:{ACCOUNT}:pg:my-parameter-group"
    assert len(scheduler.work([json.dumps(body)])["batchItemFailures"]) == 1
    assert not_cannot_schedule(alerts_sent()) == []


@pytest.mark.usefixtures("with_rds")
def test_a_late_start_waits_for_a_stop_under_way(scheduler: Scheduler, api_calls: Counter[str]) -> None:
    instance = scheduler.instance("orders", OFFICE)
    scheduler.set_status(instance, "stopping")
    scheduler.plan("start")
    scheduler.run("rds-act")
    assert api_calls["rds.StartDBInstance"] == 0
    scheduler.clock.advance(minutes=30)  # a Multi-AZ stop can take this long: still waited for
    scheduler.run("rds-act")
    assert alerts_sent() == []
    scheduler.clock.advance(minutes=31)  # still stopping an hour after the first act
    scheduler.run("rds-act")
    (alert,) = not_cannot_schedule(alerts_sent())
    assert (alert["resource_id"], alert["reason"]) == (instance, "not acted on by the deadline")


@pytest.mark.usefixtures("with_rds")
def test_a_restop_still_waiting_when_the_start_slot_comes_never_stops_it(
    scheduler: Scheduler, api_calls: Counter[str]
) -> None:
    """RDS auto-starts the instance shortly before Monday's start slot: the start slot wins."""
    instance = scheduler.instance("orders", OFFICE)
    scheduler.plan("stop")
    scheduler.run("rds-act")
    take_messages()
    scheduler.clock.advance(days=7)
    scheduler.set_status(instance, "starting")
    scheduler.event(instance, "RDS-EVENT-0154")
    (restop,) = [m for m in take_messages() if m["kind"] == "rds-act"]
    scheduler.clock.advance(minutes=5)
    scheduler.plan("start")
    scheduler.run("rds-act")  # starting: on its way, verified as the start slot's
    scheduler.set_status(instance, "available")
    scheduler.work([work_body(restop)])
    assert scheduler.status(instance) == "available" and api_calls["rds.StopDBInstance"] == 1
    assert scheduler.ledger(instance).source_id == "start"


@pytest.mark.usefixtures("with_rds")
def test_a_restop_still_waiting_when_the_start_slot_finds_it_available_never_stops_it(
    scheduler: Scheduler, api_calls: Counter[str]
) -> None:
    instance = scheduler.instance("orders", OFFICE)
    scheduler.plan("stop")
    scheduler.run("rds-act")
    take_messages()
    scheduler.clock.advance(days=7)
    scheduler.set_status(instance, "starting")
    scheduler.event(instance, "RDS-EVENT-0154")
    (restop,) = [m for m in take_messages() if m["kind"] == "rds-act"]
    scheduler.set_status(instance, "available")  # RDS's start is done before the start slot
    scheduler.clock.advance(minutes=5)
    scheduler.plan("start")
    scheduler.drain()
    scheduler.work([work_body(restop)])
    assert scheduler.status(instance) == "available" and api_calls["rds.StopDBInstance"] == 1


# -- E37-E39: what RDS refuses to stop or start (tests/support/moto_fidelity.py) -----------------------------------


def _code(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as refused:
        call()
    return str(refused.value.response["Error"]["Code"])


def test_rds_refuses_to_stop_or_start_what_aws_refuses(scheduler: Scheduler, fidelity: MotoFidelity) -> None:
    api = scheduler.rds
    scheduler.cluster("reports", {})
    scheduler.instance("orders", {})
    api.create_db_instance_read_replica(DBInstanceIdentifier="orders-replica", SourceDBInstanceIdentifier="orders")
    scheduler.cluster("legacy", {}, members=0, EngineMode="serverless")
    # E37: an Aurora member is stopped and started through its cluster only.
    assert _code(lambda: api.stop_db_instance(DBInstanceIdentifier="reports-0")) == "InvalidParameterCombination"
    assert _code(lambda: api.start_db_instance(DBInstanceIdentifier="reports-0")) == "InvalidParameterCombination"
    # E38: nor the source of a read replica (the replica itself moto refuses already).
    assert _code(lambda: api.stop_db_instance(DBInstanceIdentifier="orders")) == fidelity.rds_replica_source_error
    assert _code(lambda: api.stop_db_instance(DBInstanceIdentifier="orders-replica"))
    # E39: nor an Aurora Serverless v1 cluster.
    assert _code(lambda: api.stop_db_cluster(DBClusterIdentifier="legacy")) == fidelity.rds_cluster_refusal_error
    assert scheduler.status("db:reports-0") == scheduler.status("db:orders") == "available"
    assert scheduler.status("cluster:legacy") == "available"
    # What AWS allows still works.
    api.stop_db_cluster(DBClusterIdentifier="reports")
    api.start_db_cluster(DBClusterIdentifier="reports")
    assert scheduler.status("cluster:reports") == "available"


@pytest.mark.usefixtures("with_rds")
def test_the_opt_out_tag_skips_a_resource(scheduler: Scheduler, api_calls: Counter[str]) -> None:
    opted_out = scheduler.instance("orders", {**OFFICE, "ops-automation:no-schedule": ""})
    summary = scheduler.plan("stop")
    assert summary["skipped"] == [f"{opted_out}: carries the opt-out tag ops-automation:no-schedule"]
    scheduler.run("rds-act")
    assert scheduler.status(opted_out) == "available" and api_calls["rds.StopDBInstance"] == 0


# -- RDS's own time limits: backups, maintenance, slow starts --------------------------------------------------------


@pytest.mark.parametrize("busy_minutes", [150, 200])
@pytest.mark.usefixtures("with_rds")
def test_a_stop_waits_out_a_backup_for_three_hours_from_its_first_act(
    scheduler: Scheduler, api_calls: Counter[str], busy_minutes: int
) -> None:
    """A backup or maintenance at the stop slot: stopped once it is over, not left running all night."""
    instance = scheduler.instance("orders", OFFICE)
    scheduler.plan("stop")
    scheduler.set_status(instance, "backing-up")
    scheduler.clock.advance(minutes=10)  # the planner paced this batch late: the window counts from here
    scheduler.run("rds-act")
    deliver_waiting(scheduler, busy_minutes)
    scheduler.set_status(instance, "available")
    deliver_waiting(scheduler, 15)
    if busy_minutes < 180:
        assert scheduler.status(instance) == "stopped" and api_calls["rds.StopDBInstance"] == 1
        assert alerts_sent() == []
    else:
        (alert,) = alerts_sent()
        assert (alert["resource_id"], alert["reason"]) == (instance, "not acted on by the deadline")
        assert scheduler.status(instance) == "available" and api_calls["rds.StopDBInstance"] == 0


@pytest.mark.parametrize("status", [
    "backing-up", "storage-optimization", "configuring-log-exports", "modifying", "maintenance", "upgrading",
])  # fmt: skip
@pytest.mark.usefixtures("with_rds")
def test_a_start_that_ends_busy_counts_as_started(scheduler: Scheduler, api_calls: Counter[str], status: str) -> None:
    started = scheduler.instance("orders", OFFICE)
    busy = scheduler.instance("billing", OFFICE)
    scheduler.rds.stop_db_instance(DBInstanceIdentifier="orders")
    scheduler.set_status(busy, status)  # running at the start slot, busy with work of its own
    scheduler.plan("start")
    scheduler.run("rds-act")
    queued = take_messages()
    assert api_calls["rds.StartDBInstance"] == 1 and [m["kind"] for m in queued] == ["check", "check"]
    scheduler.set_status(started, status)  # what RDS does right after a start
    scheduler.clock.advance(minutes=61)
    scheduler.work([work_body(m) for m in queued])
    assert {scheduler.ledger(r).state for r in (started, busy)} == {"available"}
    assert alerts_sent() == []


@pytest.mark.parametrize("kind", ["db", "cluster"])
@pytest.mark.usefixtures("with_rds")
def test_a_restop_waits_through_the_start_and_the_maintenance_after_it(
    scheduler: Scheduler, api_calls: Counter[str], kind: str
) -> None:
    resource = scheduler.instance("orders", OFFICE) if kind == "db" else scheduler.cluster("orders", OFFICE)
    call = "rds.StopDBInstance" if kind == "db" else "rds.StopDBCluster"
    scheduler.plan("stop")
    scheduler.run("rds-act")
    take_messages()
    scheduler.clock.advance(days=7)
    scheduler.set_status(resource, "starting")
    scheduler.event(resource, "RDS-EVENT-0154" if kind == "db" else "RDS-EVENT-0153")
    (restop,) = acts()
    assert restop["restop"] is True
    assert restop["deadline"] == format_time(scheduler.clock.now + timedelta(hours=6))
    scheduler.work([work_body(restop)])
    deliver_waiting(scheduler, 30)
    scheduler.set_status(resource, "upgrading")  # the maintenance RDS held back while it was stopped
    deliver_waiting(scheduler, 4 * 60)
    scheduler.set_status(resource, "available")
    deliver_waiting(scheduler, 15)
    assert scheduler.status(resource) == "stopped" and api_calls[call] == 2
    assert alerts_sent() == []


@pytest.mark.usefixtures("with_rds")
def test_a_restop_that_still_reads_stopped_after_the_auto_start_event_waits(
    scheduler: Scheduler, api_calls: Counter[str]
) -> None:
    instance = scheduler.instance("orders", OFFICE)
    scheduler.plan("stop")
    scheduler.run("rds-act")
    take_messages()
    scheduler.clock.advance(days=7)
    scheduler.event(instance, "RDS-EVENT-0154")  # DescribeDBInstances still answers `stopped`
    (restop,) = acts()
    assert restop["resource_ids"] == [instance]
    scheduler.set_status(instance, "starting")
    scheduler.clock.advance(minutes=1)
    scheduler.work([work_body(restop)])
    scheduler.set_status(instance, "available")
    deliver_waiting(scheduler, 15)
    assert scheduler.status(instance) == "stopped" and api_calls["rds.StopDBInstance"] == 2
    assert alerts_sent() == []


@pytest.mark.usefixtures("with_rds")
def test_a_restop_that_reads_stopped_long_after_the_event_takes_it_as_stopped(scheduler: Scheduler) -> None:
    """Its owner (or their own stay-stopped tool) stopped it again: no wait for six hours, no alert."""
    instance = scheduler.instance("orders", OFFICE)
    scheduler.plan("stop")
    scheduler.run("rds-act")
    take_messages()
    scheduler.clock.advance(days=7)
    scheduler.event(instance, "RDS-EVENT-0154")
    (check,) = deliver_waiting(scheduler, 45)
    assert acts() == []
    entry = scheduler.ledger(instance)
    assert (entry.state, entry.slot) == ("pending", format_time(scheduler.clock.now - timedelta(minutes=45)))
    scheduler.clock.advance(minutes=61)
    scheduler.work([work_body(check)])
    assert scheduler.ledger(instance).state == "available" and alerts_sent() == []


@pytest.mark.usefixtures("with_rds")
def test_the_source_of_an_aurora_read_replica_is_reported_once(scheduler: Scheduler, api_calls: Counter[str]) -> None:
    source = scheduler.instance("orders", OFFICE, Engine="mysql")
    # An Aurora MySQL read replica of it (moto does not create those): what DescribeDBInstances then shows.
    rds_backends[ACCOUNT][REGION].databases["orders"].read_replica_db_cluster_identifiers = ["orders-aurora"]
    summary = scheduler.plan("stop")
    assert summary["reported"] == [f"{source}: has read replicas: RDS cannot stop it"]
    scheduler.run("rds-act")
    scheduler.clock.advance(hours=24)
    scheduler.plan("stop")
    scheduler.run("rds-act")
    (alert,) = alerts_sent()
    assert alert["resource_id"] == source and api_calls["rds.StopDBInstance"] == 0


@pytest.mark.parametrize(("kind", "status"), [
    ("db", "insufficient-capacity"), ("cluster", "cloning-failed"), ("cluster", "migration-failed"),
])  # fmt: skip
@pytest.mark.usefixtures("with_rds")
def test_a_resource_in_a_status_that_does_not_pass_is_reported_at_once(
    scheduler: Scheduler, api_calls: Counter[str], kind: str, status: str
) -> None:
    resource = scheduler.instance("orders", OFFICE) if kind == "db" else scheduler.cluster("orders", OFFICE, members=0)
    scheduler.set_status(resource, status)
    summary = scheduler.plan("stop")
    assert summary["reported"] == [f"{resource}: {status}: nothing to stop"]
    scheduler.run("rds-act")
    assert acts() == []
    (alert,) = alerts_sent()
    assert alert["resource_id"] == resource
    assert api_calls["rds.StopDBInstance"] + api_calls["rds.StopDBCluster"] == 0


@pytest.mark.usefixtures("with_rds")
def test_members_of_a_multi_az_db_cluster_are_skipped_as_such(scheduler: Scheduler, api_calls: Counter[str]) -> None:
    scheduler.rds.create_db_cluster(
        DBClusterIdentifier="payments", Engine="postgres", MasterUsername="owner", MasterUserPassword="password1",
        DBClusterInstanceClass="db.m5d.large", AllocatedStorage=100, StorageType="io1", Iops=1000,
        Tags=tag_list(OFFICE),
    )  # fmt: skip
    member = scheduler.instance("payments-0", OFFICE, DBClusterIdentifier="payments")
    summary = scheduler.plan("stop")
    assert summary["skipped"] == [
        f"{member}: member of the DB cluster payments (postgres, not Aurora): only Aurora clusters are scheduled"
    ]
    assert summary["reported"] == [
        "cluster:payments: not an Aurora cluster (postgres): StopDBCluster applies to Aurora only"
    ]
    scheduler.run("rds-act")
    assert api_calls["rds.StopDBInstance"] + api_calls["rds.StopDBCluster"] == 0
