"""examples/landing-zone on the local AWS: the hub's AMI backup policy run against two workload accounts through
the roles `modules/target-account-role` made there, the handlers acting with their function roles' credentials.

The emulator keeps one set of backends per account (moto: the account of a temporary key is the account of the
role it was issued for), so the hub's dummy key sees nothing of the workload accounts and a workload resource is
reached only through a role session. What AWS would refuse, the fidelity patches refuse too: AssumeRole is decided
by the workload role's trust policy and the caller's identity policy (I1), and the workload role's policies decide
every mutating EC2 call of its sessions (I2), see tests/support/moto_fidelity.py.

The Lambda service runs a function with its execution role's temporary credentials: the harness assumes each
deployed function role (moto's STS, as Lambda would) and hands those credentials to the handler in its environment
(`FunctionRoleAws`), so the handlers' own AssumeRole into the workload accounts is the hub role's, as deployed.
Completion in the workload accounts is driven by the worker's delayed checks: EC2 emits the AMI state events in the
workload account, where no rule forwards them (modules/ami-backup README, "Cross-account and multi-region").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError
from scripts.local_aws import ACCOUNT_ID as HUB_ACCOUNT
from scripts.local_aws import LocalAws
from tests.e2e import scenario
from tests.e2e.scenario import DeployedPolicy, Deployment, HandlerLog, SimulatedClock, SlotReport
from tests.support.moto_fidelity import DEREGISTERED, IamDecision, MotoFidelity

EXAMPLE = Path("examples/landing-zone")
WORKLOAD_A = "111111111111"
WORKLOAD_B = "222222222222"
# How Terraform's workload providers reach the accounts (the example's deploy role default); no one created it, so
# the emulator lets the harness in the same way, as the accounts' administrator.
DEPLOY_ROLE = "OrganizationAccountAccessRole"
OSAKA = "ap-northeast-3"
BACKUP_TAG = {"Backup": "daily"}
OWNERSHIP_KEYS = ("ops-automation:managed-by", "ops-automation:policy")
SOURCE_INSTANCE = "ops-automation:source-instance"
SLOT = "ops-automation:slot"


Credentials = Mapping[str, str]


def assume(
    aws: LocalAws, role_arn: str, session_name: str, caller: Credentials | None = None, **kwargs: Any
) -> Credentials:
    """Temporary credentials of `role_arn`, asked for by `caller` (a role session) or by the dummy key."""
    sts = client(aws, "sts", caller) if caller else aws.client("sts")
    issued = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name, **kwargs)["Credentials"]
    return {
        "AWS_ACCESS_KEY_ID": issued["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": issued["SecretAccessKey"],
        "AWS_SESSION_TOKEN": issued["SessionToken"],
    }


def client(aws: LocalAws, service: str, credentials: Credentials, region: str | None = None) -> Any:
    return boto3.client(
        service,
        region_name=region or aws.region,
        endpoint_url=aws.endpoint,
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=credentials["AWS_SESSION_TOKEN"],
    )


def administrator(aws: LocalAws, account: str) -> Credentials:
    return assume(aws, f"arn:aws:iam::{account}:role/{DEPLOY_ROLE}", "e2e-administrator")


# ---------------------------------------------------------------------------------------------------------------
# The Lambda service's credentials
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class FunctionRoleAws:
    """The local AWS as a function sees it: the harness's clients stay on the dummy key, while the handler process
    environment carries the credentials of the role of the function running (`acting_as`)."""

    local: LocalAws
    role_credentials: dict[str, Credentials]  # function name -> its execution role's session
    acting_as: str | None = None

    @property
    def region(self) -> str:
        return self.local.region

    @property
    def fidelity(self) -> MotoFidelity:
        return self.local.fidelity

    def client(self, service: str) -> Any:
        return self.local.client(service)

    def process_environment(self) -> dict[str, str]:
        environment = self.local.process_environment()
        if self.acting_as is not None:
            environment.update(self.role_credentials[self.acting_as])
        return environment


class HubPolicy(DeployedPolicy):
    """A deployed policy whose functions run with their own role's credentials."""

    aws: FunctionRoleAws

    def _invoke(self, function: str, handler: str, environment: Mapping[str, str], event: Any) -> Any:
        self.aws.acting_as = function
        try:
            return super()._invoke(function, handler, environment, event)
        finally:
            self.aws.acting_as = None


def function_roles(aws: LocalAws, deployment: Deployment) -> dict[str, str]:
    """Function name -> execution role ARN, as deployed."""
    lambda_ = aws.client("lambda")
    return {
        name: lambda_.get_function_configuration(FunctionName=name)["Role"]
        for name in (deployment.planner_function, deployment.worker_function)
    }


# ---------------------------------------------------------------------------------------------------------------
# The workload accounts' instances
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fleet:
    tagged: dict[str, tuple[str, str]]  # instance id -> (account, region), tagged Backup = daily
    untagged: str  # workload A, Tokyo
    hub_tagged: str  # in the hub account: the policy targets the workload accounts only
    unowned_image: str  # workload A's own AMI: never the hub's to touch
    unowned_snapshots: tuple[str, ...]
    foreign_snapshot: str  # carries the ownership tags of another policy


def _launch(ec2: Any, tags: Mapping[str, str]) -> str:
    extra = (
        {"TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]}
        if tags
        else {}
    )
    response = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, InstanceType="t3.micro", **extra)
    return str(response["Instances"][0]["InstanceId"])


def create_fleet(aws: LocalAws, policy_name: str) -> Fleet:
    tagged: dict[str, tuple[str, str]] = {}
    workload_a = administrator(aws, WORKLOAD_A)
    for account, credentials, region in (
        (WORKLOAD_A, workload_a, aws.region),
        (WORKLOAD_A, workload_a, OSAKA),
        (WORKLOAD_B, administrator(aws, WORKLOAD_B), aws.region),
    ):
        tagged[_launch(client(aws, "ec2", credentials, region), BACKUP_TAG)] = (account, region)
    ec2_a = client(aws, "ec2", workload_a)
    untagged = _launch(ec2_a, {})
    hub_tagged = _launch(aws.client("ec2"), BACKUP_TAG)
    source = next(iter(tagged))
    unowned = str(ec2_a.create_image(InstanceId=source, Name="golden-manual")["ImageId"])
    image = ec2_a.describe_images(ImageIds=[unowned])["Images"][0]
    snapshots = tuple(m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m)
    volume = ec2_a.describe_instances(InstanceIds=[untagged])["Reservations"][0]["Instances"][0]
    volume_id = volume["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    other_policy = {OWNERSHIP_KEYS[0]: "terraform-aws-ops-automation", OWNERSHIP_KEYS[1]: f"{policy_name}-other"}
    foreign = ec2_a.create_snapshot(
        VolumeId=volume_id,
        TagSpecifications=[
            {"ResourceType": "snapshot", "Tags": [{"Key": k, "Value": v} for k, v in other_policy.items()]}
        ],
    )["SnapshotId"]
    return Fleet(tagged, untagged, hub_tagged, unowned, snapshots, str(foreign))


# ---------------------------------------------------------------------------------------------------------------
# The series
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class DayReport(SlotReport):
    created: dict[str, str] = field(default_factory=dict)  # image id -> source instance
    retired: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Series:
    deployment: Deployment
    fleet: Fleet
    days: list[DayReport]
    snapshots_of: dict[str, tuple[str, ...]]  # every backup's snapshots
    log: HandlerLog
    decisions: tuple[IamDecision, ...]  # what I1/I2 decided during the series (CloudTrail's view)


def registered(ec2: Any, policy_name: str | None = None) -> dict[str, dict[str, Any]]:
    filters = [{"Name": "tag:ops-automation:policy", "Values": [policy_name]}] if policy_name else []
    pages = ec2.get_paginator("describe_images").paginate(Owners=["self"], Filters=filters)
    return {image["ImageId"]: image for page in pages for image in page["Images"] if image["State"] != DEREGISTERED}


def workload_clients(aws: LocalAws) -> dict[tuple[str, str], Any]:
    """EC2 of each workload account and region, as its administrator."""
    admins = {account: administrator(aws, account) for account in (WORKLOAD_A, WORKLOAD_B)}
    return {
        (account, region): client(aws, "ec2", credentials, region)
        for account, credentials in admins.items()
        for region in (aws.region, OSAKA)
    }


def run_series(aws: LocalAws, deployment: Deployment, roles: Mapping[str, str], days: int) -> Series:
    """On empty EC2 accounts, create the fleet, then run `days` daily slots ending before now, the functions
    acting with their deployed roles."""
    slots = scenario.daily_slots(deployment.schedule_expression, deployment.schedule_timezone, days, datetime.now(UTC))
    clock = SimulatedClock(slots[0] - timedelta(hours=1))
    scenario.fresh_ec2(aws)
    reports: list[DayReport] = []
    snapshots_of: dict[str, tuple[str, ...]] = {}
    with scenario.simulated_aws_time(aws, clock):
        fleet = create_fleet(aws, deployment.policy_name)
        # Lambda names the execution role session after the function.
        credentials = {function: assume(aws, arn, function) for function, arn in roles.items()}
        policy = HubPolicy(FunctionRoleAws(aws, credentials), deployment, clock)
        workloads = workload_clients(aws)
        before: dict[str, str] = {}
        for slot in slots:
            day = DayReport(slot=scenario.format_slot(slot))
            clock.set(slot)
            policy.plan(slot)
            policy.drain(day, lambda: 0)
            after: dict[str, str] = {}
            for ec2 in workloads.values():
                for image_id, image in registered(ec2, deployment.policy_name).items():
                    tags = {tag["Key"]: tag["Value"] for tag in image.get("Tags", [])}
                    after[image_id] = tags.get(SOURCE_INSTANCE, "?")
                    snapshots_of[image_id] = tuple(
                        m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m
                    )
            day.created = {i: s for i, s in after.items() if i not in before}
            day.retired = {i: s for i, s in before.items() if i not in after}
            reports.append(day)
            before = after
    return Series(deployment, fleet, reports, snapshots_of, policy.log, tuple(aws.fidelity.iam.decisions))


def _code(call: Any) -> str:
    try:
        call()
    except ClientError as error:
        return str(error.response["Error"]["Code"])
    return "allowed"


@dataclass(frozen=True)
class Refusals:
    """What the hub may not do in workload account A, each as the error code AWS answered ("allowed" otherwise)."""

    worker_deregisters_unowned_image: str
    worker_deletes_unowned_snapshot: str
    worker_deletes_other_policys_snapshot: str
    worker_forges_ownership_tags: str
    worker_without_external_id: str
    intruder_with_external_id: str
    ebs_worker_into_ami_backup_role: str
    ebs_worker_into_its_own_role: str
    decisions: tuple[IamDecision, ...]


def refusals(
    aws: LocalAws,
    fleet: Fleet,
    ami_worker_role: str,
    ebs_worker_role: str,
    workload_roles: Mapping[str, str],  # module key -> workload A role ARN
    ami_session: str,
    ebs_session: str,
    external_id: str,
) -> Refusals:
    """The hub's workers acting directly (a forged message could make them try), and a hub role that is no
    function's, against workload account A."""
    first = len(aws.fidelity.iam.decisions)
    worker = assume(aws, ami_worker_role, "e2e-lambda-worker")
    ami_role = workload_roles["ami-backup"]
    in_a = assume(aws, ami_role, ami_session, worker, ExternalId=external_id)
    ec2 = client(aws, "ec2", in_a)
    ownership = [
        {"Key": OWNERSHIP_KEYS[0], "Value": "terraform-aws-ops-automation"},
        {"Key": OWNERSHIP_KEYS[1], "Value": ami_session.removeprefix("ops-automation-")},
    ]
    iam = aws.client("iam")
    intruder_name = "landing-zone-intruder"
    iam.create_role(
        RoleName=intruder_name,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )
    iam.put_role_policy(
        RoleName=intruder_name,
        PolicyName="assume-anything",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}
        ),
    )
    intruder = assume(aws, f"arn:aws:iam::{HUB_ACCOUNT}:role/{intruder_name}", "e2e-intruder")
    ebs_worker = assume(aws, ebs_worker_role, "e2e-lambda-ebs-worker")
    try:
        return Refusals(
            worker_deregisters_unowned_image=_code(lambda: ec2.deregister_image(ImageId=fleet.unowned_image)),
            worker_deletes_unowned_snapshot=_code(lambda: ec2.delete_snapshot(SnapshotId=fleet.unowned_snapshots[0])),
            worker_deletes_other_policys_snapshot=_code(lambda: ec2.delete_snapshot(SnapshotId=fleet.foreign_snapshot)),
            worker_forges_ownership_tags=_code(
                lambda: ec2.create_tags(Resources=[fleet.unowned_image], Tags=ownership)
            ),
            worker_without_external_id=_code(lambda: assume(aws, ami_role, ami_session, worker)),
            intruder_with_external_id=_code(
                lambda: assume(aws, ami_role, ami_session, intruder, ExternalId=external_id)
            ),
            ebs_worker_into_ami_backup_role=_code(
                lambda: assume(aws, ami_role, ebs_session, ebs_worker, ExternalId=external_id)
            ),
            ebs_worker_into_its_own_role=_code(
                lambda: assume(aws, workload_roles["ebs-snapshot"], ebs_session, ebs_worker, ExternalId=external_id)
            ),
            decisions=tuple(aws.fidelity.iam.decisions[first:]),
        )
    finally:
        iam.delete_role_policy(RoleName=intruder_name, PolicyName="assume-anything")
        iam.delete_role(RoleName=intruder_name)
