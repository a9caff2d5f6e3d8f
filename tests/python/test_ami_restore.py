"""ami-backup restore tests end to end on moto made faithful (tests/support/moto_fidelity.py): the restore schedule
plans a test of the newest good AMI per instance, the worker launches it in the isolated subnet, judges it on the
instance's state events (moto emits none: the test publishes them) and delayed checks, terminates it and tags the
AMI; and every bad path the issue names."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from typing import Any

import boto3
import pytest
from aws_harness import (
    ACCOUNT,
    LEDGER_TABLE,
    POLICY,
    REGION,
    Clock,
    Configure,
    FakeContext,
    Infra,
    alerts_sent,
    ami_event,
    emitted_metrics,
    run_instances,
    sqs_event,
    take_messages,
    work_body,
)
from tests.support.moto_fidelity import MotoFidelity

from ops_automation.ami_backup import handlers
from ops_automation.ami_backup.decisions import restore_instance_type
from ops_automation.ami_backup.restore import (
    delete_on_termination_mappings,
    ended_progress,
    outbound_routes,
    status_checks,
    status_verdict,
    validation_progress,
)
from ops_automation.core import tagging
from ops_automation.core.events import format_time, to_body
from ops_automation.core.restore import NOT_BACKUP_FAULT, RestoreConfigError, RestoreTestMessage

OWNERSHIP = {tagging.MANAGED_BY: tagging.MANAGED_BY_VALUE, tagging.POLICY: POLICY}
RESTORE_KINDS = ("restore_test", "restore_check", "restore_sweep")


def instance_state_event(instance_id: str, state: str, region: str = REGION, account: str = ACCOUNT) -> str:
    """An `EC2 Instance State-change Notification` in the shape of the AWS sample (shared/events)."""
    return json.dumps(
        {
            "version": "0",
            "id": "7bf73129-1428-4cd3-a780-95db273d1602",
            "detail-type": "EC2 Instance State-change Notification",
            "source": "aws.ec2",
            "account": account,
            "time": "2024-05-01T01:30:00Z",
            "region": region,
            "resources": [f"arn:aws:ec2:{region}:{account}:instance/{instance_id}"],
            "detail": {"instance-id": instance_id, "state": state},
        }
    )


class Lab:
    """The restore wiring on moto: an isolated subnet and an empty security group, one backed-up instance, and the
    three functions driven as deployed (schedules, the work queue); the test decides when time passes."""

    def __init__(self, infra: Infra, clock: Clock, fidelity: MotoFidelity, configure: Configure) -> None:
        self.infra = infra
        self.clock = clock
        self.fidelity = fidelity
        self.configure = configure
        ec2 = infra.ec2
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        self.subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
        self.group = ec2.create_security_group(GroupName="restore-tests", Description="no ingress", VpcId=vpc)[
            "GroupId"
        ]
        self.source = run_instances(ec2, 1, {"Backup": "nightly", "Name": "web-1"})[0]

    def restore_config(self, **overrides: Any) -> str:
        value = {
            "region": None,
            "role_arn": None,
            "subnet_id": self.subnet,
            "security_group_id": self.group,
            "sources": "all",
            "sample_size": 1,
            "source_tags": {},
            "max_concurrent": 2,
            "deadline_minutes": 30,
            "instance_type": None,
            "validation_document": None,
            "validation_parameters": {},
            "instance_profile_name": None,
            "volume_type": "gp3",
            "allow_routed_subnet": False,
        }
        value.update(overrides)
        return json.dumps(value)

    def setup(self, generations: int = 3, **restore: Any) -> handlers.AmiRuntime:
        return self.configure(OPS_GENERATIONS=str(generations), OPS_RESTORE_TEST=self.restore_config(**restore))

    # --- the functions ---

    def work(self, bodies: list[str]) -> dict[str, Any]:
        return dict(handlers.work_handler(sqs_event(bodies), FakeContext()))

    def backup(self) -> str:
        """One backup slot of the source instance, completed on its AMI event; returns the new AMI."""
        handlers.plan_handler({"scheduled_time": format_time(self.clock.now)}, FakeContext())
        creates = take_messages()
        assert self.work([work_body(m) for m in creates]) == {"batchItemFailures": []}
        checks = take_messages()
        [image_id] = [m["resource_id"] for m in checks if m["kind"] == "check"]
        assert self.work([ami_event(image_id, "available")]) == {"batchItemFailures": []}
        leftover = [m for m in take_messages() if m["kind"] not in ("check",)]
        self.clock.advance(minutes=61)
        assert self.work([work_body(m) for m in [*checks, *leftover]]) == {"batchItemFailures": []}
        self.drain(kinds=("purge_snapshots", "check"))
        return image_id

    def seed_backup(self) -> str:
        """A backup as the module makes it (CreateImage tagging the AMI and its snapshots), without the slot's
        messages: the restore tests that are not about retention start from it."""
        tags = tagging.ownership_tags(POLICY, source_instance=self.source, slot=format_time(self.clock.now))
        specs = [{"ResourceType": kind, "Tags": tagging.tag_list(tags)} for kind in ("image", "snapshot")]
        name = f"{POLICY}-{self.source}-{self.clock.now:%Y%m%dT%H%M%SZ}"
        image_id: str = self.infra.ec2.create_image(InstanceId=self.source, Name=name, TagSpecifications=specs)[
            "ImageId"
        ]
        self.clock.advance(minutes=61)
        return image_id

    def drain(self, kinds: tuple[str, ...]) -> None:
        for _round in range(50):
            messages = take_messages()
            mine = [m for m in messages if m["kind"] in kinds]
            self.requeue([m for m in messages if m["kind"] not in kinds])
            if not mine:
                return
            self.clock.advance(minutes=15)
            assert self.work([work_body(m) for m in mine]) == {"batchItemFailures": []}
        raise AssertionError("never drained")

    def requeue(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            self.infra.sqs.send_message(QueueUrl=self.infra.queue_url, MessageBody=work_body(message))

    def plan_restore(self) -> list[dict[str, Any]]:
        """The restore schedule; returns what it enqueued."""
        handlers.restore_handler({"scheduled_time": format_time(self.clock.now)}, FakeContext())
        return take_messages()

    def start_tests(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Plan, then the worker on the restore_test items; returns (the tests, what they enqueued)."""
        planned = self.plan_restore()
        tests = [m for m in planned if m["kind"] == "restore_test"]
        assert tests, planned
        assert self.work([work_body(m) for m in tests]) == {"batchItemFailures": []}
        return tests, take_messages()

    def checks_until_done(self, messages: list[dict[str, Any]], minutes: float = 2) -> Counter[str]:
        """Deliver the delayed restore_check messages (and what they re-send) as time passes, until none is left."""
        handled: Counter[str] = Counter()
        pending = [m for m in messages if m["kind"] == "restore_check"]
        for _round in range(200):
            if not pending:
                return handled
            self.clock.advance(minutes=minutes)
            handled.update(m["kind"] for m in pending)
            assert self.work([work_body(m) for m in pending]) == {"batchItemFailures": []}
            pending = [m for m in take_messages() if m["kind"] == "restore_check"]
        raise AssertionError("the checks never ended")

    # --- what is there ---

    def instance(self, instance_id: str) -> dict[str, Any]:
        reservations = self.infra.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        return dict(reservations[0]["Instances"][0])

    def restored_instances(self) -> list[dict[str, Any]]:
        filters = [{"Name": "tag-key", "Values": [tagging.RESTORE_TEST]}]
        reservations = self.infra.ec2.describe_instances(Filters=filters)["Reservations"]
        return [instance for reservation in reservations for instance in reservation["Instances"]]

    def image_tags(self, image_id: str) -> dict[str, str]:
        [image] = self.infra.ec2.describe_images(ImageIds=[image_id])["Images"]
        return tagging.tag_dict(image.get("Tags"))

    def images(self) -> set[str]:
        images = self.infra.ec2.describe_images(Owners=["self"])["Images"]
        return {image["ImageId"] for image in images if image["State"] != "deregistered"}

    def ledger(self) -> dict[str, dict[str, Any]]:
        items = boto3.client("dynamodb", region_name=REGION).scan(TableName=LEDGER_TABLE)["Items"]
        return {item["sk"]["S"]: item for item in items}

    def restore_record(self, test_id: str) -> dict[str, Any]:
        [record] = [item for key, item in self.ledger().items() if key.endswith(f"restore#{test_id}")]
        return record


@pytest.fixture
def lab(infra: Infra, clock: Clock, fidelity: MotoFidelity, configure: Configure) -> Lab:
    return Lab(infra, clock, fidelity, configure)


def _details(record: dict[str, Any]) -> dict[str, str]:
    return {key: value["S"] for key, value in record.get("details", {}).get("M", {}).items()}


# ---------------------------------------------------------------------------------------------------------------
# Pure decisions
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("architecture", "ena", "platform", "expected"),
    [
        ("arm64", True, "", "t4g.nano"),
        ("x86_64", True, "", "t3.nano"),
        ("x86_64", False, "", "t2.nano"),
        ("i386", False, "", "t2.nano"),
        ("x86_64", True, "windows", "t3.small"),
        ("x86_64", False, "windows", "t2.small"),
    ],
)
def test_the_default_instance_type_is_the_smallest_that_runs_the_ami(
    architecture: str, ena: bool, platform: str, expected: str
) -> None:
    assert restore_instance_type(architecture, ena, platform, None, ()) == expected


def test_an_instance_type_of_another_architecture_is_a_config_error_naming_field_and_value() -> None:
    with pytest.raises(RestoreConfigError, match=r"restore_test\.instance_type='t4g\.micro'.*x86_64"):
        restore_instance_type("x86_64", True, "", "t4g.micro", ("arm64",))
    assert restore_instance_type("x86_64", True, "", "m5.large", ("x86_64",)) == "m5.large"
    with pytest.raises(RestoreConfigError, match="Dedicated Host"):
        restore_instance_type("arm64_mac", True, "", None, ())


def test_a_uefi_ami_never_goes_to_a_legacy_bios_type() -> None:
    assert restore_instance_type("x86_64", True, "", None, (), boot_mode="uefi") == "t3.nano"
    assert restore_instance_type("x86_64", True, "windows", None, (), boot_mode="uefi") == "t3.small"
    assert restore_instance_type("x86_64", False, "", None, (), boot_mode="legacy-bios") == "t2.nano"
    assert restore_instance_type("x86_64", False, "", None, (), boot_mode="uefi") == "t3.nano"


def test_status_checks_pass_only_when_every_check_is_ok() -> None:
    ok = {"SystemStatus": {"Status": "ok"}, "InstanceStatus": {"Status": "ok"}}
    assert status_verdict(status_checks(ok)) == "ready"
    assert status_verdict(status_checks({**ok, "AttachedEbsStatus": {"Status": "not-applicable"}})) == "ready"
    assert status_verdict(status_checks({**ok, "AttachedEbsStatus": {"Status": "initializing"}})) == "starting"
    assert status_verdict(status_checks({**ok, "InstanceStatus": {"Status": "insufficient-data"}})) == "starting"
    assert status_verdict(status_checks({**ok, "SystemStatus": {"Status": "impaired"}})) == "failed"
    assert status_verdict(status_checks(None)) == "starting"


def test_every_ebs_mapping_is_deleted_on_termination_and_nothing_else_is_overridden() -> None:
    mappings = [
        {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": "snap-1", "DeleteOnTermination": True, "VolumeSize": 8}},
        {"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": "snap-2", "DeleteOnTermination": False}},
        {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"},
        {"DeviceName": "/dev/sdg", "NoDevice": ""},
    ]
    assert delete_on_termination_mappings(mappings) == [
        {"DeviceName": "/dev/xvda", "Ebs": {"DeleteOnTermination": True}},
        {"DeviceName": "/dev/sdf", "Ebs": {"DeleteOnTermination": True}},
    ]


@pytest.mark.parametrize(
    ("code", "backup_fault"),
    [
        ("Client.InstanceInitiatedShutdown", True),  # the restored OS shut itself down
        ("Client.InvalidSnapshot.NotFound", True),  # a snapshot of the AMI is gone
        ("Client.InternalError", False),  # EBS could not use a KMS key
        ("Client.InvalidKMSKey.InvalidState", False),
        ("Server.InsufficientInstanceCapacity", False),
        ("Client.UserInitiatedShutdown", False),
    ],
)
def test_an_instance_that_ended_before_passing_fails_the_backup_only_for_the_backups_reasons(
    code: str, backup_fault: bool
) -> None:
    progress = ended_progress("terminated", {"Code": code, "Message": f"{code}: ..."}, {"instance_id": "i-1"})
    assert progress.state == "failed"
    assert (NOT_BACKUP_FAULT not in progress.details) is backup_fault
    assert progress.details["state_reason_code"] == code
    if code == "Client.InternalError":
        assert "restore_test.kms_key_arns" in progress.reason


@pytest.mark.parametrize(
    ("status", "details", "state", "backup_fault"),
    [
        ("Success", "Success", "ready", None),
        ("InProgress", "InProgress", "starting", None),
        ("Pending", "Pending", "starting", False),
        ("Delayed", "Delayed", "starting", False),
        ("Failed", "Failed", "failed", True),
        ("TimedOut", "Execution Timed Out", "failed", True),
        ("TimedOut", "Delivery Timed Out", "failed", False),
        ("Failed", "Undeliverable", "failed", False),
        ("Failed", "Invalid Platform", "failed", False),
        ("Cancelled", "Cancelled", "failed", False),
    ],
)
def test_a_validation_invocation_fails_the_backup_only_when_the_command_ran_and_failed(
    status: str, details: str, state: str, backup_fault: bool | None
) -> None:
    progress = validation_progress({"Status": status, "StatusDetails": details, "ResponseCode": 1}, {})
    assert progress.state == state
    if backup_fault is not None:
        assert (NOT_BACKUP_FAULT not in progress.details) is backup_fault


def test_routes_out_of_the_vpc_are_named_and_local_or_endpoint_routes_are_not() -> None:
    routes = [
        {"DestinationCidrBlock": "10.9.0.0/16", "GatewayId": "local", "State": "active"},
        {"DestinationPrefixListId": "pl-63a5400a", "GatewayId": "vpce-0abc", "State": "active"},
        {"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-0abc", "State": "active"},
        {"DestinationCidrBlock": "172.16.0.0/12", "TransitGatewayId": "tgw-0abc", "State": "active"},
        {"DestinationIpv6CidrBlock": "::/0", "EgressOnlyInternetGatewayId": "eigw-0abc", "State": "active"},
        {"DestinationCidrBlock": "192.168.0.0/16", "GatewayId": "igw-0abc", "State": "blackhole"},
        {"DestinationCidrBlock": "10.20.0.0/16", "InstanceId": "i-0nat", "State": "active"},
        {"DestinationCidrBlock": "10.30.0.0/16", "NetworkInterfaceId": "eni-0appliance", "State": "active"},
        {"DestinationCidrBlock": "10.40.0.0/16", "GatewayId": "vpce-0gwlb", "State": "active"},
        {"DestinationCidrBlock": "10.50.0.0/16", "CoreNetworkArn": "arn:aws:networkmanager::1:core-network/x"},
    ]
    assert outbound_routes(routes) == [
        "0.0.0.0/0 -> nat-0abc",
        "172.16.0.0/12 -> tgw-0abc",
        "::/0 -> eigw-0abc",
        "10.20.0.0/16 -> i-0nat",
        "10.30.0.0/16 -> eni-0appliance",
        "10.40.0.0/16 -> vpce-0gwlb",
        "10.50.0.0/16 -> arn:aws:networkmanager::1:core-network/x",
    ]


# ---------------------------------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------------------------------


def test_a_restore_that_passes_launches_isolated_checks_terminates_tags_and_records(
    lab: Lab, fidelity: MotoFidelity, clock: Clock, capsys: Any
) -> None:
    lab.setup()
    image_id = lab.seed_backup()
    requests: list[dict[str, Any]] = []
    handlers.worker_runtime().clients.client("ec2").meta.events.register(
        "provide-client-params.ec2.RunInstances", lambda params, **_: requests.append(params)
    )

    planned = lab.plan_restore()
    assert Counter(m["kind"] for m in planned) == {"restore_sweep": 1, "restore_test": 1}
    [test] = [m for m in planned if m["kind"] == "restore_test"]
    assert (test["source_id"], test["backup_ids"]) == (lab.source, [image_id])
    assert lab.work([work_body(test)]) == {"batchItemFailures": []}
    after_launch = take_messages()
    assert Counter(m["kind"] for m in after_launch) == {"restore_check": 1, "restore_sweep": 1}

    # The request: the test subnet and group on the only interface, no public address, no key, no user data,
    # every volume deleted with the instance, everything tagged at launch.
    [request] = requests
    assert request["ImageId"] == image_id
    assert (request["MinCount"], request["MaxCount"]) == (1, 1)
    assert request["ClientToken"]
    [interface] = request["NetworkInterfaces"]
    assert interface == {
        "DeviceIndex": 0,
        "SubnetId": lab.subnet,
        "Groups": [lab.group],
        "AssociatePublicIpAddress": False,
        "DeleteOnTermination": True,
    }
    assert "KeyName" not in request and "UserData" not in request and "IamInstanceProfile" not in request
    assert request["BlockDeviceMappings"] and all(
        m["Ebs"] == {"DeleteOnTermination": True} for m in request["BlockDeviceMappings"]
    )
    assert {spec["ResourceType"] for spec in request["TagSpecifications"]} == {
        "instance",
        "volume",
        "network-interface",
    }
    [restored] = lab.restored_instances()
    tags = tagging.tag_dict(restored["Tags"])
    assert tags[tagging.RESTORE_TEST] == test["test_id"]
    assert tagging.is_owned(tags, POLICY)
    assert tags[tagging.SOURCE_IMAGE] == image_id
    assert restored["SubnetId"] == lab.subnet and not restored.get("PublicIpAddress")
    assert not restored.get("KeyName")
    assert all(m["Ebs"]["DeleteOnTermination"] for m in restored["BlockDeviceMappings"])

    # The running event: status checks ok, the test passes and ends.
    clock.advance(minutes=3)
    assert lab.work([instance_state_event(restored["InstanceId"], "running")]) == {"batchItemFailures": []}
    assert lab.instance(restored["InstanceId"])["State"]["Name"] in ("shutting-down", "terminated")
    image_tags = lab.image_tags(image_id)
    assert image_tags[tagging.RESTORE_RESULT] == "passed"
    assert image_tags[tagging.RESTORE_TESTED] == test["slot"]
    record = lab.restore_record(test["test_id"])
    assert record["state"]["S"] == "available"
    details = _details(record)
    assert details["result"] == "passed"
    assert int(details["duration_seconds"]) >= 180
    assert restored["InstanceId"] in details["resource_ids"]

    # The delayed check and the terminated event come later and change nothing.
    take_messages()
    clock.advance(minutes=5)
    late = [*after_launch, json.loads(instance_state_event(restored["InstanceId"], "terminated"))]
    assert lab.work([work_body(m) for m in late]) == {"batchItemFailures": []}
    assert alerts_sent() == []
    assert emitted_metrics(capsys.readouterr().out)["RestoreTestsPassed"] == 1

    # Verified: the next restore run skips it.
    clock.advance(days=1)
    assert [m for m in lab.plan_restore() if m["kind"] == "restore_test"] == []


def _start_one(lab: Lab) -> tuple[dict[str, Any], str, list[dict[str, Any]]]:
    """Plan and launch the one test; returns the test message, its instance and the delayed messages."""
    [test], after = lab.start_tests()
    [restored] = [
        i for i in lab.restored_instances() if tagging.tag_dict(i["Tags"])[tagging.RESTORE_TEST] == test["test_id"]
    ]
    return test, str(restored["InstanceId"]), after


def test_status_checks_that_never_pass_fail_the_test_once_and_retention_keeps_the_last_passed_backup(
    lab: Lab, fidelity: MotoFidelity, clock: Clock, capsys: Any
) -> None:
    lab.setup(generations=1)
    passed_image = lab.backup()
    _test, instance_id, _after = _start_one(lab)
    assert lab.work([instance_state_event(instance_id, "running")]) == {"batchItemFailures": []}
    assert lab.image_tags(passed_image)[tagging.RESTORE_RESULT] == "passed"
    take_messages()

    clock.advance(days=1)
    broken_image = lab.backup()
    assert passed_image in lab.images()  # the newest passed backup outlives generations = 1
    test, instance_id, after = _start_one(lab)
    assert test["backup_ids"] == [broken_image]
    fidelity.impair_instance(instance_id, which="instance")
    running = instance_state_event(instance_id, "running")
    # The event twice (EventBridge delivers at least once) and the delayed check: one failure, one alert.
    assert lab.work([running, running]) == {"batchItemFailures": []}
    clock.advance(minutes=3)
    assert lab.work([work_body(m) for m in after if m["kind"] == "restore_check"]) == {"batchItemFailures": []}

    [alert] = alerts_sent()
    assert alert["alert"] == "restore test failed"
    assert alert["source_id"] == lab.source and broken_image in json.dumps(alert)
    assert "impaired" in alert["reason"]
    assert alert["instance_type"] == "t3.nano"  # the size it was judged on
    assert lab.instance(instance_id)["State"]["Name"] in ("shutting-down", "terminated")
    assert lab.image_tags(broken_image)[tagging.RESTORE_RESULT] == "failed"
    assert lab.restore_record(test["test_id"])["state"]["S"] == "failed"
    assert emitted_metrics(capsys.readouterr().out)["RestoreTestsFailed"] == 1

    # The next backup: the failed one is superseded, the last one that passed is still kept.
    take_messages()
    clock.advance(days=1)
    newest = lab.backup()
    assert lab.images() == {passed_image, newest}


def test_a_test_that_is_still_starting_at_its_deadline_times_out_as_failed(
    lab: Lab, fidelity: MotoFidelity, clock: Clock
) -> None:
    lab.setup(deadline_minutes=30)
    image_id = lab.seed_backup()
    fidelity.status_check_time = timedelta(hours=5)  # initializing far beyond the deadline
    test, instance_id, after = _start_one(lab)

    handled = lab.checks_until_done(after, minutes=5)

    assert handled["restore_check"] >= 2
    [alert] = alerts_sent()
    assert alert["alert"] == "restore test failed"
    assert "did not pass within 30 minutes" in alert["reason"]
    assert lab.instance(instance_id)["State"]["Name"] in ("shutting-down", "terminated")
    assert lab.image_tags(image_id)[tagging.RESTORE_RESULT] == "failed"
    assert lab.restore_record(test["test_id"])["state"]["S"] == "failed"


def test_a_launch_refused_for_capacity_is_retried_later_and_is_no_failed_backup(
    lab: Lab, fidelity: MotoFidelity, clock: Clock
) -> None:
    lab.setup()
    image_id = lab.seed_backup()
    fidelity.fail_run_instances("InsufficientInstanceCapacity", times=1)

    [test], after = lab.start_tests()

    assert lab.restored_instances() == []
    [retry] = [m for m in after if m["kind"] == "restore_test"]
    assert (retry["test_id"], retry["attempt"]) == (test["test_id"], 2)
    assert alerts_sent() == []
    assert tagging.RESTORE_RESULT not in lab.image_tags(image_id)
    # Later, capacity is back: the same test launches.
    clock.advance(minutes=2)
    assert lab.work([work_body(retry)]) == {"batchItemFailures": []}
    [restored] = lab.restored_instances()
    assert tagging.tag_dict(restored["Tags"])[tagging.RESTORE_TEST] == test["test_id"]


def test_a_leftover_test_instance_is_terminated_by_the_sweep(lab: Lab, infra: Infra, clock: Clock) -> None:
    lab.setup()
    lab.seed_backup()
    _test, instance_id, _after = _start_one(lab)
    take_messages()
    # Its checks are lost (a message deleted by hand, a queue purged): the instance would run on, billed, until the
    # next restore run's sweep finds it past the deadline and its grace.
    clock.advance(hours=2)
    # A test launched a minute ago is no leftover, nor is an instance of another policy.
    young = run_instances(infra.ec2, 1, {**OWNERSHIP, tagging.RESTORE_TEST: "20240501T050000Z-i-0young"})[0]
    other = {**OWNERSHIP, tagging.POLICY: "weekly", tagging.RESTORE_TEST: "20240501T010000Z-i-0other"}
    clock.advance(minutes=1)
    foreign = run_instances(infra.ec2, 1, other)[0]
    clock.advance(hours=2)
    young_now = run_instances(infra.ec2, 1, {**OWNERSHIP, tagging.RESTORE_TEST: "20240501T070000Z-i-0young"})[0]
    sweep = [m for m in lab.plan_restore() if m["kind"] == "restore_sweep"]
    assert lab.work([work_body(m) for m in sweep]) == {"batchItemFailures": []}

    assert lab.instance(instance_id)["State"]["Name"] in ("shutting-down", "terminated")
    assert lab.instance(young)["State"]["Name"] in ("shutting-down", "terminated")  # 2 h old by now
    assert lab.instance(young_now)["State"]["Name"] == "running"
    assert lab.instance(foreign)["State"]["Name"] == "running"
    [report] = [a for a in alerts_sent() if a["alert"] == "restore test leftovers cleaned up"]
    assert instance_id in json.dumps(report)


def test_a_security_group_with_ingress_rules_means_the_test_cannot_run(lab: Lab, infra: Infra) -> None:
    lab.setup()
    image_id = lab.seed_backup()
    infra.ec2.authorize_security_group_ingress(
        GroupId=lab.group,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )

    [test], _after = lab.start_tests()
    assert lab.work([work_body(test)]) == {"batchItemFailures": []}  # a redelivery alerts no second time

    assert lab.restored_instances() == []
    [alert] = alerts_sent()
    assert alert["alert"] == "restore test cannot run"
    assert lab.group in alert["reason"] and "ingress" in alert["reason"]
    assert tagging.RESTORE_RESULT not in lab.image_tags(image_id)


def test_an_instance_type_override_of_another_architecture_names_the_field_and_value(lab: Lab) -> None:
    lab.setup(instance_type="t4g.nano")
    image_id = lab.seed_backup()

    lab.start_tests()

    assert lab.restored_instances() == []
    [alert] = alerts_sent()
    assert alert["alert"] == "restore test cannot run"
    assert "restore_test.instance_type='t4g.nano'" in alert["reason"]
    assert tagging.RESTORE_RESULT not in lab.image_tags(image_id)


VALIDATION = {
    "validation_document": "AWS-RunShellScript",
    "validation_parameters": {"commands": ["systemctl is-system-running --wait"]},
    "instance_profile_name": "restore-tester",
}


def _instance_profile(infra: Infra) -> None:
    iam = boto3.client("iam", region_name=REGION)
    iam.create_instance_profile(InstanceProfileName="restore-tester")


def test_a_validation_command_runs_once_the_agent_registers_and_its_success_passes_the_test(
    lab: Lab, infra: Infra, fidelity: MotoFidelity, clock: Clock
) -> None:
    _instance_profile(infra)
    lab.setup(**VALIDATION)
    image_id = lab.seed_backup()
    test, instance_id, after = _start_one(lab)
    assert lab.instance(instance_id)["IamInstanceProfile"]["Arn"].endswith("/restore-tester")
    fidelity.unmanage(instance_id)  # the agent has not registered yet: SendCommand answers InvalidInstanceId

    assert lab.work([instance_state_event(instance_id, "running")]) == {"batchItemFailures": []}
    assert tagging.RESTORE_RESULT not in lab.image_tags(image_id)
    fidelity.manage(instance_id)
    handled = lab.checks_until_done(after)

    assert handled["restore_check"] >= 2
    assert lab.image_tags(image_id)[tagging.RESTORE_RESULT] == "passed"
    assert _details(lab.restore_record(test["test_id"]))["command_id"]
    commands = boto3.client("ssm", region_name=REGION).list_commands()["Commands"]
    assert [(c["DocumentName"], c["InstanceIds"]) for c in commands] == [("AWS-RunShellScript", [instance_id])]
    assert alerts_sent() == []


def test_a_failed_validation_command_fails_the_test_with_its_exit_code(
    lab: Lab, infra: Infra, fidelity: MotoFidelity, clock: Clock
) -> None:
    _instance_profile(infra)
    lab.setup(**VALIDATION)
    image_id = lab.seed_backup()
    _test, instance_id, after = _start_one(lab)
    fidelity.ssm_outcome(instance_id, "Failed", exit_code=3, stderr="degraded: postgresql.service failed")

    assert lab.work([instance_state_event(instance_id, "running")]) == {"batchItemFailures": []}
    lab.checks_until_done(after)

    [alert] = alerts_sent()
    assert alert["alert"] == "restore test failed"
    assert "exit code 3" in alert["reason"]
    assert "postgresql.service failed" in json.dumps(alert)
    assert lab.image_tags(image_id)[tagging.RESTORE_RESULT] == "failed"
    assert lab.instance(instance_id)["State"]["Name"] in ("shutting-down", "terminated")


def _document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _owned(prefix: str) -> dict[str, str]:
    return {f"{prefix}/{key}": value for key, value in OWNERSHIP.items()}


def restore_worker_policy(subnet_id: str, group_id: str) -> str:
    """The restore statements of the ami-backup worker's policy as the contract gives them to modules/ami-backup
    (iam.tf): RunInstances only from the policy's own AMIs, into the test subnet and group, creating only instances,
    volumes and interfaces that carry the ownership tags and a restore-test tag; tags only at that launch; terminate
    only such instances; on the AMIs, only the two restore-result tags."""
    arn = f"arn:aws:ec2:{REGION}:{ACCOUNT}"
    restored = [f"{arn}:instance/*", f"{arn}:volume/*", f"{arn}:network-interface/*"]
    launched = [f"{arn}:instance/*", f"{arn}:volume/*"]
    restore_tag = f"aws:RequestTag/{tagging.RESTORE_TEST}"
    return _document(
        {"Effect": "Allow", "Action": ["ec2:Describe*"], "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": "ec2:RunInstances",
            "Resource": [f"arn:aws:ec2:{REGION}::image/*", f"arn:aws:ec2:{REGION}::snapshot/*"],
            "Condition": {"StringEquals": _owned("aws:ResourceTag")},
        },
        {
            "Effect": "Allow",
            "Action": "ec2:RunInstances",
            "Resource": [f"{arn}:subnet/{subnet_id}", f"{arn}:security-group/{group_id}"],
        },
        {
            "Effect": "Allow",
            "Action": "ec2:RunInstances",
            "Resource": launched,
            "Condition": {"StringEquals": _owned("aws:RequestTag"), "Null": {restore_tag: "false"}},
        },
        {
            "Effect": "Allow",
            "Action": "ec2:RunInstances",
            "Resource": f"{arn}:network-interface/*",
            "Condition": {
                "StringEquals": _owned("aws:RequestTag"),
                "Null": {restore_tag: "false"},
                "Bool": {"ec2:AssociatePublicIpAddress": "false"},
            },
        },
        {
            "Effect": "Allow",
            "Action": "ec2:CreateTags",
            "Resource": restored,
            "Condition": {"StringEquals": {**_owned("aws:RequestTag"), "ec2:CreateAction": "RunInstances"}},
        },
        {
            "Effect": "Allow",
            "Action": "ec2:TerminateInstances",
            "Resource": f"{arn}:instance/*",
            "Condition": {
                "StringEquals": _owned("aws:ResourceTag"),
                "Null": {f"aws:ResourceTag/{tagging.RESTORE_TEST}": "false"},
            },
        },
        {
            "Effect": "Allow",
            "Action": "ec2:CreateTags",
            "Resource": f"arn:aws:ec2:{REGION}::image/*",
            "Condition": {
                "StringEquals": _owned("aws:ResourceTag"),
                "ForAllValues:StringEquals": {"aws:TagKeys": [tagging.RESTORE_RESULT, tagging.RESTORE_TESTED]},
            },
        },
    )


def test_iam_refuses_a_launch_from_an_ami_without_the_ownership_tags(
    lab: Lab, infra: Infra, fidelity: MotoFidelity, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    owned = infra.ec2.create_image(
        InstanceId=lab.source,
        Name="owned",
        TagSpecifications=[
            {"ResourceType": kind, "Tags": tagging.tag_list({**OWNERSHIP, tagging.SOURCE_INSTANCE: lab.source})}
            for kind in ("image", "snapshot")
        ],
    )["ImageId"]
    foreign = infra.ec2.create_image(InstanceId=lab.source, Name="foreign")["ImageId"]
    iam = boto3.client("iam", region_name=REGION)
    trust = _document(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
    )
    iam.create_role(RoleName="ops-automation-nightly-functions", AssumeRolePolicyDocument=trust)
    iam.put_role_policy(
        RoleName="ops-automation-nightly-functions",
        PolicyName="business",
        PolicyDocument=restore_worker_policy(lab.subnet, lab.group),
    )
    credentials = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/ops-automation-nightly-functions", RoleSessionName="lambda"
    )["Credentials"]
    for name, key in (("AWS_ACCESS_KEY_ID", "AccessKeyId"), ("AWS_SECRET_ACCESS_KEY", "SecretAccessKey")):
        monkeypatch.setenv(name, credentials[key])
    monkeypatch.setenv("AWS_SESSION_TOKEN", credentials["SessionToken"])
    monkeypatch.delenv("AWS_SECURITY_TOKEN", raising=False)
    lab.setup()
    slot = format_time(clock.now)

    def test_of(image_id: str) -> str:
        test_id = f"iam-{image_id}"
        message = RestoreTestMessage(POLICY, test_id, lab.source, (image_id,), REGION, None, slot, slot)
        return to_body(message)

    assert lab.work([test_of(foreign)]) == {"batchItemFailures": []}
    assert lab.restored_instances() == []
    [alert] = alerts_sent()
    assert alert["alert"] == "restore test cannot run"
    assert "UnauthorizedOperation" in json.dumps(alert)
    refused = [d for d in fidelity.iam.decisions if d.action == "ec2:RunInstances" and not d.allowed]
    assert refused and all(foreign in d.resource for d in refused if ":image/" in d.resource)

    # The same role launches, judges, terminates and tags the policy's own AMI.
    assert lab.work([test_of(owned)]) == {"batchItemFailures": []}
    [restored] = lab.restored_instances()
    after = take_messages()
    assert lab.work([instance_state_event(restored["InstanceId"], "running")]) == {"batchItemFailures": []}
    assert lab.image_tags(owned)[tagging.RESTORE_RESULT] == "passed"
    assert lab.instance(restored["InstanceId"])["State"]["Name"] in ("shutting-down", "terminated")
    assert [m for m in after if m["kind"] == "restore_check"]


def test_a_subnet_with_a_route_to_the_internet_means_the_test_cannot_run(lab: Lab, infra: Infra) -> None:
    lab.setup()
    lab.seed_backup()
    vpc = infra.ec2.describe_subnets(SubnetIds=[lab.subnet])["Subnets"][0]["VpcId"]
    gateway = infra.ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    infra.ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
    table = infra.ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    infra.ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway)
    infra.ec2.associate_route_table(RouteTableId=table, SubnetId=lab.subnet)

    lab.start_tests()

    assert lab.restored_instances() == []
    [alert] = alerts_sent()
    assert alert["alert"] == "restore test cannot run"
    assert f"restore_test.subnet_id='{lab.subnet}'" in alert["reason"] and gateway in alert["reason"]


def test_an_agent_that_never_registers_means_the_test_cannot_run_not_a_failed_backup(
    lab: Lab, infra: Infra, fidelity: MotoFidelity
) -> None:
    _instance_profile(infra)
    lab.setup(deadline_minutes=10, **VALIDATION)
    image_id = lab.seed_backup()
    _test, instance_id, after = _start_one(lab)
    fidelity.unmanage(instance_id)  # no SSM endpoints in the subnet: the agent never registers

    lab.checks_until_done(after, minutes=4)

    [alert] = alerts_sent()
    assert alert["alert"] == "restore test cannot run"
    assert "ssmmessages" in alert["reason"]
    assert tagging.RESTORE_RESULT not in lab.image_tags(image_id)
    assert lab.instance(instance_id)["State"]["Name"] in ("shutting-down", "terminated")


def test_an_arm64_backup_is_launched_on_the_smallest_graviton_type(lab: Lab, fidelity: MotoFidelity) -> None:
    lab.setup()
    image_id = lab.seed_backup()
    fidelity.backend(REGION).amis[image_id].architecture = "arm64"
    requests: list[dict[str, Any]] = []
    handlers.worker_runtime().clients.client("ec2").meta.events.register(
        "provide-client-params.ec2.RunInstances", lambda params, **_: requests.append(params)
    )

    _start_one(lab)

    assert [request["InstanceType"] for request in requests] == ["t4g.nano"]
    assert alerts_sent() == []


def test_a_restore_run_without_a_good_backup_reports_that_nothing_was_tested(lab: Lab) -> None:
    lab.setup()

    planned = lab.plan_restore()

    assert [m["kind"] for m in planned] == ["restore_sweep"]
    [report] = alerts_sent()
    assert report["alert"] == "restore test found nothing to test"


def test_a_validation_document_that_does_not_exist_means_the_test_cannot_run(lab: Lab, infra: Infra) -> None:
    _instance_profile(infra)
    lab.setup(**{**VALIDATION, "validation_document": "no-such-document"})
    image_id = lab.seed_backup()
    _test, instance_id, after = _start_one(lab)

    lab.checks_until_done(after)

    [alert] = alerts_sent()
    assert alert["alert"] == "restore test cannot run"
    assert "InvalidDocument" in alert["reason"]
    assert tagging.RESTORE_RESULT not in lab.image_tags(image_id)
    assert lab.instance(instance_id)["State"]["Name"] in ("shutting-down", "terminated")
