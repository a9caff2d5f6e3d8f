"""Landing-zone scenarios, tier 1: the real ami-backup and ebs-snapshot handlers fanned out over an organization.

moto holds an organization (the emulator's default account is its management account and the hub), nested OUs,
member accounts that CreateAccount made, and in each the target role as modules/target-account-role makes it:
trusting the hub function's role with a `ops-automation-*` session name and aws:PrincipalOrgID, its permissions the
shape of the module's target policy. The handlers act as that hub role's session (not the emulator's key), so the
fidelity patches decide every step as AWS would: the role's trust and the hub's identity policy with
aws:ResourceOrgID (I1), the role's policy on the EC2 changes (I2), opt-in Regions (E53), SCPs (E54), account states
(E55). The wiring is the deployed one, played by the test with a fixed clock: planner → queue → worker (scope items)
→ queue → worker (work items) → events and delayed checks."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.client
import botocore.loaders
import botocore.session
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
    run_instances,
    snapshot_event,
    sqs_event,
    take_messages,
    work_body,
)
from tests.support.moto_fidelity import MotoFidelity

from ops_automation.ami_backup import handlers as ami_handlers
from ops_automation.core import tagging
from ops_automation.core.events import ScopeMessage, format_time, to_body
from ops_automation.ebs_snapshot import handlers as ebs_handlers

SCP = "SERVICE_CONTROL_POLICY"
AMI_ROLE = "ops-automation-ami-backup"
EBS_ROLE = "ops-automation-ebs-snapshot"
HUB_ROLE_NAME = "ops-automation-nightly-functions"
HUB_ROLE = f"arn:aws:iam::{ACCOUNT}:role/{HUB_ROLE_NAME}"
OPT_IN_REGION = "ap-east-1"
OWNERSHIP = {tagging.MANAGED_BY: tagging.MANAGED_BY_VALUE, tagging.POLICY: POLICY}


def _document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _owned(prefix: str, **extra: str) -> dict[str, Any]:
    return {"StringEquals": {**{f"{prefix}/{key}": value for key, value in OWNERSHIP.items()}, **extra}}


IMAGES_AND_SNAPSHOTS = ["arn:aws:ec2:*::image/*", "arn:aws:ec2:*::snapshot/*"]
# The shape of the target policies modules/target-account-role attaches (ami-backup's and ebs-snapshot's grants:
# modules/*/iam.tf with modules/internal's ownership conditions).
AMI_TARGET_POLICY = _document(
    {
        "Effect": "Allow",
        "Action": ["ec2:DescribeInstances", "ec2:DescribeImages", "ec2:DescribeRegions"],
        "Resource": "*",
    },
    {
        "Effect": "Allow",
        "Action": "ec2:CreateImage",
        "Resource": "arn:aws:ec2:*:*:instance/*",
        "Condition": {"StringEquals": {"aws:ResourceTag/Backup": "nightly"}},
    },
    {
        "Effect": "Allow",
        "Action": "ec2:CreateImage",
        "Resource": IMAGES_AND_SNAPSHOTS,
        "Condition": _owned("aws:RequestTag"),
    },
    {
        "Effect": "Allow",
        "Action": "ec2:CreateTags",
        "Resource": IMAGES_AND_SNAPSHOTS,
        "Condition": _owned("aws:RequestTag", **{"ec2:CreateAction": "CreateImage"}),
    },
    {
        "Effect": "Allow",
        "Action": ["ec2:CreateTags", "ec2:DeregisterImage", "ec2:DeleteSnapshot"],
        "Resource": IMAGES_AND_SNAPSHOTS,
        "Condition": _owned("aws:ResourceTag"),
    },
)
EBS_TARGET_POLICY = _document(
    {
        "Effect": "Allow",
        "Action": ["ec2:DescribeVolumes", "ec2:DescribeSnapshots", "ec2:DescribeRegions"],
        "Resource": "*",
    },
    {
        "Effect": "Allow",
        "Action": "ec2:CreateSnapshot",
        "Resource": "arn:aws:ec2:*:*:volume/*",
        "Condition": {"StringEquals": {"aws:ResourceTag/Backup": "hourly"}},
    },
    {
        "Effect": "Allow",
        "Action": "ec2:CreateSnapshot",
        "Resource": "arn:aws:ec2:*::snapshot/*",
        "Condition": _owned("aws:RequestTag"),
    },
    {
        "Effect": "Allow",
        "Action": "ec2:CreateTags",
        "Resource": "arn:aws:ec2:*::snapshot/*",
        "Condition": _owned("aws:RequestTag", **{"ec2:CreateAction": "CreateSnapshot"}),
    },
    {
        "Effect": "Allow",
        "Action": ["ec2:CreateTags", "ec2:DeleteSnapshot"],
        "Resource": "arn:aws:ec2:*::snapshot/*",
        "Condition": _owned("aws:ResourceTag"),
    },
)


class _Paths(list[str]):
    """Search paths that ignore a path already there (every boto3 Session appends its own data path)."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


@pytest.fixture(autouse=True)
def shared_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """Speed only: every boto3 Session (the hub's, and one per assumed role) reads the service models from one
    loader instead of from disk again (the answers are the same)."""
    loader = botocore.loaders.create_loader()
    loader._search_paths = _Paths(loader.search_paths)
    original = botocore.session.get_session

    def get_session(env_vars: Any = None) -> botocore.session.Session:
        session = original(env_vars)
        session.register_component("data_loader", loader)
        return session

    monkeypatch.setattr(boto3.session.botocore.session, "get_session", get_session)
    # One client class per service, not one per session: the classes of two sessions of this process are the same.
    classes: dict[str, type] = {}
    create_class = botocore.client.ClientCreator._create_client_class

    def client_class(self: botocore.client.ClientCreator, service_name: str, service_model: Any) -> type:
        if service_name not in classes:
            classes[service_name] = create_class(self, service_name, service_model)
        return classes[service_name]

    monkeypatch.setattr(botocore.client.ClientCreator, "_create_client_class", client_class)


def _credentials_of(credentials: dict[str, Any]) -> dict[str, str]:
    return {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }


@dataclass
class Zone:
    """The organization, and the operator's view into each member account (its OrganizationAccountAccessRole)."""

    fidelity: MotoFidelity
    clock: Clock
    org: Any
    org_id: str
    root: str
    ous: dict[str, str]  # name -> OU id: workloads (under the root), prod (under workloads), sandbox (under the root)
    accounts: dict[str, str]  # name -> account id
    admin: dict[str, dict[str, str]] = field(default_factory=dict)  # account id -> credentials as client kwargs
    instances: dict[str, str] = field(default_factory=dict)  # account id -> its instance tagged Backup=nightly

    clients: dict[tuple[str, str, str], Any] = field(default_factory=dict)

    def client(self, account: str, service: str, region: str = REGION) -> Any:
        key = (account, service, region)
        if key not in self.clients:
            self.clients[key] = boto3.client(service, region_name=region, **self.admin[account])
        return self.clients[key]

    def images(self, account: str, region: str = REGION) -> dict[str, dict[str, Any]]:
        images = self.client(account, "ec2", region).describe_images(Owners=["self"])["Images"]
        return {image["ImageId"]: image for image in images if image["State"] != "deregistered"}

    def add_target_role(self, account: str, name: str = AMI_ROLE, policy: str = AMI_TARGET_POLICY) -> None:
        trust = _document(
            {
                "Sid": "HubFunctions",
                "Effect": "Allow",
                "Principal": {"AWS": [HUB_ROLE]},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringLike": {"sts:RoleSessionName": "ops-automation-*"},
                    "StringEquals": {"aws:PrincipalOrgID": self.org_id},
                },
            }
        )
        iam = self.client(account, "iam")
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)
        iam.put_role_policy(RoleName=name, PolicyName="business", PolicyDocument=policy)

    def scp(self, target: str, *statements: dict[str, Any]) -> None:
        created = self.org.create_policy(
            Name=f"scp-{target}", Type=SCP, Description="test", Content=_document(*statements)
        )
        self.org.attach_policy(PolicyId=created["Policy"]["PolicySummary"]["Id"], TargetId=target)


@pytest.fixture
def zone(fidelity: MotoFidelity, infra: Infra, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Iterator[Zone]:
    """root ─ workloads ─ prod: prod-a, prod-b, prod-c
            │          └ dev
            └ sandbox: sandbox
    every member account with the ami-backup target role and one instance tagged Backup=nightly (and an untagged
    one); the hub (the management account) has a tagged instance too, and is not targeted. Then the process acts as
    the hub functions' role."""
    org = boto3.client("organizations", region_name=REGION)
    org_id = org.create_organization(FeatureSet="ALL")["Organization"]["Id"]
    root = org.list_roots()["Roots"][0]["Id"]
    org.enable_policy_type(RootId=root, PolicyType=SCP)
    ous: dict[str, str] = {}
    for name, parent in (("workloads", root), ("prod", "workloads"), ("sandbox", root)):
        ous[name] = org.create_organizational_unit(ParentId=ous.get(parent, parent), Name=name)["OrganizationalUnit"][
            "Id"
        ]
    placement = {"prod-a": "prod", "prod-b": "prod", "prod-c": "prod", "dev": "workloads", "sandbox": "sandbox"}
    accounts: dict[str, str] = {}
    for name, unit in placement.items():
        status = org.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]
        accounts[name] = status["AccountId"]
        org.move_account(AccountId=accounts[name], SourceParentId=root, DestinationParentId=ous[unit])
    made = Zone(fidelity, clock, org, org_id, root, ous, accounts)
    sts = boto3.client("sts", region_name=REGION)
    for account in accounts.values():
        access = f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole"
        made.admin[account] = _credentials_of(
            sts.assume_role(RoleArn=access, RoleSessionName="operator")["Credentials"]
        )
        made.add_target_role(account)
        ec2 = made.client(account, "ec2")
        made.instances[account] = run_instances(ec2, 1, {"Backup": "nightly"})[0]
        run_instances(ec2, 1)
    run_instances(infra.ec2, 1, {"Backup": "nightly"})  # the hub's own: not targeted
    # The hub functions' role: trusted by Lambda, allowed to assume the target roles of the organization only
    # (modules/internal: sts:AssumeRole on arn:<partition>:iam::*:role/<target_role_name> with aws:ResourceOrgID).
    hub_iam = boto3.client("iam", region_name=REGION)
    lambda_trust = _document(
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    )
    hub_iam.create_role(RoleName=HUB_ROLE_NAME, AssumeRolePolicyDocument=lambda_trust)
    assume = {
        "Effect": "Allow",
        "Action": "sts:AssumeRole",
        "Resource": [f"arn:aws:iam::*:role/{AMI_ROLE}", f"arn:aws:iam::*:role/{EBS_ROLE}"],
        "Condition": {"StringEquals": {"aws:ResourceOrgID": org_id}},
    }
    hub_iam.put_role_policy(RoleName=HUB_ROLE_NAME, PolicyName="assume-targets", PolicyDocument=_document(assume))
    hub = sts.assume_role(RoleArn=HUB_ROLE, RoleSessionName="lambda")["Credentials"]
    for name, value in _credentials_of(hub).items():
        monkeypatch.setenv(name.upper(), value)
    monkeypatch.delenv("AWS_SECURITY_TOKEN", raising=False)
    yield made


def _ous(*names_and_recursion: tuple[str, bool], zone: Zone) -> str:
    return json.dumps([{"id": zone.ous[name], "recursive": recursive} for name, recursive in names_and_recursion])


class Wiring:
    """Plays the deployed wiring of one module: the schedule invokes the planner, SQS feeds the worker."""

    def __init__(self, handlers: Any, clock: Clock) -> None:
        self.handlers = handlers
        self.clock = clock
        self.results: list[dict[str, Any]] = []

    def plan(self) -> dict[str, Any]:
        return dict(self.handlers.plan_handler({"scheduled_time": format_time(self.clock.now)}, FakeContext()))

    def work(self, bodies: list[str]) -> None:
        # Every handled item's result, as handle_item returns it (the work handler keeps only failures).
        original = self.handlers.handle_item

        def recording(rt: Any, item: Any) -> dict[str, Any]:
            result = original(rt, item)
            self.results.append(result)
            return dict(result)

        self.handlers.handle_item = recording
        try:
            assert self.handlers.work_handler(sqs_event(bodies), FakeContext()) == {"batchItemFailures": []}
        finally:
            self.handlers.handle_item = original

    def run_kinds(self, *kinds: str) -> list[dict[str, Any]]:
        """Hand the worker every queued message of these kinds (the rest stay queued); returns them."""
        messages = take_messages()
        chosen = [m for m in messages if m["kind"] in kinds]
        rest = [m for m in messages if m["kind"] not in kinds]
        if chosen:
            self.work([work_body(m) for m in chosen])
        _requeue(rest)
        return chosen

    def drain(self) -> None:
        """Let time pass and hand the worker every delayed message (checks, snapshot purges) until none is left."""
        for _round in range(20):
            messages = take_messages()
            if not messages:
                return
            self.clock.advance(minutes=15)
            self.work([work_body(m) for m in messages])
            assert not [r for r in self.results if r.get("outcome") == "failed"]
        raise AssertionError("the work queue never drained")

    def slot(self) -> dict[str, Any]:
        """Planner, then the scope items (and the per-region ones they expand into), then the work items."""
        summary = self.plan()
        for _round in range(3):
            if not self.run_kinds("plan_scope"):
                break
        self.run_kinds("create_image", "create_snapshot", "create_snapshots")
        return summary


def _requeue(messages: list[dict[str, Any]]) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.get_queue_url(QueueName="ops-automation-nightly-work")["QueueUrl"]
    for message in messages:
        sqs.send_message(QueueUrl=url, MessageBody=work_body(message))


def _alerts(subject: str) -> list[dict[str, Any]]:
    return [alert for alert in alerts_sent() if alert["_subject"] == subject]


def _backed_up(zone: Zone, *names: str) -> dict[str, int]:
    """The AMIs of each account (of `names`, default all) that has any, as its operator sees them."""
    chosen = {name: zone.accounts[name] for name in names or zone.accounts}
    counts = {name: len(zone.images(account)) for name, account in chosen.items()}
    return {name: number for name, number in counts.items() if number}


@pytest.fixture
def ami(zone: Zone, configure: Configure, clock: Clock) -> Callable[..., Wiring]:
    def configured(ous: str, regions: list[str] | None = None, **overrides: str) -> Wiring:
        configure(
            OPS_TARGET_ORGANIZATIONAL_UNITS=ous,
            OPS_TARGET_ROLE_NAME=AMI_ROLE,
            OPS_TARGET_REGIONS=json.dumps(regions or []),
            **overrides,
        )
        return Wiring(ami_handlers, clock)

    return configured


# ---------------------------------------------------------------------------------------------------------------
# Targeting by OU
# ---------------------------------------------------------------------------------------------------------------


def test_an_ou_backs_up_its_member_accounts_only(zone: Zone, ami: Callable[..., Wiring]) -> None:
    wiring = ami(_ous(("workloads", True), zone=zone))
    summary = wiring.slot()
    assert summary["scopes"] == summary["enqueued"] == 4  # prod-a, prod-b, prod-c, dev; one region each
    assert _backed_up(zone) == {"prod-a": 1, "prod-b": 1, "prod-c": 1, "dev": 1}
    hub = boto3.client("ec2", region_name=REGION).describe_images(Owners=["self"])["Images"]
    assert hub == []  # the hub account is not targeted
    for name in ("prod-a", "dev"):
        account = zone.accounts[name]
        [image] = zone.images(account).values()
        assert tagging.tag_dict(image["Tags"])[tagging.SOURCE_INSTANCE] == zone.instances[account]
    # Each CreateImage was made by the hub's session of the account's target role (I2 decided it there).
    creators = {d.account for d in zone.fidelity.iam.decisions_of("ec2:CreateImage", allowed=True)}
    assert creators == {zone.accounts[name] for name in ("prod-a", "prod-b", "prod-c", "dev")}
    assert alerts_sent() == []


def test_a_non_recursive_ou_leaves_its_child_ous_out(zone: Zone, ami: Callable[..., Wiring]) -> None:
    wiring = ami(_ous(("workloads", False), zone=zone))
    wiring.slot()
    assert _backed_up(zone) == {"dev": 1}


def test_suspended_and_closing_accounts_are_skipped_and_reported_not_failed(
    zone: Zone, ami: Callable[..., Wiring]
) -> None:
    zone.fidelity.accounts.suspend_account(zone.accounts["prod-b"])
    zone.org.close_account(AccountId=zone.accounts["prod-c"])
    wiring = ami(_ous(("prod", True), zone=zone))
    summary = wiring.slot()
    assert sorted(summary["skipped_accounts"]) == sorted(
        [f"{zone.accounts['prod-b']}: SUSPENDED", f"{zone.accounts['prod-c']}: PENDING_CLOSURE"]
    )
    assert summary["scopes"] == 1
    assert _backed_up(zone) == {"prod-a": 1}
    assert alerts_sent() == []
    # Once the closure completed the account is CLOSED: still skipped.
    zone.clock.advance(days=1)
    assert f"{zone.accounts['prod-c']}: CLOSED" in wiring.plan()["skipped_accounts"]


# ---------------------------------------------------------------------------------------------------------------
# One account fails, the others proceed: alerted once, by account id and reason
# ---------------------------------------------------------------------------------------------------------------


def _scope_alerts() -> dict[str, list[str]]:
    by_account: dict[str, list[str]] = {}
    for alert in [a for a in alerts_sent() if a.get("alert") == "account cannot be backed up"]:
        by_account.setdefault(alert["account"], []).append(alert["reason"])
    return by_account


def test_a_missing_role_is_alerted_once_and_the_others_proceed(zone: Zone, ami: Callable[..., Wiring]) -> None:
    dev = zone.accounts["dev"]
    zone.client(dev, "iam").delete_role_policy(RoleName=AMI_ROLE, PolicyName="business")
    zone.client(dev, "iam").delete_role(RoleName=AMI_ROLE)
    wiring = ami(_ous(("workloads", True), zone=zone))
    wiring.slot()
    assert _backed_up(zone) == {"prod-a": 1, "prod-b": 1, "prod-c": 1}
    alerts = _scope_alerts()
    assert list(alerts) == [dev] and len(alerts[dev]) == 1
    assert "AccessDenied" in alerts[dev][0]
    # The scope item redelivered (SQS at least once) does not alert again.
    wiring.work([work_body(_scope_message(zone, dev))])
    assert len(_scope_alerts()[dev]) == 1


def _scope_message(zone: Zone, account: str, region: str | None = REGION) -> dict[str, Any]:
    role_arn = f"arn:aws:iam::{account}:role/{AMI_ROLE}"
    return dict(json.loads(to_body(ScopeMessage(POLICY, format_time(zone.clock.now), account, role_arn, region))))


def test_an_scp_denial_is_alerted_once_and_the_others_proceed(zone: Zone, ami: Callable[..., Wiring]) -> None:
    denied = zone.accounts["prod-b"]
    zone.scp(denied, {"Effect": "Deny", "Action": "ec2:*", "Resource": "*"})
    wiring = ami(_ous(("prod", True), zone=zone))
    wiring.slot()
    # prod-b's operator is under the SCP too: look at the others (the AMIs are counted where the SCP allows it).
    assert _backed_up(zone, "prod-a", "prod-c", "dev", "sandbox") == {"prod-a": 1, "prod-c": 1}
    creators = {d.account for d in zone.fidelity.iam.decisions_of("ec2:CreateImage")}
    assert creators == {zone.accounts["prod-a"], zone.accounts["prod-c"]}
    alerts = _scope_alerts()
    assert list(alerts) == [denied] and len(alerts[denied]) == 1
    assert "UnauthorizedOperation" in alerts[denied][0]
    assert [d.account for d in zone.fidelity.accounts.scp_decisions if d.denied] == [denied]


def test_all_enabled_regions_plan_only_the_regions_each_account_enabled(zone: Zone, ami: Callable[..., Wiring]) -> None:
    opted = zone.accounts["prod-a"]
    zone.fidelity.accounts.enable_region(opted, OPT_IN_REGION)
    wiring = ami(_ous(("prod", True), zone=zone), ["all-enabled"])
    summary = wiring.slot()
    assert summary["scopes"] == 3  # one per account: the worker expands it
    expanded = {r["account"]: r["regions"] for r in wiring.results if r.get("outcome") == "expanded"}
    assert OPT_IN_REGION in expanded[opted]
    assert all(OPT_IN_REGION not in regions for account, regions in expanded.items() if account != opted)
    assert len(expanded[zone.accounts["prod-b"]]) == 17  # the Regions enabled by default
    planned = Counter(r["account"] for r in wiring.results if r.get("outcome") == "planned")
    assert planned == {opted: 18, zone.accounts["prod-b"]: 17, zone.accounts["prod-c"]: 17}
    assert _backed_up(zone) == {"prod-a": 1, "prod-b": 1, "prod-c": 1}
    assert alerts_sent() == []


def test_an_explicit_disabled_region_is_alerted_once_per_account(zone: Zone, ami: Callable[..., Wiring]) -> None:
    opted = zone.accounts["prod-a"]
    zone.fidelity.accounts.enable_region(opted, OPT_IN_REGION)
    opted_ec2 = zone.client(opted, "ec2", OPT_IN_REGION)
    far = run_instances(opted_ec2, 1, {"Backup": "nightly"})[0]
    wiring = ami(_ous(("prod", True), zone=zone), [REGION, OPT_IN_REGION])
    summary = wiring.slot()
    assert summary["scopes"] == 6
    assert _backed_up(zone) == {"prod-a": 1, "prod-b": 1, "prod-c": 1}
    [image] = zone.images(opted, OPT_IN_REGION).values()
    assert tagging.tag_dict(image["Tags"])[tagging.SOURCE_INSTANCE] == far
    alerts = _scope_alerts()
    assert sorted(alerts) == sorted(zone.accounts[name] for name in ("prod-b", "prod-c"))
    assert all(len(reasons) == 1 and "AuthFailure" in reasons[0] for reasons in alerts.values())


# ---------------------------------------------------------------------------------------------------------------
# Events forwarded from a spoke account complete its backups
# ---------------------------------------------------------------------------------------------------------------


def _ledger() -> dict[str, str]:
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=LEDGER_TABLE)["Items"]
    return {item["sk"]["S"]: item["state"]["S"] for item in items}


def _state_of(image_id: str) -> str | None:
    return next((state for key, state in _ledger().items() if image_id in key), None)


def test_a_forwarded_ami_event_completes_the_backup_in_the_spoke_and_applies_retention(
    zone: Zone, ami: Callable[..., Wiring]
) -> None:
    spoke = zone.accounts["dev"]
    wiring = ami(_ous(("workloads", False), zone=zone), OPS_GENERATIONS="1")
    made: list[str] = []
    snapshots: list[str] = []
    for _day in range(2):
        wiring.slot()
        [new] = [image_id for image_id in zone.images(spoke) if image_id not in made]
        assert _state_of(new) == "pending"
        # EC2 emits the event in the spoke; its forwarding rule puts it on the hub's bus, whose rule sends it to the
        # work queue: the event as EC2 wrote it, `account` and `region` the spoke's (D5).
        wiring.work([ami_event(new, "available", region=REGION, account=spoke)])
        assert _state_of(new) == "available"  # before any delayed check ran
        made.append(new)
        [mapping] = zone.images(spoke)[new]["BlockDeviceMappings"]
        snapshots.append(mapping["Ebs"]["SnapshotId"])
        wiring.drain()
        zone.clock.advance(days=1)
    # Generations = 1: completing the second AMI retired the first, and its snapshot, through the spoke's role.
    assert list(zone.images(spoke)) == [made[1]]
    retired = zone.fidelity.iam.decisions_of("ec2:DeregisterImage", allowed=True)
    assert [(d.account, d.resource.rsplit("/", 1)[-1]) for d in retired] == [(spoke, made[0])]
    deleted = zone.fidelity.iam.decisions_of("ec2:DeleteSnapshot", allowed=True)
    assert [(d.account, d.resource.rsplit("/", 1)[-1]) for d in deleted] == [(spoke, snapshots[0])]
    remaining = zone.client(spoke, "ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert [snapshot["SnapshotId"] for snapshot in remaining] == [snapshots[1]]
    assert alerts_sent() == []


def test_a_forwarded_event_of_an_account_outside_the_scope_is_not_acted_on(
    zone: Zone, ami: Callable[..., Wiring]
) -> None:
    wiring = ami(_ous(("prod", True), zone=zone))
    wiring.slot()
    outsider = zone.accounts["sandbox"]
    foreign = zone.client(outsider, "ec2").create_image(InstanceId=zone.instances[outsider], Name="golden")["ImageId"]
    wiring.work([ami_event(foreign, "available", region=REGION, account=outsider)])
    assert _state_of(foreign) is None
    assert zone.images(outsider)[foreign]["State"] == "available"


# ---------------------------------------------------------------------------------------------------------------
# ebs-snapshot, the same fan-out
# ---------------------------------------------------------------------------------------------------------------


def test_ebs_snapshots_are_taken_in_the_ous_member_accounts_only(
    zone: Zone, configure_ebs: Callable[..., Any], clock: Clock
) -> None:
    volumes: dict[str, str] = {}
    for name, account in zone.accounts.items():
        zone.add_target_role(account, EBS_ROLE, EBS_TARGET_POLICY)
        ec2 = zone.client(account, "ec2")
        tags = [{"ResourceType": "volume", "Tags": [{"Key": "Backup", "Value": "hourly"}]}]
        volumes[name] = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1, TagSpecifications=tags)["VolumeId"]
    configure_ebs(OPS_TARGET_ORGANIZATIONAL_UNITS=_ous(("prod", True), zone=zone), OPS_TARGET_ROLE_NAME=EBS_ROLE)
    wiring = Wiring(ebs_handlers, clock)
    summary = wiring.slot()
    assert summary["scopes"] == 3
    taken = {
        name: [s["VolumeId"] for s in zone.client(account, "ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"]]
        for name, account in zone.accounts.items()
    }
    assert taken == {
        "prod-a": [volumes["prod-a"]],
        "prod-b": [volumes["prod-b"]],
        "prod-c": [volumes["prod-c"]],
        "dev": [],
        "sandbox": [],
    }
    # The spoke's `EBS Snapshot Notification`, forwarded to the hub, completes it there.
    prod_a = zone.accounts["prod-a"]
    [snapshot] = zone.client(prod_a, "ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"]
    clock.advance(minutes=zone.fidelity.snapshot_completion_time.total_seconds() / 60)
    event = json.loads(snapshot_event(snapshot["SnapshotId"], volumes["prod-a"]))
    wiring.work([json.dumps({**event, "account": prod_a})])
    assert _state_of(snapshot["SnapshotId"]) == "available"
    assert alerts_sent() == []
