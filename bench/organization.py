"""Issue 12: landing-zone scale. The two-level fan-out (the planner lists the organization and enqueues one scope item
per account x region; the worker lists each scope and enqueues its work items) next to the single-level design it
replaces (one planner invocation walking every account x region in process), in the same run.

Everything runs on a simulated clock: each AWS call costs a stated latency (bench/cost.py `LatencyModel`: 150 ms an
EC2 call, 20 ms another call; STS and Organizations are priced as control-plane calls like EC2's) and is recorded
with its start, end, account and region. The code that runs is the project's own: the ami-backup planner
(`ami_backup.handlers.plan`, hence core.planner `plan_slot` / `fan_out`, core.organization) and the worker's
`plan_scope` with ami-backup's listing (`work_of`), on stub clients made by the real `ClientFactory` (so its role
cache decides when STS AssumeRole is called). Only the work items' own records (create, the AMI's completion event,
the delayed check, the snapshot purge) are modelled, by the calls bench/calls.py measures per instance on moto.

The queue and its consumers are a discrete-event simulation: the work queue (best-effort FIFO by the time a message
becomes visible, as SQS standard queues "generally deliver in the same order as they're sent",
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/standard-queues.html), DelaySeconds
capped at 900 s (core.fanout), the event source mapping's batch size and maximum concurrency read from
modules/internal; each consumer is a warm container with its own role cache."""

from __future__ import annotations

import heapq
import io
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache, partial
from pathlib import Path
from statistics import median
from typing import Any
from unittest import mock

from aws_harness import client_with, function_env

from ops_automation.ami_backup import handlers
from ops_automation.ami_backup.decisions import AmiBackupConfig
from ops_automation.core.alerts import Alerts
from ops_automation.core.clients import ClientFactory, _AssumedRole, account_of_role
from ops_automation.core.config import CommonConfig
from ops_automation.core.events import ScopeMessage, format_time, parse_work_body
from ops_automation.core.fanout import SQS_MAX_DELAY_SECONDS
from ops_automation.core.ledger import InMemoryLedger
from ops_automation.core.planner import plan_slot
from ops_automation.core.runtime import Runtime, build_runtime
from ops_automation.ebs_snapshot.handlers import CREATES_PER_SECOND

from . import ROOT
from .cost import LatencyModel
from .driver import captured

LATENCY = LatencyModel()
HUB = "111111111111"
HUB_REGION = "us-east-1"
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2")
INSTANCES = 20  # per account x region
ACCOUNT_SIZES = (10, 50, 100, 500)
ROLE_NAME = "ops-automation-ami-backup"
ROOT_OU = "ou-root-workloads0"
CHILD_OUS = 5  # the targeted OU holds its accounts in 5 child OUs (walked recursively), as landing zones nest them
SLOT_TIME = datetime(2024, 5, 1, 1, 0, tzinfo=UTC)
SLOT = format_time(SLOT_TIME)
# Stated, not measured: an AMI becomes available 10 minutes after CreateImage; its `available` event then reaches the
# hub's queue (forwarded from the spoke, issue 12); the snapshot purge comes 300 s later (core.purge).
AMI_READY_S = 600.0
PURGE_DELAY_S = 300.0
# The concurrency a landing-zone deployment might set (queue_consumer_max_concurrency), next to the default.
LANDING_ZONE_CONCURRENCY = 50
# The paced runs use ebs-snapshot's pace (work items per second per sender), which ami-backup's scope workers use too.
PACE = CREATES_PER_SECOND
SECONDS_PER_CALL = {"ec2": LATENCY.ec2_call_s, "sts": LATENCY.ec2_call_s, "organizations": LATENCY.ec2_call_s}
LAMBDA_MAX_TIMEOUT_S = 900  # modules/internal validates functions[*].timeout to 1..900 (Lambda's maximum)
RESULTS_FILE = ROOT / "bench" / "results" / "organization.json"


def _hcl_number(path: Path, pattern: str) -> int:
    match = re.search(pattern, path.read_text(encoding="utf-8"), re.S)
    if match is None:
        raise ValueError(f"{pattern!r} not found in {path}")
    return int(match.group(1))


def planner_timeout_s() -> int:
    """ami-backup's planner timeout (modules/ami-backup/main.tf; modules/internal defaults a function to 60 s)."""
    return _hcl_number(ROOT / "modules" / "ami-backup" / "main.tf", r"planner\s*=\s*\{.*?timeout\s*=\s*(\d+)")


def max_concurrency_default() -> int:
    """modules/internal `queue_consumer_max_concurrency` default (the event source mapping's MaximumConcurrency)."""
    return _hcl_number(
        ROOT / "modules" / "internal" / "variables.tf",
        r'variable "queue_consumer_max_concurrency".*?default\s*=\s*(\d+)',
    )


def batch_size() -> int:
    return _hcl_number(ROOT / "modules" / "internal" / "functions.tf", r"batch_size\s*=\s*(\d+)")


# ---------------------------------------------------------------------------------------------------------------
# The simulated estate: a clock, every call recorded, the work queue
# ---------------------------------------------------------------------------------------------------------------


class SimQueue:
    """Messages by the time they become visible, then by the order sent (best-effort FIFO)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str]] = []
        self._seq = 0
        self.sent = 0
        self.max_delay_hits = 0

    def put(self, body: str, visible_at: float) -> None:
        self._seq += 1
        self.sent += 1
        heapq.heappush(self._heap, (visible_at, self._seq, body))

    def take(self, now: float, n: int) -> list[str]:
        out: list[str] = []
        while self._heap and len(out) < n and self._heap[0][0] <= now + 1e-9:
            out.append(heapq.heappop(self._heap)[2])
        return out

    def next_visible(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def __len__(self) -> int:
        return len(self._heap)


@dataclass
class Estate:
    """The accounts (each `INSTANCES` tagged instances per region), the clock and the record of every call."""

    accounts: tuple[str, ...]
    regions: tuple[str, ...] = REGIONS
    instances: int = INSTANCES
    now: float = 0.0
    queue: SimQueue = field(default_factory=SimQueue)
    # (start, end, api, account, region): the account and region the call acts in (STS: the role's account).
    calls: list[tuple[float, float, str, str, str]] = field(default_factory=list)
    # Calls made on behalf of an account from the hub (SQS sends), in shares of a call: a batch carrying items of
    # several accounts counts for each in proportion.
    shares: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))

    def datetime_now(self) -> datetime:
        return SLOT_TIME + timedelta(seconds=self.now)

    def call(self, api: str, account: str, region: str) -> None:
        start = self.now
        self.now += SECONDS_PER_CALL.get(api.split(".")[0], LATENCY.other_call_s)
        self.calls.append((start, self.now, api, account, region))

    def ous(self) -> dict[str, list[str]]:
        """The targeted OU's children and the accounts under each (round robin)."""
        children = [f"ou-root-child{index:05d}" for index in range(CHILD_OUS)]
        under: dict[str, list[str]] = {child: [] for child in children}
        for index, account in enumerate(self.accounts):
            under[children[index % CHILD_OUS]].append(account)
        return under


def _body_account(body: str) -> str:
    payload = json.loads(body)
    account = payload.get("account")
    if account:
        return str(account)
    role = payload.get("role_arn")
    return account_of_role(role) if role else HUB


class _Stub:
    """A client of one service, account and region: any operation is a recorded call answering {}."""

    def __init__(self, estate: Estate, service: str, account: str, region: str) -> None:
        self.estate, self.service, self.account, self.region = estate, service, account, region

    def _call(self, operation: str) -> None:
        self.estate.call(f"{self.service}.{operation}", self.account, self.region)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        operation = "".join(part.capitalize() for part in name.split("_"))

        def call(**_: Any) -> dict[str, Any]:
            self._call(operation)
            return {}

        setattr(self, name, call)  # made once per client
        return call


class _Paginated(_Stub):
    def get_paginator(self, name: str) -> Any:
        stub = self

        class Paginator:
            def paginate(self, PaginationConfig: Mapping[str, int] | None = None, **kwargs: Any) -> Iterator[Any]:
                size = (PaginationConfig or {}).get("PageSize")
                token = ""
                while True:
                    page = getattr(stub, name)(**kwargs, **({"MaxResults": size} if size else {}), NextToken=token)
                    yield page
                    token = page.get("NextToken", "")
                    if not token:
                        return

        return Paginator()


class StubEc2(_Paginated):
    """DescribeInstances as EC2 pages it (MaxResults, NextToken); every instance carries the policy's tag."""

    def describe_instances(self, Filters: list[dict[str, Any]], MaxResults: int = 1000, NextToken: str = "") -> Any:
        self._call("DescribeInstances")
        start = int(NextToken or 0)
        end = min(self.estate.instances, start + MaxResults)
        found = [
            {
                "InstanceId": f"i-{int(self.account) % 10**9:09d}{self.region_index:02d}{index:06d}",
                "State": {"Name": "running"},
                "Tags": [{"Key": "Backup", "Value": "nightly"}],
            }
            for index in range(start, end)
        ]
        page: dict[str, Any] = {"Reservations": [{"Instances": found}] if found else []}
        if end < self.estate.instances:
            page["NextToken"] = str(end)
        return page

    @property
    def region_index(self) -> int:
        return self.estate.regions.index(self.region) if self.region in self.estate.regions else 99

    def describe_regions(self, **_: Any) -> Any:
        self._call("DescribeRegions")
        return {"Regions": [{"RegionName": region} for region in self.estate.regions]}


class StubSqs(_Stub):
    """The hub's work queue: sends become messages visible after their DelaySeconds (capped as SQS caps them)."""

    def _put(self, body: str, delay: int) -> None:
        self.estate.queue.put(body, self.estate.now + min(delay, SQS_MAX_DELAY_SECONDS))

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:
        self._call("SendMessageBatch")
        for entry in Entries:
            self.estate.shares[(_body_account(entry["MessageBody"]), "sqs.SendMessageBatch")] += 1 / len(Entries)
            if int(entry.get("DelaySeconds", 0)) >= SQS_MAX_DELAY_SECONDS:
                self.estate.queue.max_delay_hits += 1  # paced work items past the cap: due all at once
            self._put(entry["MessageBody"], int(entry.get("DelaySeconds", 0)))
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}

    def send_message(self, QueueUrl: str, MessageBody: str, DelaySeconds: int = 0) -> Any:
        self._call("SendMessage")
        self.estate.shares[(_body_account(MessageBody), "sqs.SendMessage")] += 1
        self._put(MessageBody, DelaySeconds)
        return {}


class StubSts(_Stub):
    def assume_role(self, RoleArn: str, RoleSessionName: str, **_: Any) -> Any:
        # Counted against the role's account here (the calls per account); the hub's STS rate is their sum.
        self.estate.call("sts.AssumeRole", account_of_role(RoleArn), self.region)
        expires = self.estate.datetime_now() + timedelta(hours=1)
        return {"Credentials": {"AccessKeyId": "x", "SecretAccessKey": "x", "SessionToken": "x", "Expiration": expires}}


class StubOrganizations(_Paginated):
    """ListAccountsForParent / ListOrganizationalUnitsForParent in pages of at most 20 (their MaxResults range)."""

    PAGE = 20

    def _page(self, operation: str, key: str, items: list[dict[str, Any]], MaxResults: int, NextToken: str) -> Any:
        self._call(operation)
        start = int(NextToken or 0)
        end = min(len(items), start + min(MaxResults or self.PAGE, self.PAGE))
        page: dict[str, Any] = {key: items[start:end]}
        if end < len(items):
            page["NextToken"] = str(end)
        return page

    def list_accounts_for_parent(self, ParentId: str, MaxResults: int = 20, NextToken: str = "") -> Any:
        accounts = self.estate.ous().get(ParentId, [])
        items = [{"Id": account, "State": "ACTIVE", "Status": "ACTIVE"} for account in accounts]
        return self._page("ListAccountsForParent", "Accounts", items, MaxResults, NextToken)

    def list_organizational_units_for_parent(self, ParentId: str, MaxResults: int = 20, NextToken: str = "") -> Any:
        items = [{"Id": child} for child in self.estate.ous()] if ParentId == ROOT_OU else []
        return self._page("ListOrganizationalUnitsForParent", "OrganizationalUnits", items, MaxResults, NextToken)


STUBS: dict[str, type[_Stub]] = {"ec2": StubEc2, "sqs": StubSqs, "sts": StubSts, "organizations": StubOrganizations}


class _Session:
    def __init__(self, estate: Estate, account: str, region: str | None = HUB_REGION) -> None:
        self.estate, self.account, self.region_name = estate, account, region

    def client(self, service: str, region_name: str | None = None, config: Any = None) -> Any:
        return STUBS.get(service, _Stub)(self.estate, service, self.account, region_name or HUB_REGION)


class SimClients(ClientFactory):
    """The real ClientFactory (its client and role cache, its renewal margin) on stub sessions: AssumeRole is called
    exactly when the deployed code would call it."""

    def __init__(self, estate: Estate) -> None:
        super().__init__("ops-automation-nightly", session=_Session(estate, HUB), clock=estate.datetime_now)  # type: ignore[arg-type]
        self.estate = estate

    def _assume(self, role_arn: str) -> _AssumedRole:
        credentials = self.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=self._session_name)
        session = _Session(self.estate, account_of_role(role_arn), None)
        return _AssumedRole(session=session, expires_at=credentials["Credentials"]["Expiration"])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------------
# The two designs' configurations and runtimes
# ---------------------------------------------------------------------------------------------------------------


def accounts_of(n: int) -> tuple[str, ...]:
    return tuple(f"{200000000000 + index:012d}" for index in range(n))


def _env(
    design: str, accounts: tuple[str, ...], regions: tuple[str, ...] = REGIONS, ou: str = ROOT_OU
) -> dict[str, str]:
    """ami-backup's function environment (as modules/internal sets it) for the two designs: role ARNs walked in
    process, or the OU (recursive) reached through one role name."""
    env = function_env(
        "https://sqs.us-east-1.amazonaws.com/111111111111/work", OPS_TARGET_REGIONS=json.dumps(list(regions))
    )
    env.update(
        {
            "OPS_TARGET_ACCOUNTS": "[]",
            "OPS_TARGET_ORGANIZATIONAL_UNITS": "[]",
            "OPS_TARGET_ROLE_NAME": "",
            "OPS_ORGANIZATIONS_ROLE_ARN": "",
        }
    )
    if design == "in-process":
        env["OPS_TARGET_ROLE_ARNS"] = json.dumps([f"arn:aws:iam::{a}:role/{ROLE_NAME}" for a in accounts])
    else:
        env["OPS_TARGET_ORGANIZATIONAL_UNITS"] = json.dumps([{"id": ou, "recursive": True}])
        env["OPS_TARGET_ROLE_NAME"] = ROLE_NAME
    return env


def _config(design: str, accounts: tuple[str, ...]) -> AmiBackupConfig:
    return AmiBackupConfig.from_env(_env(design, accounts))


def runtime(estate: Estate, config: AmiBackupConfig) -> Runtime[AmiBackupConfig]:
    clients = SimClients(estate)
    return Runtime(
        config=config,
        common=CommonConfig.from_env(_env("two-level", ())),
        clients=clients,
        ledger=InMemoryLedger(),
        alerts=Alerts(lambda: clients.client("sns"), None, handlers.SERVICE, "nightly"),
        clock=estate.datetime_now,
        service=handlers.SERVICE,
    )


def plan_scope_of(rt: Runtime[AmiBackupConfig], body: str) -> dict[str, Any]:
    """The worker's handling of one scope item: ami-backup's own `handle_item` (core.planner `plan_scope` with the
    planner's `plan_target` listing)."""
    message = parse_work_body(body, handlers.DECODERS)
    assert isinstance(message, ScopeMessage)
    return dict(handlers.handle_item(rt, message))


@contextmanager
def paced(pace_per_second: float | None) -> Iterator[None]:
    """One pace for both designs: per scope in the two-level design (ami-backup's own is SCOPE_CREATES_PER_SECOND,
    replaced here so that the unpaced row shows what the pace buys), for the whole estate (one sender) in the
    in-process planner, which ami-backup runs unpaced."""
    with (
        mock.patch.object(handlers, "SCOPE_CREATES_PER_SECOND", pace_per_second),
        mock.patch.object(handlers, "plan_slot", partial(plan_slot, pace_per_second=pace_per_second)),
    ):
        yield


# ---------------------------------------------------------------------------------------------------------------
# The work items' records, modelled (calls per record kind; totals as bench/calls.py measures per instance)
# ---------------------------------------------------------------------------------------------------------------

# create: CreateImage, the ledger's pending item, the delayed check (sent at the completion timeout, capped at
# 900 s). event (the AMI's `available`): describe it, complete the ledger, list the instance's AMIs, deregister the
# oldest generation, record it, schedule the purge. check: the ledger says done. purge: the snapshots, the Recycle
# Bin, delete, the ledger. Per instance: 7 EC2 calls, 3 UpdateItem, 2 GetItem, 2 SendMessage (bench/results/calls.json).
RECORDS: dict[str, tuple[str, ...]] = {
    "create_image": ("ec2.CreateImage", "dynamodb.UpdateItem"),
    "bench_event": (
        "ec2.DescribeImages",
        "dynamodb.UpdateItem",
        "ec2.DescribeImages",
        "ec2.DeregisterImage",
        "dynamodb.UpdateItem",
    ),
    "bench_check": ("dynamodb.GetItem",),
    "bench_purge": ("ec2.DescribeSnapshots", "ec2.ListImagesInRecycleBin", "ec2.DeleteSnapshot", "dynamodb.GetItem"),
    # The planner's delayed "nothing matched" audit (core.planner): reads the slot's tally once.
    "slot_audit": ("dynamodb.GetItem",),
}


def _modelled(rt: Runtime[AmiBackupConfig], payload: dict[str, Any]) -> None:
    kind, region, role_arn = payload["kind"], payload.get("region"), payload.get("role_arn")
    for api in RECORDS[kind]:
        service, operation = api.split(".")
        client = rt.clients.client(
            service, region if service == "ec2" else None, role_arn if service == "ec2" else None
        )
        getattr(client, _snake(operation))()
    sqs = rt.clients.client("sqs")
    estate: Estate = rt.clients.estate  # type: ignore[attr-defined]
    base = {"region": region, "role_arn": role_arn, "source_id": payload.get("source_id", "")}
    if kind == "create_image":
        timeout_s = rt.config.completion.timeout_minutes * 60
        sqs.send_message(QueueUrl="q", MessageBody=json.dumps({**base, "kind": "bench_check"}), DelaySeconds=timeout_s)
        # EventBridge puts the AMI's `available` event on the queue: no call of ours.
        estate.queue.put(json.dumps({**base, "kind": "bench_event"}), estate.now + AMI_READY_S)
    elif kind == "bench_event":
        body = json.dumps({**base, "kind": "bench_purge"})
        sqs.send_message(QueueUrl="q", MessageBody=body, DelaySeconds=int(PURGE_DELAY_S))


@cache
def _snake(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


# ---------------------------------------------------------------------------------------------------------------
# One cycle: the planner, then the queue drained by the event source mapping's consumers
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CycleRun:
    design: str
    accounts: int
    regions: int
    instances_each: int
    concurrency: int
    planner_s: float
    planner_calls: dict[str, int]
    planner_over_timeout: bool
    creates_done_s: float  # the last CreateImage answered: every backup of the slot started
    finished_s: float  # the queue empty: every record of the cycle handled
    invocations: int
    records: int
    calls_per_account: dict[str, float]  # by API, mean over accounts (hub-side calls in shares)
    peak_in_flight_account: int  # most calls in flight at once in one account (any service acting there)
    peak_in_flight_account_region: int
    peak_ec2_account_region: int  # EC2 throttles per account and region
    peak_assume_role_per_s: int  # the hub's STS calls in the busiest second
    peak_ec2_per_s_account_region: int  # EC2 calls started in the busiest second of one account-region
    # Median over accounts of the time between an account's first and last CreateImage: short = its backups bunched
    # (the account hammered while others wait), long = spread over the slot's whole create phase.
    create_window_median_s: float
    pace_per_second: float | None  # work items per second per sender (per scope, or the whole estate in process)
    max_delay_hits: int  # messages sent at the 900 s DelaySeconds cap


def _consumer_loop(
    estate: Estate,
    concurrency: int,
    batch: int,
    handle: Callable[[Runtime[AmiBackupConfig], str], None],
    config: AmiBackupConfig,
) -> tuple[int, int, float]:
    containers = [runtime(estate, config) for _ in range(concurrency)]
    free_at = [0.0] * concurrency
    t, invocations, records, finished = 0.0, 0, 0, 0.0
    while True:
        for index in sorted(range(concurrency), key=lambda i: free_at[i]):
            if free_at[index] > t + 1e-9:
                continue
            bodies = estate.queue.take(t, batch)
            if not bodies:
                break
            estate.now = t
            for body in bodies:
                handle(containers[index], body)
            estate.now += LATENCY.invocation_s
            free_at[index] = estate.now
            finished = max(finished, estate.now)
            invocations += 1
            records += len(bodies)
        busy = [f for f in free_at if f > t + 1e-9]
        upcoming = estate.queue.next_visible()
        if upcoming is None and not busy:
            return invocations, records, finished
        # A message visible now waits for a consumer (the free ones took all they could): the next event is a
        # consumer freed or a message becoming visible.
        t = min([*busy, *([upcoming] if upcoming is not None and upcoming > t + 1e-9 else [])])


def _handle(rt: Runtime[AmiBackupConfig], body: str) -> None:
    payload = json.loads(body)
    if payload["kind"] == "plan_scope":
        plan_scope_of(rt, body)
    else:
        _modelled(rt, payload)


def _peak(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    peak = current = 0
    for _, step in events:  # an end sorts before a start at the same instant (-1 < 1)
        current += step
        peak = max(peak, current)
    return peak


def _per_second_peak(times: list[float]) -> int:
    by_second = Counter(int(t) for t in times)
    return max(by_second.values(), default=0)


def run_cycle(
    design: str,
    n_accounts: int,
    concurrency: int | None = None,
    instances: int = INSTANCES,
    pace_per_second: float | None = None,
) -> CycleRun:
    concurrency = concurrency or max_concurrency_default()
    accounts = accounts_of(n_accounts)
    estate = Estate(accounts=accounts, instances=instances)
    config = _config(design, accounts)
    planner_rt = runtime(estate, config)
    with captured(io.StringIO()), paced(pace_per_second):
        handlers.plan(planner_rt, SLOT)
        planner_s = estate.now
        planner_calls = Counter(api for _s, _e, api, _a, _r in estate.calls)
        invocations, records, finished = _consumer_loop(estate, concurrency, batch_size(), _handle, config)
    by_account: dict[str, list[tuple[float, float]]] = defaultdict(list)
    by_account_region: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    ec2_by_account_region: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    per_api: Counter[str] = Counter()
    assume_times: list[float] = []
    ec2_starts: dict[tuple[str, str], list[float]] = defaultdict(list)
    creates: dict[str, list[float]] = defaultdict(list)
    creates_done = 0.0
    for start, end, api, account, region in estate.calls:
        if account == HUB:
            continue
        by_account[account].append((start, end))
        by_account_region[(account, region)].append((start, end))
        per_api[api] += 1
        if api.startswith("ec2."):
            ec2_by_account_region[(account, region)].append((start, end))
            ec2_starts[(account, region)].append(start)
        if api == "sts.AssumeRole":
            assume_times.append(start)
        if api == "ec2.CreateImage":
            creates_done = max(creates_done, end)
            creates[account].append(start)
    for (account, api), share in estate.shares.items():
        if account != HUB:
            per_api[api] += share  # type: ignore[assignment]
    hub_calls = Counter(
        api for _s, _e, api, account, _r in estate.calls if account == HUB and not api.startswith("sqs.")
    )
    for api, n in hub_calls.items():
        per_api[api] += n  # type: ignore[assignment]  # Organizations calls: the hub's, shared by every account
    return CycleRun(
        design=design,
        accounts=n_accounts,
        regions=len(REGIONS),
        instances_each=instances,
        concurrency=concurrency,
        planner_s=round(planner_s, 3),
        planner_calls=dict(sorted(planner_calls.items())),
        planner_over_timeout=planner_s > planner_timeout_s(),
        creates_done_s=round(creates_done, 1),
        finished_s=round(finished, 1),
        invocations=invocations,
        records=records,
        calls_per_account={api: round(n / n_accounts, 3) for api, n in sorted(per_api.items())},
        peak_in_flight_account=max((_peak(v) for v in by_account.values()), default=0),
        peak_in_flight_account_region=max((_peak(v) for v in by_account_region.values()), default=0),
        peak_ec2_account_region=max((_peak(v) for v in ec2_by_account_region.values()), default=0),
        peak_assume_role_per_s=_per_second_peak(assume_times),
        peak_ec2_per_s_account_region=max((_per_second_peak(v) for v in ec2_starts.values()), default=0),
        create_window_median_s=round(median(max(v) - min(v) for v in creates.values()), 1) if creates else 0.0,
        pace_per_second=pace_per_second,
        max_delay_hits=estate.queue.max_delay_hits,
    )


# ---------------------------------------------------------------------------------------------------------------
# The planner alone, as the estate grows
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannerPoint:
    accounts: int
    two_level_s: float
    in_process_s: float
    ratio: float
    two_level_calls: dict[str, int]
    in_process_calls: dict[str, int]


def planner_time(design: str, n_accounts: int, instances: int = INSTANCES) -> tuple[float, dict[str, int]]:
    estate = Estate(accounts=accounts_of(n_accounts), instances=instances)
    rt = runtime(estate, _config(design, estate.accounts))
    with captured(io.StringIO()):
        handlers.plan(rt, SLOT)
    return estate.now, dict(sorted(Counter(api for _s, _e, api, _a, _r in estate.calls).items()))


def planner_points(sizes: tuple[int, ...] = ACCOUNT_SIZES, instances: int = INSTANCES) -> list[PlannerPoint]:
    points = []
    for n in sizes:
        two, two_calls = planner_time("two-level", n, instances)
        one, one_calls = planner_time("in-process", n, instances)
        points.append(PlannerPoint(n, round(two, 3), round(one, 3), round(one / two, 1), two_calls, one_calls))
    return points


def timeout_crossing(points: list[PlannerPoint]) -> dict[str, float]:
    """Accounts (of the measured regions x instances) at which each design's planner would reach its timeout, and
    Lambda's 900 s maximum: the measured run times are linear in the accounts (a line through the smallest and the
    largest size)."""
    first, last = points[0], points[-1]
    out: dict[str, float] = {}
    for design, attr in (("two-level", "two_level_s"), ("in-process", "in_process_s")):
        slope = (getattr(last, attr) - getattr(first, attr)) / (last.accounts - first.accounts)
        fixed = getattr(first, attr) - slope * first.accounts
        for name, limit in (("", planner_timeout_s()), (" at 900 s", LAMBDA_MAX_TIMEOUT_S)):
            out[design + name] = round((limit - fixed) / slope) if slope > 0 else float("inf")
    return out


# ---------------------------------------------------------------------------------------------------------------
# The stand-ins checked against moto: the same planner and scope workers, the same calls and messages
# ---------------------------------------------------------------------------------------------------------------


def _moto_organization(
    org: Any, sts: Any, n_accounts: int, regions: tuple[str, ...], instances: int
) -> tuple[str, list[str]]:
    """On moto: an OU with CHILD_OUS child OUs holding `n_accounts` new accounts (round robin), each running
    `instances` tagged instances per region (made through an assumed role, so in that account)."""
    from aws_harness import run_instances

    org.create_organization(FeatureSet="ALL")
    root = org.list_roots()["Roots"][0]["Id"]
    target = org.create_organizational_unit(ParentId=root, Name="workloads")["OrganizationalUnit"]["Id"]
    children = [
        org.create_organizational_unit(ParentId=target, Name=f"child{index}")["OrganizationalUnit"]["Id"]
        for index in range(CHILD_OUS)
    ]
    accounts = []
    for index in range(n_accounts):
        status = org.create_account(Email=f"a{index}@example.com", AccountName=f"workload-{index}")
        account = status["CreateAccountStatus"]["AccountId"]
        org.move_account(AccountId=account, SourceParentId=root, DestinationParentId=children[index % CHILD_OUS])
        accounts.append(account)
        role = f"arn:aws:iam::{account}:role/{ROLE_NAME}"
        credentials = sts.assume_role(RoleArn=role, RoleSessionName="setup")["Credentials"]
        for region in regions:
            run_instances(client_with(credentials, "ec2", region), instances, {"Backup": "nightly"})
    return target, accounts


def _scope_and_work(messages: list[dict[str, Any]]) -> dict[str, Any]:
    scopes = sorted(json.dumps(m, sort_keys=True) for m in messages if m["kind"] == "plan_scope")
    work = Counter(f"{m['kind']} {m.get('role_arn')} {m.get('region')}" for m in messages if m["kind"] != "plan_scope")
    return {"scopes": scopes, "work": dict(sorted(work.items()))}


def check_against_moto(
    n_accounts: int = 3, regions: tuple[str, ...] = REGIONS[:2], instances: int = 3
) -> dict[str, Any]:
    """The two-level cycle's planner and scope workers on moto (Organizations, STS into each account, EC2 there, SQS)
    and on the stand-ins built alike: the same calls by API and the same messages."""
    import boto3
    from aws_harness import take_messages

    from .harness import Network, moto_account, routed

    network = Network()
    with moto_account() as infra:
        org = boto3.client("organizations", region_name="us-east-1")
        target, accounts = _moto_organization(org, boto3.client("sts", region_name=HUB_REGION), n_accounts, regions,
                                              instances)  # fmt: skip
        env = _env("two-level", tuple(accounts), regions, target)
        env["OPS_WORK_QUEUE_URL"] = infra.queue_url
        config, common = AmiBackupConfig.from_env(env), CommonConfig.from_env(env)
        with routed(network), captured(io.StringIO()):
            planner_rt = build_runtime(handlers.SERVICE, config, common, clock=lambda: SLOT_TIME)
            worker_rt = build_runtime(handlers.SERVICE, config, common, clock=lambda: SLOT_TIME)
            handlers.plan(planner_rt, SLOT)
            scope_items = take_messages()
            for item in scope_items:
                body = json.dumps({k: v for k, v in item.items() if not k.startswith("_")})
                handlers.handle_item(worker_rt, parse_work_body(body, handlers.DECODERS))
            work_items = take_messages()
    on_moto = _scope_and_work([{k: v for k, v in m.items() if not k.startswith("_")} for m in scope_items + work_items])
    # The stand-in runs on the in-memory ledger: the ledger's DynamoDB calls (the slot tally's UpdateItem ADD per
    # scope) are left out of the comparison; the cycle's model counts them per record kind.
    moto_calls = {
        api: n for api, n in sorted(network.calls.counts.items()) if not api.startswith(("sts.GetCaller", "dynamodb."))
    }

    estate = Estate(accounts=tuple(accounts), regions=regions, instances=instances)
    config = AmiBackupConfig.from_env(_env("two-level", estate.accounts, regions, ROOT_OU))
    planner_rt, worker_rt = runtime(estate, config), runtime(estate, config)
    with captured(io.StringIO()):
        handlers.plan(planner_rt, SLOT)
        scope_bodies = estate.queue.take(float("inf"), 10**9)
        for body in scope_bodies:
            # The planner's delayed slot audit is compared as a message, not run (moto hands it out at once).
            if json.loads(body)["kind"] == "plan_scope":
                plan_scope_of(worker_rt, body)
        work_bodies = estate.queue.take(float("inf"), 10**9)
    on_stand_in = _scope_and_work([json.loads(b) for b in scope_bodies + work_bodies])
    stand_in_calls = dict(sorted(Counter(api for _s, _e, api, _a, _r in estate.calls).items()))
    return {
        "accounts": n_accounts,
        "regions": len(regions),
        "instances_each": instances,
        "same_calls": moto_calls == stand_in_calls,
        "same_messages": on_moto["work"] == on_stand_in["work"]
        and [s.replace(target, ROOT_OU) for s in on_moto["scopes"]] == on_stand_in["scopes"],
        "moto_calls": moto_calls,
        "stand_in_calls": stand_in_calls,
    }


# ---------------------------------------------------------------------------------------------------------------
# Everything, and the table
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrganizationResults:
    latency_s: dict[str, float]
    planner_timeout_s: int
    max_concurrency_default: int
    batch_size: int
    ami_ready_s: float
    planner: list[PlannerPoint]
    crossing: dict[str, float]
    cycles: list[CycleRun]
    moto_check: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def cycle(self, design: str, accounts: int, concurrency: int, pace: float | None) -> CycleRun:
        return next(
            c
            for c in self.cycles
            if (c.design, c.accounts, c.concurrency, c.pace_per_second) == (design, accounts, concurrency, pace)
        )


def measure(
    sizes: tuple[int, ...] = ACCOUNT_SIZES,
    instances: int = INSTANCES,
    paces: tuple[float | None, ...] = (None, PACE),
    landing_zone: tuple[int, int] | None = (max(ACCOUNT_SIZES), LANDING_ZONE_CONCURRENCY),
    moto_accounts: int = 3,
) -> OrganizationResults:
    """The planner at every size; a whole cycle at every size with the default concurrency, each design unpaced and
    paced (ami-backup paces its scopes, not its in-process planner); at `landing_zone` = (accounts, concurrency) the
    same with more consumers."""
    default = max_concurrency_default()
    grid = [(n, default) for n in sizes] + ([landing_zone] if landing_zone else [])
    points = planner_points(sizes, instances)
    cycles = [
        run_cycle(design, n, concurrency, instances, pace)
        for n, concurrency in grid
        for pace in paces
        for design in ("two-level", "in-process")
    ]
    return OrganizationResults(
        latency_s={
            "ec2": LATENCY.ec2_call_s,
            "sts": SECONDS_PER_CALL["sts"],
            "organizations": SECONDS_PER_CALL["organizations"],
            "other": LATENCY.other_call_s,
        },
        planner_timeout_s=planner_timeout_s(),
        max_concurrency_default=default,
        batch_size=batch_size(),
        ami_ready_s=AMI_READY_S,
        planner=points,
        crossing=timeout_crossing(points),
        cycles=cycles,
        moto_check=check_against_moto(moto_accounts),
    )


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:,.1f} min"


def _pace(pace: float | None) -> str:
    return "unpaced" if pace is None else f"{pace:g}/s"


def table(results: Mapping[str, Any]) -> list[str]:
    """The Markdown tables of `OrganizationResults.as_dict()` (as bench/results/organization.json holds it)."""
    timeout, cycles = results["planner_timeout_s"], results["cycles"]
    regions, instances = cycles[0]["regions"], cycles[0]["instances_each"]
    rows = [
        f"| accounts (x {regions} regions x {instances} instances) | planner run, two-level | planner run, in-process "
        "(single level) | in-process / two-level |",
        "|---|---|---|---|",
    ]
    for p in results["planner"]:
        over = f" (over its {timeout} s timeout)" if p["in_process_s"] > timeout else ""
        rows.append(
            f"| {p['accounts']:,} | {p['two_level_s']:.1f} s | {p['in_process_s']:.1f} s{over} | {p['ratio']:.0f}x |"
        )
    crossing = results["crossing"]
    rows += [
        f"| planner timeout ({timeout} s) reached at | ~{crossing['two-level']:,.0f} accounts | "
        f"~{crossing['in-process']:,.0f} accounts | |",
        f"| Lambda's 900 s maximum reached at | ~{crossing['two-level at 900 s']:,.0f} accounts | "
        f"~{crossing['in-process at 900 s']:,.0f} accounts | |",
        "",
        "| design, work items paced per sender | consumers (max concurrency) | accounts | planner run | backups "
        "started (last "
        "CreateImage) | cycle done | peak calls in flight: one account / one account-region / EC2 in one "
        "account-region | peak EC2 calls / s in one account-region | median span of an account's CreateImages | "
        "AssumeRole / account / cycle; hub peak / s | work items at the 900 s delay cap |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cycles:
        planner = f"{c['planner_s']:,.0f} s" + (" (over its timeout: see below)" if c["planner_over_timeout"] else "")
        rows.append(
            f"| {c['design']}, {_pace(c['pace_per_second'])} | {c['concurrency']} | {c['accounts']:,} | {planner} | "
            f"{_minutes(c['creates_done_s'])} | {_minutes(c['finished_s'])} | {c['peak_in_flight_account']} / "
            f"{c['peak_in_flight_account_region']} / {c['peak_ec2_account_region']} | "
            f"{c['peak_ec2_per_s_account_region']} | {c['create_window_median_s']:,.0f} s | "
            f"{c['calls_per_account'].get('sts.AssumeRole', 0):.1f}; {c['peak_assume_role_per_s']} | "
            f"{c['max_delay_hits']:,} |"
        )
    if any(c["planner_over_timeout"] for c in cycles):
        rows += [
            "",
            f"A planner over its {timeout} s timeout is stopped by Lambda on AWS and retried from the start: those "
            "rows let it run on, to compare the queue's behaviour; on AWS that slot would never be fully planned.",
        ]
    largest, default = max(p["accounts"] for p in results["planner"]), results["max_concurrency_default"]
    by = {
        c["design"]: c["calls_per_account"]
        for c in cycles
        if c["accounts"] == largest and c["concurrency"] == default and c["pace_per_second"] is None
    }
    rows += [
        "",
        f"| AWS calls per account per daily cycle ({largest:,} accounts, {default} consumers, unpaced) | two-level "
        "| in-process |",
        "|---|---|---|",
    ]
    for api in sorted(set(by["two-level"]) | set(by["in-process"])):
        rows.append(f"| {api} | {by['two-level'].get(api, 0):,.2f} | {by['in-process'].get(api, 0):,.2f} |")
    check = results["moto_check"]
    rows += [
        "",
        f"Stand-ins checked against moto ({check['accounts']} accounts in child OUs, {check['regions']} regions, "
        f"{check['instances_each']} instances each; the real planner and scope workers): same calls "
        f"{check['same_calls']}, same messages {check['same_messages']}.",
    ]
    return rows


def notes(results: Mapping[str, Any]) -> list[str]:
    latency = results["latency_s"]
    return [
        "### Landing-zone scale: how it is measured",
        "",
        f"- Simulated clock: each call costs {latency['ec2'] * 1000:.0f} ms (EC2, STS, Organizations) or "
        f"{latency['other'] * 1000:.0f} ms (SQS, DynamoDB), stated as in the cost model; nothing is throttled.",
        "- The project's code runs: ami-backup's planner (`plan_slot`, `fan_out`, `resolve_accounts`) and its worker's "
        "`handle_item` for each scope item (`plan_scope`), on stub clients made by the real `ClientFactory` (its role "
        "cache decides every AssumeRole). The work items' own records (create, the `available` event "
        f"{results['ami_ready_s']:.0f} s later, the delayed check, the snapshot purge) are modelled by the calls "
        "bench/calls.py measures per instance.",
        f"- The organization: one targeted OU (recursive) holding the accounts in {CHILD_OUS} child OUs. The "
        "in-process design is the same module with `target_role_arns` (one role ARN per account).",
        f"- The work queue: a discrete-event simulation, batches of {results['batch_size']}, as many warm consumers "
        "as the event source mapping's maximum concurrency (each with its own role cache), best-effort FIFO by the "
        "time a message becomes visible, DelaySeconds capped at 900 s.",
        "- Paced: the work items get ebs-snapshot's pace (core.fanout BatchSender `pace_per_second`), per scope in "
        "the two-level design, over the whole estate in the in-process planner (one sender). ami-backup itself "
        "passes none.",
    ]


def save_dict(results: Mapping[str, Any], path: Path = RESULTS_FILE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")


def main() -> int:
    """`python -m bench organization`: measure, write bench/results/organization.json, print the tables."""
    results = measure().as_dict()
    save_dict(results)
    print("\n".join(table(results)))
    print(f"\nwrote {RESULTS_FILE.relative_to(ROOT)}")
    return 0
