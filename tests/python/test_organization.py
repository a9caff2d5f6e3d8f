"""Targets from AWS Organizations and the two-level fan-out (issue 12), on moto: accounts resolved from OUs, the
planner enqueuing one scope item per account x region without touching EC2, the scope workers listing and enqueuing
paced work, and a broken account alerted once per slot while the others proceed."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from aws_harness import (
    ACCOUNT,
    OTHER_REGION,
    POLICY,
    REGION,
    Configure,
    FakeContext,
    Infra,
    alerts_sent,
    ami_event,
    assumed_client,
    ebs_function_env,
    function_env,
    run_instances,
    snapshot_event,
    sqs_event,
    work_body,
)
from aws_harness import take_messages as take_all_messages
from botocore.exceptions import ClientError

from ops_automation.ami_backup import handlers
from ops_automation.ami_backup.decisions import AmiBackupConfig
from ops_automation.core.clients import ClientFactory
from ops_automation.core.config import ALL_ENABLED_REGIONS, OrganizationalUnit, ScopeConfig
from ops_automation.core.errors import ConfigError, PartialFailure
from ops_automation.core.events import ScopeMessage, parse_work_body, to_body
from ops_automation.core.organization import (
    ORGANIZATIONS_PAGE_SIZE,
    partition_of,
    resolve_accounts,
    resolve_targets,
    role_arn_for,
)
from ops_automation.core.scope import Target, event_target, target_of_event, targets_of
from ops_automation.ebs_snapshot import handlers as ebs_handlers
from ops_automation.ebs_snapshot.decisions import EbsSnapshotConfig

SCHEDULE = {"scheduled_time": "2024-05-01T01:00:00Z"}
SLOT = "2024-05-01T01:00:00Z"
ROLE_NAME = "ops/ops-automation-ami-backup"
SPOKE_A, SPOKE_B = "111111111111", "222222222222"


def take_messages() -> list[dict[str, Any]]:
    """The work queue's messages but the fan-out's delayed slot audit (the slot audit tests read that one)."""
    return [message for message in take_all_messages() if message["kind"] != "slot_audit"]


def role_of(account: str) -> str:
    return f"arn:aws:iam::{account}:role/{ROLE_NAME}"


def spoke_client(service: str, account: str, region: str = REGION) -> Any:
    return assumed_client(role_of(account), service, region)


def fan_out_env(**overrides: str) -> dict[str, str]:
    return {
        "OPS_TARGET_ACCOUNTS": json.dumps([SPOKE_A, SPOKE_B]),
        "OPS_TARGET_ROLE_NAME": ROLE_NAME,
        **overrides,
    }


def scope_config(**overrides: str) -> ScopeConfig:
    return ScopeConfig.from_env(function_env(**fan_out_env(**overrides)))


def work(handler: Callable[..., Any], messages: list[dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = handler(sqs_event([work_body(message) for message in messages]), FakeContext())
    return result


def kinds(messages: list[dict[str, Any]]) -> Counter[str]:
    return Counter(message["kind"] for message in messages)


# ---------------------------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------------------------


def test_fan_out_scope_reads_accounts_units_role_name_and_organizations_role() -> None:
    scope = scope_config(
        OPS_TARGET_ORGANIZATIONAL_UNITS=json.dumps(
            [{"id": "ou-ab12-abcdefgh", "recursive": False}, {"id": "r-ab12"}, {"id": "ou-ab12-abcdefgh"}]
        ),
        OPS_ORGANIZATIONS_ROLE_ARN=f"arn:aws:iam::{ACCOUNT}:role/org-reader",
        OPS_TARGET_REGIONS=json.dumps([ALL_ENABLED_REGIONS]),
    )
    assert scope.fans_out and scope.all_regions
    assert scope.accounts == (SPOKE_A, SPOKE_B)
    # Listed twice: the wider (recursive) reading wins; a missing `recursive` means recursive.
    assert scope.organizational_units == (
        OrganizationalUnit("ou-ab12-abcdefgh", True),
        OrganizationalUnit("r-ab12", True),
    )
    assert scope.organizations_role_arn == f"arn:aws:iam::{ACCOUNT}:role/org-reader"
    explicit = ScopeConfig.from_env(function_env())
    assert not explicit.fans_out and not explicit.all_regions and explicit.role_name is None


@pytest.mark.parametrize(
    ("overrides", "variable", "reason"),
    [
        ({"OPS_TARGET_ROLE_NAME": ""}, "OPS_TARGET_ACCOUNTS", "need OPS_TARGET_ROLE_NAME"),
        ({"OPS_TARGET_ROLE_ARNS": json.dumps([role_of(SPOKE_A)])}, "OPS_TARGET_ROLE_ARNS", "mutually exclusive"),
        ({"OPS_TARGET_ACCOUNTS": '["12345"]'}, "OPS_TARGET_ACCOUNTS", "not a 12-digit account id"),
        ({"OPS_TARGET_ORGANIZATIONAL_UNITS": '[{"id": "ou-x"}]'}, "OPS_TARGET_ORGANIZATIONAL_UNITS", "not an OU id"),
        (
            {"OPS_TARGET_ORGANIZATIONAL_UNITS": '[{"id": "r-ab12", "recursive": "yes"}]'},
            "OPS_TARGET_ORGANIZATIONAL_UNITS",
            "true or false",
        ),
        ({"OPS_TARGET_ORGANIZATIONAL_UNITS": '["r-ab12"]'}, "OPS_TARGET_ORGANIZATIONAL_UNITS", "JSON list of"),
        (
            {"OPS_TARGET_REGIONS": json.dumps([ALL_ENABLED_REGIONS, REGION])},
            "OPS_TARGET_REGIONS",
            "must stand alone",
        ),
        ({"OPS_TARGET_ROLE_NAME": "bad name"}, "OPS_TARGET_ROLE_NAME", "IAM role name"),
        ({"OPS_ORGANIZATIONS_ROLE_ARN": "org-reader"}, "OPS_ORGANIZATIONS_ROLE_ARN", "IAM role ARN"),
        ({"OPS_INSTANCE_IDS": '["i-0123456789abcdef0"]'}, "OPS_INSTANCE_IDS", "use tags"),
    ],
)
def test_invalid_fan_out_settings_name_the_variable_and_value(
    overrides: dict[str, str], variable: str, reason: str
) -> None:
    env = function_env(**fan_out_env(**overrides))
    with pytest.raises(ConfigError) as raised:
        AmiBackupConfig.from_env(env)
    assert raised.value.variable == variable
    assert reason in str(raised.value)
    assert raised.value.value == env.get(variable)


def test_all_enabled_needs_accounts_and_ebs_explicit_volumes_are_refused_with_accounts() -> None:
    with pytest.raises(ConfigError, match="needs target accounts"):
        ScopeConfig.from_env(function_env(OPS_TARGET_REGIONS=json.dumps([ALL_ENABLED_REGIONS])))
    with pytest.raises(ConfigError) as raised:
        EbsSnapshotConfig.from_env(ebs_function_env(**fan_out_env(OPS_VOLUME_IDS='["vol-0123456789abcdef0"]')))
    assert raised.value.variable == "OPS_VOLUME_IDS"


# ---------------------------------------------------------------------------------------------------------------
# Targets and events
# ---------------------------------------------------------------------------------------------------------------


def test_role_arns_partitions_and_event_targets_of_a_fanned_out_scope() -> None:
    scope = scope_config(OPS_TARGET_REGIONS=json.dumps([REGION]))
    assert role_arn_for(scope, SPOKE_A, "aws-cn") == f"arn:aws-cn:iam::{SPOKE_A}:role/{ROLE_NAME}"
    assert [partition_of(r) for r in ("us-east-1", "cn-north-1", "us-gov-west-1", "eu-west-1")] == [
        "aws",
        "aws-cn",
        "aws-us-gov",
        "aws",
    ]
    with pytest.raises(ValueError, match="resolve_targets"):
        targets_of(scope, REGION)
    assert event_target(scope, REGION, SPOKE_A, ACCOUNT, REGION) == Target(REGION, role_of(SPOKE_A))
    assert event_target(scope, OTHER_REGION, SPOKE_A, ACCOUNT, REGION) is None  # a region outside the scope
    assert event_target(scope, REGION, "333333333333", ACCOUNT, REGION) is None  # no OU: the listed accounts only
    with_units = scope_config(OPS_TARGET_ORGANIZATIONAL_UNITS='[{"id": "r-ab12"}]')
    # Any account of an OU-targeted scope, in its regions: the ledger says whether the resource is the policy's.
    assert target_of_event(with_units, REGION, "333333333333", REGION) == Target(REGION, role_of("333333333333"))
    assert target_of_event(with_units, OTHER_REGION, "333333333333", REGION) is None  # a region outside the scope
    all_regions = scope_config(OPS_TARGET_REGIONS=json.dumps([ALL_ENABLED_REGIONS]))
    assert event_target(all_regions, "ap-northeast-3", SPOKE_B, ACCOUNT, REGION) == Target(
        "ap-northeast-3", role_of(SPOKE_B)
    )


def test_scope_messages_round_trip_through_the_core_decoder() -> None:
    message = ScopeMessage(POLICY, SLOT, SPOKE_A, role_of(SPOKE_A), None, "start")
    assert parse_work_body(to_body(message), {}) == message
    assert parse_work_body(to_body(ScopeMessage(POLICY, SLOT, SPOKE_A, role_of(SPOKE_A), REGION)), {}).region == REGION


# ---------------------------------------------------------------------------------------------------------------
# Organizations
# ---------------------------------------------------------------------------------------------------------------


class Org:
    """A moto organization: root, OUs, accounts created in them (moto creates them ACTIVE)."""

    def __init__(self) -> None:
        self.client = boto3.client("organizations", region_name="us-east-1")
        self.client.create_organization(FeatureSet="ALL")
        self.root = self.client.list_roots()["Roots"][0]["Id"]

    def unit(self, name: str, parent: str | None = None) -> str:
        unit = self.client.create_organizational_unit(ParentId=parent or self.root, Name=name)
        return str(unit["OrganizationalUnit"]["Id"])

    def accounts(self, parent: str, count: int) -> list[str]:
        made = []
        for _ in range(count):
            status = self.client.create_account(AccountName=f"a{len(made)}-{parent}", Email=f"{parent}@example.com")
            account = str(status["CreateAccountStatus"]["AccountId"])
            self.client.move_account(AccountId=account, SourceParentId=self.root, DestinationParentId=parent)
            made.append(account)
        return made


@pytest.fixture
def org(aws: None) -> Org:
    return Org()


@pytest.fixture
def requests(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, dict[str, Any]]]:
    """(service, operation, parameters) of every request made through a ClientFactory client."""
    seen: list[tuple[str, str, dict[str, Any]]] = []
    original = ClientFactory.client

    def client(self: ClientFactory, *args: Any, **kwargs: Any) -> Any:
        made = original(self, *args, **kwargs)
        if not getattr(made, "_recorded", False):
            made._recorded = True
            made.meta.events.register(
                "provide-client-params",
                lambda params, model, **_: seen.append((model.service_model.service_name, model.name, dict(params))),
            )
        return made

    monkeypatch.setattr(ClientFactory, "client", client)
    return seen


def factory() -> ClientFactory:
    return ClientFactory("ops-automation-test", session=boto3.session.Session(region_name=REGION))


def test_accounts_of_units_recursive_or_not_deduplicated_with_suspended_ones_skipped(
    org: Org, requests: list[tuple[str, str, dict[str, Any]]]
) -> None:
    workloads = org.unit("workloads")
    prod = org.unit("prod", workloads)
    direct = org.accounts(workloads, 2)
    nested = org.accounts(prod, 2)
    org.client.close_account(AccountId=nested[1])  # SUSPENDED
    units = [{"id": workloads, "recursive": False}]
    flat = resolve_accounts(factory(), scope_config(OPS_TARGET_ORGANIZATIONAL_UNITS=json.dumps(units)))
    assert flat.accounts == tuple(sorted([SPOKE_A, SPOKE_B, *direct]))
    assert flat.skipped == ()

    organizations_role = f"arn:aws:iam::{ACCOUNT}:role/org-reader"
    scope = scope_config(
        OPS_TARGET_ACCOUNTS=json.dumps([direct[0], SPOKE_A]),  # also in the OU: listed once
        OPS_TARGET_ORGANIZATIONAL_UNITS=json.dumps([{"id": workloads, "recursive": True}, {"id": prod}]),
        OPS_ORGANIZATIONS_ROLE_ARN=organizations_role,
    )
    requests.clear()
    deep = resolve_accounts(factory(), scope)
    assert deep.accounts == tuple(sorted([SPOKE_A, *direct, nested[0]]))
    assert [(skipped.account, skipped.reason) for skipped in deep.skipped] == [(nested[1], "SUSPENDED")]
    # The Organizations calls go through the organizations role, to the partition's single endpoint.
    assert [params["RoleArn"] for service, op, params in requests if op == "AssumeRole"] == [organizations_role]
    assert {op for service, op, _ in requests if service == "organizations"} == {
        "ListAccountsForParent",
        "ListOrganizationalUnitsForParent",
    }


def test_state_is_read_before_the_retiring_status() -> None:
    from ops_automation.core.organization import account_state

    assert account_state({"Status": "ACTIVE", "State": "PENDING_CLOSURE"}) == "PENDING_CLOSURE"
    assert account_state({"Status": "SUSPENDED"}) == "SUSPENDED"
    assert account_state({"State": "CLOSED"}) == "CLOSED"


def test_more_accounts_than_a_page_are_all_resolved(org: Org, requests: list[tuple[str, str, dict[str, Any]]]) -> None:
    unit = org.unit("many")
    accounts = org.accounts(unit, ORGANIZATIONS_PAGE_SIZE + 3)
    scope = scope_config(OPS_TARGET_ACCOUNTS="[]", OPS_TARGET_ORGANIZATIONAL_UNITS=json.dumps([{"id": unit}]))
    assert resolve_accounts(factory(), scope).accounts == tuple(sorted(accounts))
    pages = [params for _, op, params in requests if op == "ListAccountsForParent"]
    assert len(pages) == 2 and all(params["MaxResults"] == ORGANIZATIONS_PAGE_SIZE for params in pages)


def test_resolve_targets_expands_accounts_and_regions(aws: None) -> None:
    scope = scope_config(OPS_TARGET_REGIONS=json.dumps([REGION, OTHER_REGION]))
    assert resolve_targets(factory(), scope, REGION) == [
        Target(region, role_of(account)) for account in (SPOKE_A, SPOKE_B) for region in (REGION, OTHER_REGION)
    ]
    enabled = sorted(r["RegionName"] for r in boto3.client("ec2", region_name=REGION).describe_regions()["Regions"])
    every = resolve_targets(factory(), scope_config(OPS_TARGET_REGIONS=json.dumps([ALL_ENABLED_REGIONS])), REGION)
    assert every == [Target(region, role_of(account)) for account in (SPOKE_A, SPOKE_B) for region in enabled]


# ---------------------------------------------------------------------------------------------------------------
# Planner: scope items only
# ---------------------------------------------------------------------------------------------------------------


def test_planner_enqueues_one_scope_item_per_account_and_region_and_calls_no_ec2(
    configure: Configure, infra: Infra, api_calls: Counter[str]
) -> None:
    configure(**fan_out_env(OPS_TARGET_REGIONS=json.dumps([REGION, OTHER_REGION])))

    summary = handlers.plan_handler(SCHEDULE, FakeContext())

    messages = take_messages()
    assert kinds(messages) == {"plan_scope": 4}
    assert sorted((m["account"], m["region"], m["role_arn"], m["slot"]) for m in messages) == [
        (account, region, role_of(account), SLOT)
        for account in (SPOKE_A, SPOKE_B)
        for region in sorted((REGION, OTHER_REGION))
    ]
    assert summary == {"slot": SLOT, "dry_run": False, "scopes": 4, "enqueued": 4, "skipped_accounts": []}
    assert not [call for call in api_calls if call.startswith(("ec2.", "sts."))]
    assert alerts_sent() == []


def test_planner_skips_suspended_accounts_and_enqueues_one_item_per_account_for_all_enabled(
    configure: Configure, org: Org
) -> None:
    unit = org.unit("workloads")
    active, suspended = org.accounts(unit, 2)
    org.client.close_account(AccountId=suspended)
    configure(
        **fan_out_env(
            OPS_TARGET_ACCOUNTS="[]",
            OPS_TARGET_ORGANIZATIONAL_UNITS=json.dumps([{"id": unit}]),
            OPS_TARGET_REGIONS=json.dumps([ALL_ENABLED_REGIONS]),
        )
    )

    summary = handlers.plan_handler(SCHEDULE, FakeContext())

    assert [(m["account"], m["region"]) for m in take_messages()] == [(active, None)]
    assert summary["skipped_accounts"] == [f"{suspended}: SUSPENDED"]
    assert alerts_sent() == []  # a suspended account is not an error


def test_organizations_failure_is_alerted_and_raised(configure: Configure, aws: None) -> None:
    configure(
        **fan_out_env(OPS_TARGET_ACCOUNTS="[]", OPS_TARGET_ORGANIZATIONAL_UNITS='[{"id": "ou-ab12-abcdefgh"}]')
    )  # no organization

    with pytest.raises(PartialFailure, match="ou-ab12-abcdefgh"):
        handlers.plan_handler(SCHEDULE, FakeContext())

    assert take_messages() == []
    [alert] = alerts_sent()
    assert alert["alert"] == "backups not planned" and "organizations" in alert["failures"][0]


def test_a_failing_ou_is_named_and_everything_that_resolved_is_still_enqueued(configure: Configure, org: Org) -> None:
    """One deleted or mistyped OU must not stop the landing zone: each OU resolves on its own, the explicit
    accounts need no Organizations call, and the failed OU ids are alerted and raised (the retry re-enqueues the
    rest, idempotently)."""
    unit = org.unit("workloads")
    [member] = org.accounts(unit, 1)
    missing = "ou-ab12-abcdefgh"
    configure(
        **fan_out_env(
            OPS_TARGET_ACCOUNTS=json.dumps([SPOKE_A]),
            OPS_TARGET_ORGANIZATIONAL_UNITS=json.dumps([{"id": missing}, {"id": unit}]),
        )
    )

    with pytest.raises(PartialFailure) as raised:
        handlers.plan_handler(SCHEDULE, FakeContext())

    assert sorted(m["account"] for m in take_messages()) == sorted([SPOKE_A, member])
    [failure] = raised.value.failures
    assert missing in failure and "ParentNotFoundException" in failure and unit not in failure
    [alert] = alerts_sent()
    assert (alert["alert"], alert["failures"]) == ("backups not planned", [failure])


def test_an_account_listed_without_state_or_status_is_targeted_not_skipped(
    configure: Configure, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Lambda runtime SDK whose model predates `State` drops it, and AWS retired `Status` on 2026-09-09: such an
    account must be enqueued (assuming a role in a suspended account fails, and is alerted), never skipped. Only a
    known state other than ACTIVE skips."""
    unit = org.unit("workloads")
    plain, suspended = org.accounts(unit, 2)
    org.client.close_account(AccountId=suspended)
    original = ClientFactory.client

    def client(self: ClientFactory, service: str, *args: Any, **kwargs: Any) -> Any:
        made = original(self, service, *args, **kwargs)
        if service == "organizations" and not getattr(made, "_old_model", False):
            made._old_model = True

            def drop_state(parsed: dict[str, Any], **_: Any) -> None:
                for account in parsed.get("Accounts", []):
                    if account["Id"] == plain:
                        account.pop("State", None)
                        account.pop("Status", None)

            made.meta.events.register("after-call.organizations.ListAccountsForParent", drop_state)
        return made

    monkeypatch.setattr(ClientFactory, "client", client)
    configure(**fan_out_env(OPS_TARGET_ACCOUNTS="[]", OPS_TARGET_ORGANIZATIONAL_UNITS=json.dumps([{"id": unit}])))

    summary = handlers.plan_handler(SCHEDULE, FakeContext())

    assert [m["account"] for m in take_messages()] == [plain]
    assert summary["skipped_accounts"] == [f"{suspended}: SUSPENDED"]
    assert alerts_sent() == []


def test_an_excluded_account_an_ou_holds_is_skipped_not_enqueued_and_not_alerted(
    configure: Configure, org: Org
) -> None:
    """The management account, the hub, log-archive / audit accounts have no target role: excluded, they are listed
    as skipped (logged) instead of alerted "role missing" every slot, also when listed explicitly too."""
    unit = org.unit("workloads")
    workload, log_archive = org.accounts(unit, 2)
    configure(
        **fan_out_env(
            OPS_TARGET_ACCOUNTS=json.dumps([SPOKE_A]),
            OPS_TARGET_ORGANIZATIONAL_UNITS=json.dumps([{"id": org.root}]),
            OPS_EXCLUDE_ACCOUNTS=json.dumps([log_archive, SPOKE_A, "999999999999"]),
        )
    )

    summary = handlers.plan_handler(SCHEDULE, FakeContext())

    enqueued = {m["account"] for m in take_messages()}
    assert workload in enqueued
    assert not enqueued & {log_archive, SPOKE_A}
    assert summary["skipped_accounts"] == sorted([f"{log_archive}: excluded", f"{SPOKE_A}: excluded"])
    assert alerts_sent() == []


@pytest.mark.parametrize("module", ["ami_backup", "ebs_snapshot"])
def test_an_event_from_an_excluded_account_is_ignored_without_assuming_its_role(
    module: str, configure: Configure, configure_ebs: Callable[..., Any], api_calls: Counter[str]
) -> None:
    excluded = "333333333333"
    overrides = fan_out_env(
        OPS_TARGET_ACCOUNTS="[]",
        OPS_TARGET_ORGANIZATIONAL_UNITS='[{"id": "r-ab12"}]',
        OPS_EXCLUDE_ACCOUNTS=json.dumps([excluded]),
    )
    scope = scope_config(**overrides)
    assert target_of_event(scope, REGION, excluded, REGION) is None
    assert event_target(scope, REGION, excluded, ACCOUNT, REGION) is None
    assert target_of_event(scope, REGION, SPOKE_A, REGION) == Target(REGION, role_of(SPOKE_A))
    if module == "ami_backup":
        configure(**overrides)
        body, handler = ami_event("ami-0123456789abcdef0", "available", account=excluded), handlers.work_handler
    else:
        configure_ebs(**overrides)
        body = json.dumps(
            {**json.loads(snapshot_event("snap-0123456789abcdef0", "vol-0123456789abcdef0")), "account": excluded}
        )
        handler = ebs_handlers.work_handler
    api_calls.clear()

    assert handler(sqs_event([body]), FakeContext()) == {"batchItemFailures": []}

    assert not [call for call in api_calls if call.startswith(("sts.", "ec2.", "dynamodb."))]
    assert alerts_sent() == []


# ---------------------------------------------------------------------------------------------------------------
# Scope workers
# ---------------------------------------------------------------------------------------------------------------


def test_scope_worker_lists_its_account_and_enqueues_the_work_items(configure: Configure, fidelity: Any) -> None:
    spoke = run_instances(spoke_client("ec2", SPOKE_A), 2, {"Backup": "nightly"})
    run_instances(spoke_client("ec2", SPOKE_B), 1, {"Backup": "nightly"})  # another scope's
    configure(**fan_out_env())
    handlers.plan_handler(SCHEDULE, FakeContext())
    scopes = take_messages()

    assert work(handlers.work_handler, [m for m in scopes if m["account"] == SPOKE_A]) == {"batchItemFailures": []}

    created = take_messages()
    assert kinds(created) == {"create_image": 2}
    assert sorted(m["instance_id"] for m in created) == sorted(spoke)
    assert {(m["role_arn"], m["region"], m["slot"]) for m in created} == {(role_of(SPOKE_A), REGION, SLOT)}
    # The work items are the classic ones: the worker makes the AMI in the spoke account.
    assert work(handlers.work_handler, created[:1]) == {"batchItemFailures": []}
    assert len(spoke_client("ec2", SPOKE_A).describe_images(Owners=["self"])["Images"]) == 1


def test_scope_work_is_paced_per_account_and_region(configure_ebs: Callable[..., Any], aws: None) -> None:
    for account in (SPOKE_A, SPOKE_B):
        ec2 = spoke_client("ec2", account)
        for _ in range(3):
            ec2.create_volume(
                AvailabilityZone=f"{REGION}a",
                Size=1,
                TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "Backup", "Value": "hourly"}]}],
            )
    worker = configure_ebs(**fan_out_env())
    delays: list[tuple[str, list[int]]] = []
    worker.clients.client("sqs").meta.events.register(
        "provide-client-params.sqs.SendMessageBatch",
        lambda params, **_: delays.append(
            (params["Entries"][0]["MessageBody"], [entry.get("DelaySeconds", 0) for entry in params["Entries"]])
        ),
    )
    ebs_handlers.plan_handler(SCHEDULE, FakeContext())

    assert work(ebs_handlers.work_handler, take_messages()) == {"batchItemFailures": []}

    # Each scope's creates start at once and are spread at CREATES_PER_SECOND on their own: accounts in parallel.
    paced = [entry_delays for body, entry_delays in delays if '"create_snapshot"' in body]
    assert paced == [[0, 0, 1], [0, 0, 1]]
    assert kinds(take_messages()) == {"create_snapshot": 6}


def test_ami_scope_work_is_paced_per_account_and_region(configure: Configure, aws: None) -> None:
    """Unpaced, the bench had all 5 consumers in one account x region at 27 EC2 calls/s: CreateImage items of a
    scope are handed out at 2 per second, counted from that scope alone."""
    for account in (SPOKE_A, SPOKE_B):
        run_instances(spoke_client("ec2", account), 3, {"Backup": "nightly"})
    worker = configure(**fan_out_env())
    delays: list[list[int]] = []
    worker.clients.client("sqs").meta.events.register(
        "provide-client-params.sqs.SendMessageBatch",
        lambda params, **_: (
            delays.append([entry.get("DelaySeconds", 0) for entry in params["Entries"]])
            if '"create_image"' in params["Entries"][0]["MessageBody"]
            else None
        ),
    )
    handlers.plan_handler(SCHEDULE, FakeContext())

    assert work(handlers.work_handler, take_messages()) == {"batchItemFailures": []}

    assert delays == [[0, 0, 1], [0, 0, 1]]
    assert kinds(take_messages()) == {"create_image": 6}


def denying(
    worker: Any,
    monkeypatch: pytest.MonkeyPatch,
    code: str,
    account: str,
    region: str | None = None,
    operation: str = "AssumeRole",
) -> None:
    """Make `account` (in `region`, or any) fail as AWS does: AssumeRole when the client is made (so the failure is
    raised there), a read (`operation`, e.g. DescribeInstances) when it is called."""
    original = worker.clients.client

    def fail(**_: Any) -> None:
        raise ClientError({"Error": {"Code": code, "Message": "denied"}}, operation)

    def client(service: str, region_name: str | None = None, role_arn: str | None = None, **kwargs: Any) -> Any:
        affected = role_arn == role_of(account) and (region is None or region_name == region)
        if affected and operation == "AssumeRole":
            fail()
        made = original(service, region_name, role_arn, **kwargs)
        if affected:
            made.meta.events.register(f"before-call.*.{operation}", fail, unique_id=f"deny-{operation}")
        return made

    monkeypatch.setattr(worker.clients, "client", client)


def test_a_broken_account_is_alerted_once_per_slot_and_the_others_proceed(
    configure: Configure, monkeypatch: pytest.MonkeyPatch, aws: None
) -> None:
    run_instances(spoke_client("ec2", SPOKE_B), 1, {"Backup": "nightly"})
    worker = configure(**fan_out_env(OPS_TARGET_REGIONS=json.dumps([REGION, OTHER_REGION])))
    handlers.plan_handler(SCHEDULE, FakeContext())
    scopes = take_messages()
    denying(worker, monkeypatch, "AccessDenied", SPOKE_A)  # the role is missing in SPOKE_A

    assert work(handlers.work_handler, scopes) == {"batchItemFailures": []}
    broken = [m for m in scopes if m["account"] == SPOKE_A]
    assert work(handlers.work_handler, broken) == {"batchItemFailures": []}  # a redelivery of both regions

    [alert] = alerts_sent()
    assert (alert["alert"], alert["account"]) == ("account cannot be backed up", SPOKE_A)
    assert alert["reason"].startswith("AccessDenied") and role_of(SPOKE_A) in alert["reason"]
    assert "trust policy" in alert["reason"]
    assert [(m["kind"], m["role_arn"]) for m in take_messages()] == [("create_image", role_of(SPOKE_B))]


@pytest.mark.parametrize(
    ("code", "operation", "reason"),
    [
        ("AuthFailure", "DescribeInstances", "the region is not enabled for the account"),
        ("OptInRequired", "DescribeInstances", "the region is not enabled for the account"),
        ("UnauthorizedOperation", "DescribeInstances", "ec2:DescribeInstances is denied by an SCP or the role's"),
    ],
)
def test_a_disabled_region_or_a_denial_is_permanent(
    configure: Configure, monkeypatch: pytest.MonkeyPatch, aws: None, code: str, operation: str, reason: str
) -> None:
    worker = configure(**fan_out_env(OPS_TARGET_ACCOUNTS=json.dumps([SPOKE_A])))
    handlers.plan_handler(SCHEDULE, FakeContext())
    denying(worker, monkeypatch, code, SPOKE_A, REGION, operation)

    assert work(handlers.work_handler, take_messages()) == {"batchItemFailures": []}

    [alert] = alerts_sent()
    assert (alert["account"], alert["region"]) == (SPOKE_A, REGION)
    assert alert["reason"].startswith(code) and reason in alert["reason"]


def test_a_read_failing_in_a_second_region_is_alerted_too(
    configure: Configure, monkeypatch: pytest.MonkeyPatch, aws: None
) -> None:
    """Region-side failures are once per (account, region, slot): the first region's must not swallow another's."""
    worker = configure(
        **fan_out_env(OPS_TARGET_ACCOUNTS=json.dumps([SPOKE_A]), OPS_TARGET_REGIONS=json.dumps([REGION, OTHER_REGION]))
    )
    handlers.plan_handler(SCHEDULE, FakeContext())
    scopes = take_messages()
    denying(worker, monkeypatch, "UnauthorizedOperation", SPOKE_A, operation="DescribeInstances")

    assert work(handlers.work_handler, scopes) == {"batchItemFailures": []}
    assert work(handlers.work_handler, scopes) == {"batchItemFailures": []}  # redelivered: no new alert

    assert sorted((a["account"], a["region"]) for a in alerts_sent()) == sorted(
        [(SPOKE_A, REGION), (SPOKE_A, OTHER_REGION)]
    )


@pytest.mark.parametrize(
    ("code", "operation"),
    [
        ("AccessDenied", "SendMessageBatch"),  # the HUB's queue (IAM, KMS or SCP regression): not the target's
        ("RegionDisabledException", "AssumeRole"),  # the hub's STS region, not the target account
        ("InvalidClientTokenId", "AssumeRole"),
    ],
)
def test_a_hub_side_error_in_a_scope_is_retried_not_taken_for_the_targets(
    configure: Configure, monkeypatch: pytest.MonkeyPatch, aws: None, code: str, operation: str
) -> None:
    # More than one SQS batch: the first is sent while the listing still runs, the last after it.
    run_instances(spoke_client("ec2", SPOKE_A), 11, {"Backup": "nightly"})
    worker = configure(**fan_out_env(OPS_TARGET_ACCOUNTS=json.dumps([SPOKE_A])))
    handlers.plan_handler(SCHEDULE, FakeContext())
    [scope] = take_messages()
    if operation == "AssumeRole":
        denying(worker, monkeypatch, code, SPOKE_A)
    else:

        def fail(**_: Any) -> None:
            raise ClientError({"Error": {"Code": code, "Message": "denied"}}, operation)

        worker.clients.client("sqs").meta.events.register(f"before-call.sqs.{operation}", fail)

    event = sqs_event([work_body(scope)])
    assert handlers.work_handler(event, FakeContext()) == {
        "batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]
    }
    assert alerts_sent() == []
    assert list(worker.ledger.partition("ami-backup", POLICY, SPOKE_A, "-")) == []
    assert list(worker.ledger.partition("ami-backup", POLICY, SPOKE_A, REGION)) == []


def test_a_transient_scope_error_is_retried_not_alerted(
    configure: Configure, monkeypatch: pytest.MonkeyPatch, aws: None
) -> None:
    worker = configure(**fan_out_env(OPS_TARGET_ACCOUNTS=json.dumps([SPOKE_A])))
    handlers.plan_handler(SCHEDULE, FakeContext())
    [scope] = take_messages()
    denying(worker, monkeypatch, "RequestLimitExceeded", SPOKE_A)

    event = sqs_event([work_body(scope)])
    assert handlers.work_handler(event, FakeContext()) == {
        "batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]
    }
    assert alerts_sent() == []


@pytest.mark.parametrize("module", ["ami_backup", "ebs_snapshot"])
def test_all_enabled_scope_is_expanded_by_the_worker_into_the_accounts_enabled_regions(
    configure: Configure, configure_ebs: Callable[..., Any], module: str
) -> None:
    env = fan_out_env(OPS_TARGET_ACCOUNTS=json.dumps([SPOKE_A]), OPS_TARGET_REGIONS=json.dumps(["all-enabled"]))
    module_handlers: Any = handlers if module == "ami_backup" else ebs_handlers
    (configure if module == "ami_backup" else configure_ebs)(**env)
    module_handlers.plan_handler(SCHEDULE, FakeContext())
    [scope] = take_messages()
    assert scope["region"] is None

    assert work(module_handlers.work_handler, [scope]) == {"batchItemFailures": []}

    enabled = spoke_client("ec2", SPOKE_A).describe_regions()["Regions"]
    expanded = take_messages()
    assert sorted(m["region"] for m in expanded) == sorted(r["RegionName"] for r in enabled)
    assert {(m["kind"], m["account"], m["slot"]) for m in expanded} == {("plan_scope", SPOKE_A, SLOT)}


def test_dry_run_of_a_fanned_out_policy_lists_every_account_in_process(configure: Configure, aws: None) -> None:
    [instance] = run_instances(spoke_client("ec2", SPOKE_B), 1, {"Backup": "nightly"})
    configure(**fan_out_env(OPS_DRY_RUN="true"))

    summary = handlers.plan_handler(SCHEDULE, FakeContext())

    assert take_messages() == []
    assert [(row["role_arn"], row["instance_id"]) for row in summary["plan"]] == [(role_of(SPOKE_B), instance)]


# ---------------------------------------------------------------------------------------------------------------
# The fan-out's "nothing matched" guard
# ---------------------------------------------------------------------------------------------------------------


def split_audit() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    messages = take_all_messages()
    return [m for m in messages if m["kind"] != "slot_audit"], [m for m in messages if m["kind"] == "slot_audit"]


def test_a_tag_matching_nothing_in_any_scope_is_alerted_once(configure: Configure, aws: None) -> None:
    """A tag typo across the landing zone must not back up nothing silently: the delayed slot audit alerts once
    every scope has reported and none planned anything."""
    run_instances(spoke_client("ec2", SPOKE_A), 1, {"Backup": "weekly"})  # not the policy's tag
    configure(**fan_out_env(OPS_TARGET_REGIONS=json.dumps([REGION, OTHER_REGION])))
    handlers.plan_handler(SCHEDULE, FakeContext())
    scopes, [audit] = split_audit()
    assert (audit["accounts"], audit["regions"], audit["attempt"], audit["slot"]) == (2, 2, 1, SLOT)

    assert work(handlers.work_handler, scopes) == {"batchItemFailures": []}
    assert work(handlers.work_handler, [audit, audit]) == {"batchItemFailures": []}  # redelivered: one alert

    [alert] = alerts_sent()
    assert alert["alert"] == "backups not planned"
    assert alert["failures"][0].startswith("no target matched in 2 accounts x 2 regions")
    assert take_all_messages() == []


def test_the_audit_waits_for_outstanding_scopes_and_names_those_that_never_reported(
    configure: Configure, aws: None
) -> None:
    configure(**fan_out_env())
    handlers.plan_handler(SCHEDULE, FakeContext())
    scopes, [audit] = split_audit()
    assert work(handlers.work_handler, scopes[:1]) == {"batchItemFailures": []}  # the other one is still retried

    for attempt in range(2, 5):
        assert work(handlers.work_handler, [audit]) == {"batchItemFailures": []}
        assert alerts_sent() == []
        [audit] = take_all_messages()  # re-delayed
        assert (audit["kind"], audit["attempt"]) == ("slot_audit", attempt)
    assert work(handlers.work_handler, [audit]) == {"batchItemFailures": []}

    [alert] = alerts_sent()
    assert "no target matched in 2 accounts x 1 regions" in alert["failures"][0]
    assert "1 scope(s) never reported" in alert["failures"][0]
    assert take_all_messages() == []


def test_a_slot_that_planned_something_is_not_alerted_and_expanded_regions_are_awaited(
    configure: Configure, aws: None
) -> None:
    run_instances(spoke_client("ec2", SPOKE_A, OTHER_REGION), 1, {"Backup": "nightly"})
    configure(**fan_out_env(OPS_TARGET_ACCOUNTS=json.dumps([SPOKE_A]), OPS_TARGET_REGIONS='["all-enabled"]'))
    handlers.plan_handler(SCHEDULE, FakeContext())
    [scope], [audit] = split_audit()
    assert audit["regions"] == 0
    assert work(handlers.work_handler, [scope]) == {"batchItemFailures": []}
    expanded = take_messages()
    assert len(expanded) > 1

    # Expanded but no region listed yet: the audit waits instead of judging "nothing matched".
    assert work(handlers.work_handler, [audit]) == {"batchItemFailures": []}
    [audit] = take_all_messages()
    assert audit["attempt"] == 2
    assert work(handlers.work_handler, expanded) == {"batchItemFailures": []}
    assert kinds(take_messages()) == {"create_image": 1}
    assert work(handlers.work_handler, [audit]) == {"batchItemFailures": []}
    assert alerts_sent() == [] and take_all_messages() == []
