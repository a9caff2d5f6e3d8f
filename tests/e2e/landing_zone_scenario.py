"""examples/landing-zone on the local AWS: an organization made first (the hub is its management account; two
workload accounts under the `Workloads` OU, one of them in a child OU; and a suspended one), the example applied with
its OU targeting and those ids, then the hub's AMI backup policy run against the accounts of the OU through the
roles `modules/target-account-role` made there, the handlers acting with their function roles' credentials.

Two-level fan-out, as deployed: the planner resolves the OU's ACTIVE accounts through Organizations and enqueues
one `plan_scope` item per account x Region; the worker turns each into that account's `create_image` items
through the account's role; the AMIs are made in the workload accounts.

The emulator keeps one set of backends per account (moto: the account of a temporary key is the account of the
role it was issued for), so the hub's dummy key sees nothing of the workload accounts and a workload resource is
reached only through a role session. What AWS would refuse, the fidelity patches refuse too: AssumeRole is decided
by the workload role's trust policy and the caller's identity policy (I1, with aws:PrincipalOrgID from the
organizations the harness joined the accounts to), and the workload role's policies decide every mutating EC2 call
of its sessions (I2), see tests/support/moto_fidelity.py.

The Lambda service runs a function with its execution role's temporary credentials: the harness assumes each
deployed function role (moto's STS, as Lambda would) and hands those credentials to the handler in its environment
(`FunctionRoleAws`), so the handlers' own AssumeRole into the workload accounts is the hub role's, as deployed.

Completion is event-driven: EC2 emits `EC2 AMI State Change` in the workload account and Region of the image; the
harness plays EC2 and puts it on that account's default bus in that Region (PutEvents with the account's
credentials), and from there the example's spoke rule (modules/event-forwarding) delivers it to the hub's default
bus, whose ami-backup rule routes it to the work queue. That hop is moto's own cross-account/cross-Region
event-bus target, made faithful by fidelity patch D5 (the event arrives as it was: its `account`, `region`, `id`,
`time`, `resources`); not evaluated there: the spoke rule's role and the hub bus's policy (the organization
permission), which the assertions read back from what Terraform deployed instead. The delayed check stays the
safety net and finds each backup already complete.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Mapping
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
# How Terraform's workload providers reach the accounts (the example's deploy role default); no one created it, so
# the emulator lets Terraform and the harness in the same way, as the accounts' administrator. On AWS,
# Organizations creates it in every account CreateAccount makes, trusting the management account.
DEPLOY_ROLE = "OrganizationAccountAccessRole"
OSAKA = "ap-northeast-3"
# Organizations has one endpoint, in us-east-1 for the aws partition.
ORGANIZATIONS_REGION = "us-east-1"
WORKLOADS_OU = "Workloads"
PRODUCTION_OU = "Production"
BACKUP_TAG = {"Backup": "daily"}
OWNERSHIP_KEYS = ("ops-automation:managed-by", "ops-automation:policy")
SOURCE_INSTANCE = "ops-automation:source-instance"
SLOT = "ops-automation:slot"
STATE_CHANGE = "EC2 AMI State Change"


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
# The organization, made before the apply: its ids are the example's inputs
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Organization:
    id: str
    root: str
    workloads_ou: str  # the OU the example targets (recursively)
    production_ou: str  # a child OU of Workloads
    workload_a: str  # in Workloads
    workload_b: str  # in Workloads/Production: reached because the OU is targeted recursively
    suspended: str  # in Workloads, suspended by AWS: the planner skips it (no role, nothing deployed there)

    @property
    def workloads(self) -> tuple[str, str]:
        return (self.workload_a, self.workload_b)


def _new_account(organizations: Any, name: str, parent: str, root: str) -> str:
    """CreateAccount, waited for (AWS creates accounts asynchronously; moto answers SUCCEEDED at once), then moved
    from the root into `parent`."""
    status = organizations.create_account(Email=f"{name}@example.com", AccountName=name)["CreateAccountStatus"]
    for _attempt in range(60):
        if status["State"] != "IN_PROGRESS":
            break
        time.sleep(1)
        status = organizations.describe_create_account_status(CreateAccountRequestId=status["Id"])[
            "CreateAccountStatus"
        ]
    if status["State"] != "SUCCEEDED":
        raise RuntimeError(f"CreateAccount {name}: {status}")
    account = str(status["AccountId"])
    organizations.move_account(AccountId=account, SourceParentId=root, DestinationParentId=parent)
    return account


def create_organization(aws: LocalAws) -> Organization:
    """The organization of the landing zone, made with the hub's credentials (the hub is its management account):
    moto generates every id. Its accounts join the fidelity's organizations (aws:PrincipalOrgID of their sessions,
    aws:ResourceOrgID of their roles)."""
    organizations = dataclasses.replace(aws, region=ORGANIZATIONS_REGION).client("organizations")
    organization_id = str(organizations.create_organization(FeatureSet="ALL")["Organization"]["Id"])
    root = str(organizations.list_roots()["Roots"][0]["Id"])
    workloads = organizations.create_organizational_unit(ParentId=root, Name=WORKLOADS_OU)["OrganizationalUnit"]["Id"]
    production = organizations.create_organizational_unit(ParentId=workloads, Name=PRODUCTION_OU)["OrganizationalUnit"][
        "Id"
    ]
    workload_a = _new_account(organizations, "workload-a", workloads, root)
    workload_b = _new_account(organizations, "workload-b", production, root)
    suspended = _new_account(organizations, "workload-suspended", workloads, root)
    # AWS suspends an account itself (no API does; fidelity E55): Status and State SUSPENDED.
    aws.fidelity.accounts.suspend_account(suspended)
    for account in (HUB_ACCOUNT, workload_a, workload_b, suspended):
        aws.fidelity.iam.join_organization(account, organization_id)
    return Organization(organization_id, root, str(workloads), str(production), workload_a, workload_b, suspended)


def example_inputs(organization: Organization) -> dict[str, Any]:
    """The example's inputs for this organization (what `-var` would pass)."""
    return {
        "workload_a_deploy_role_arn": f"arn:aws:iam::{organization.workload_a}:role/{DEPLOY_ROLE}",
        "workload_b_deploy_role_arn": f"arn:aws:iam::{organization.workload_b}:role/{DEPLOY_ROLE}",
        "organization_id": organization.id,
        "organizational_units": [{"id": organization.workloads_ou, "recursive": True}],
    }


def variant(organization: Organization) -> scenario.Variant:
    """The example with this organization's ids as its variables' defaults (an override file: the harness stages
    examples, it passes no -var)."""
    blocks = [
        f'variable "{name}" {{\n  default = {json.dumps(value)}\n}}\n'
        for name, value in example_inputs(organization).items()
    ]
    # HCL takes JSON's object syntax with ":" as well as "=", and JSON strings and lists as they are.
    override = "# Written by tests/e2e/landing_zone_scenario.py: the organization made on the local AWS.\n" + "\n".join(
        blocks
    )
    return scenario.Variant(EXAMPLE, "organization", override)


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
    hub_tagged: str  # in the hub account: the policy targets the accounts of the OU only
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


def create_fleet(aws: LocalAws, policy_name: str, organization: Organization) -> Fleet:
    tagged: dict[str, tuple[str, str]] = {}
    workload_a = administrator(aws, organization.workload_a)
    for account, credentials, region in (
        (organization.workload_a, workload_a, aws.region),
        (organization.workload_a, workload_a, OSAKA),
        (organization.workload_b, administrator(aws, organization.workload_b), aws.region),
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
# EC2's event emitter, in the workload accounts
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class SpokeEmitter:
    """Plays EC2 in the workload accounts: `EC2 AMI State Change` for each image of the policy that reached
    available/failed, put on the default bus of the image's own account and Region (where EC2 emits it) - never on
    the hub's. Only the example's forwarding rules can carry it to the hub."""

    aws: LocalAws
    clock: SimulatedClock
    policy_name: str
    buses: dict[tuple[str, str], Any]  # (account, region) -> EventBridge client acting in that account
    ec2: dict[tuple[str, str], Any]
    announced: set[str] = field(default_factory=set)
    emitted: list[dict[str, str]] = field(default_factory=list)  # image, account, region of each event put

    def announce(self) -> int:
        count = 0
        for (account, region), ec2 in self.ec2.items():
            entries = []
            for image_id, image in registered(ec2, self.policy_name).items():
                if image_id in self.announced or image["State"] not in ("available", "failed"):
                    continue
                self.announced.add(image_id)
                detail = {"RequestId": f"e2e-{image_id}", "ImageId": image_id, "State": image["State"]}
                detail["ErrorMessage"] = image.get("StateReason", {}).get("Message", "")
                entries.append(
                    {
                        "Source": "aws.ec2",
                        "DetailType": STATE_CHANGE,
                        "Resources": [f"arn:aws:ec2:{region}::image/{image_id}"],
                        "Detail": json.dumps(detail),
                        "Time": self.clock.now(),
                    }
                )
                self.emitted.append({"image": image_id, "account": account, "region": region})
            for start in range(0, len(entries), 10):
                response = self.buses[(account, region)].put_events(Entries=entries[start : start + 10])
                if response.get("FailedEntryCount"):
                    raise RuntimeError(f"put_events rejected entries: {response['Entries']}")
            count += len(entries)
        return count


# ---------------------------------------------------------------------------------------------------------------
# The series
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class DayReport(SlotReport):
    planned: dict[str, Any] = field(default_factory=dict)  # the planner's answer
    created: dict[str, str] = field(default_factory=dict)  # image id -> source instance
    retired: dict[str, str] = field(default_factory=dict)
    # The ledger state of each of the day's images once the forwarded events were handled, before simulated time
    # moved on (the delayed checks still waiting in the queue): what the events alone completed.
    completed_by_events: dict[str, str] = field(default_factory=dict)
    checks_waiting: int = 0


@dataclass(frozen=True)
class Series:
    deployment: Deployment
    organization: Organization
    fleet: Fleet
    days: list[DayReport]
    snapshots_of: dict[str, tuple[str, ...]]  # every backup's snapshots
    log: HandlerLog
    decisions: tuple[IamDecision, ...]  # what I1/I2 decided during the series (CloudTrail's view)
    events: tuple[dict[str, str], ...]  # each state event put on a workload account's bus


def registered(ec2: Any, policy_name: str | None = None) -> dict[str, dict[str, Any]]:
    filters = [{"Name": "tag:ops-automation:policy", "Values": [policy_name]}] if policy_name else []
    pages = ec2.get_paginator("describe_images").paginate(Owners=["self"], Filters=filters)
    return {image["ImageId"]: image for page in pages for image in page["Images"] if image["State"] != DEREGISTERED}


def workload_clients(aws: LocalAws, accounts: tuple[str, ...], service: str = "ec2") -> dict[tuple[str, str], Any]:
    """A client of `service` in each workload account and Region, as its administrator."""
    admins = {account: administrator(aws, account) for account in accounts}
    return {
        (account, region): client(aws, service, credentials, region)
        for account, credentials in admins.items()
        for region in (aws.region, OSAKA)
    }


def _ledger_states(aws: LocalAws, deployment: Deployment, images: set[str]) -> dict[str, str]:
    return {
        str(item["sk"]): str(item.get("state", "?"))
        for item in scenario.ledger_items(aws, deployment.ledger_table)
        if item["sk"] in images
    }


def run_series(
    aws: LocalAws, deployment: Deployment, roles: Mapping[str, str], organization: Organization, days: int
) -> Series:
    """On empty EC2 accounts, create the fleet, then run `days` daily slots ending before now, the functions
    acting with their deployed roles and the workload accounts' state events forwarded to the hub."""
    slots = scenario.daily_slots(deployment.schedule_expression, deployment.schedule_timezone, days, datetime.now(UTC))
    clock = SimulatedClock(slots[0] - timedelta(hours=1))
    scenario.fresh_ec2(aws)
    reports: list[DayReport] = []
    snapshots_of: dict[str, tuple[str, ...]] = {}
    with scenario.simulated_aws_time(aws, clock):
        fleet = create_fleet(aws, deployment.policy_name, organization)
        # Lambda names the execution role session after the function.
        credentials = {function: assume(aws, arn, function) for function, arn in roles.items()}
        policy = HubPolicy(FunctionRoleAws(aws, credentials), deployment, clock)
        workloads = workload_clients(aws, organization.workloads)
        emitter = SpokeEmitter(
            aws, clock, deployment.policy_name, workload_clients(aws, organization.workloads, "events"), workloads
        )
        before: dict[str, str] = {}
        for slot in slots:
            day = DayReport(slot=scenario.format_slot(slot))
            clock.set(slot)
            day.planned = policy.plan(slot)
            mark = len(emitter.emitted)

            def settled(day: DayReport = day, mark: int = mark) -> None:
                images = {event["image"] for event in emitter.emitted[mark:]}
                day.completed_by_events = _ledger_states(aws, deployment, images)
                day.checks_waiting = policy.queue_depths()[0]

            policy.drain(day, _recording(emitter.announce, settled))
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
    return Series(
        deployment,
        organization,
        fleet,
        reports,
        snapshots_of,
        policy.log,
        tuple(aws.fidelity.iam.decisions),
        tuple(emitter.emitted),
    )


def _recording(announce: Callable[[], int], settled: Callable[[], None]) -> Callable[[], int]:
    """`announce` for `DeployedPolicy.drain`, calling `settled` the first time there is nothing left to announce
    after something was: the events were handled, and simulated time has not moved yet (drain advances it only
    after an announce that put nothing)."""
    state = {"announced": False, "settled": False}

    def wrapped() -> int:
        put = announce()
        if put:
            state["announced"] = True
        elif state["announced"] and not state["settled"]:
            state["settled"] = True
            settled()
        return put

    return wrapped


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
