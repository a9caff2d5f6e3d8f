"""Scheduled stop/start of RDS DB instances and Aurora DB clusters (OPS_SCHEDULE_RDS, target tags only).

schedule → `plan` lists the instances and clusters carrying every target tag and enqueues `RdsActMessage`s → `act`
re-reads each one, claims (resource, action, slot) once and makes one Start/StopDBInstance or Start/StopDBCluster
call → the delayed check, or an `RDS DB Instance Event` / `RDS DB Cluster Event` (a trigger to re-read: best effort,
no state in it), verifies the status.

RDS starts a resource that has been stopped for seven days by itself (RDS-EVENT-0154 for an instance, RDS-EVENT-0153
for a cluster). When the resource's newest action here is a stop, that event becomes a new stop slot at the event's
time: the act waits (up to RESTOP_WINDOW after the event) while the resource is `starting`, under the maintenance
RDS applies after a start, or backing up, stops it once `available`, and verifies it like any other slot. A manual
start (RDS-EVENT-0088/0151 without the auto-start event) is left alone. RDS events are best effort: a lost auto-start
event leaves the resource running until the next stop slot stops it. Facts and sources: the module README, "RDS
and Aurora".

Time limits are RDS's own, longer than EC2's (a backup, maintenance, or a Multi-AZ stop easily outlasts the EC2
verification time): ACT_WINDOW counts from the first act, VERIFY_MINUTES from the call; either is the configured
completion timeout when that is longer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial
from typing import Any, ClassVar, Literal

from botocore.exceptions import ClientError

from ..core.claims import claim, record_made, release
from ..core.completion import Observation, ledger_key
from ..core.errors import THROTTLING_ERRORS, MalformedEventError, error_code
from ..core.events import CheckMessage, format_time, parse_time, text, time_field
from ..core.ledger import LedgerEntry
from ..core.observability import logger
from ..core.scope import Target, event_target, targets_of
from ..core.tagging import carries_all, carries_key, tag_dict
from .decisions import Action, Decision
from .outcomes import (
    ScheduledAct,
    SchedulerRuntime,
    Sink,
    act_fields,
    act_of,
    action_of_entry,
    expect,
    fail_once,
    report_once,
    send_back,
    superseded,
    verify,
)

INSTANCE_EVENT = "RDS DB Instance Event"
CLUSTER_EVENT = "RDS DB Cluster Event"
# RDS event ids (RDS and Aurora User Guides, "Amazon RDS event categories and event messages").
AUTO_STARTED = frozenset({"RDS-EVENT-0154", "RDS-EVENT-0153"})  # started after seven days stopped
STATE_EVENTS = frozenset({"RDS-EVENT-0087", "RDS-EVENT-0088", "RDS-EVENT-0150", "RDS-EVENT-0151"})
# Resources per work item: each one is one call, so a small item keeps a slow or throttled batch short.
BATCH_SIZE = 20
Kind = Literal["db", "cluster"]
KINDS: tuple[Kind, ...] = ("db", "cluster")
DESIRED: Mapping[Action, str] = {"start": "available", "stop": "stopped"}
UNDER_WAY: Mapping[Action, str] = {"start": "starting", "stop": "stopping"}
ACTS_ON: Mapping[Action, str] = {"start": "stopped", "stop": "available"}
# Statuses of a running resource busy with work of its own, which ends by itself (the RDS User Guide's status table
# bills instance hours for each): a start is done, a stop waits. Aurora applies pending maintenance right after a start
# ("Aurora applies any scheduled maintenance to your stopped cluster after it's started again"), and a start may be
# followed by a backup or the end of a storage optimization ("can sometimes take up to and even beyond 24 hours").
BUSY_RUNNING = frozenset({"backing-up", "maintenance", "modifying", "storage-optimization", "upgrading"})
# How long an act waits for a resource it cannot act on yet, from its first act (the slot's time is no measure: the
# planner paces batches over up to 15 minutes). A stop waits out a backup or maintenance at the stop slot, so the
# database does not run all night; a start waits out a stop under way, which takes longer than 20 minutes for a
# Multi-AZ or large instance ("For a Multi-AZ deployment, a large amount of time might be required to stop a DB
# instance.", USER_StopInstance).
ACT_WINDOW: Mapping[Action, timedelta] = {"start": timedelta(minutes=60), "stop": timedelta(hours=3)}
# How long a stop after RDS's seven-day auto-start waits, from the event: the start ("usually takes several minutes"
# for Aurora, minutes to hours for a large instance), then the maintenance RDS held back while it was stopped, then a
# backup. Past it, one alert; the database then runs until the next stop slot.
RESTOP_WINDOW = timedelta(hours=6)
# After the auto-start event RDS may still answer `stopped` for a while (nothing documents read-after-event
# consistency): a re-stop reading `stopped` this soon after the event waits; later, `stopped` is real (its owner
# stopped it).
RESTOP_STALE_READ = timedelta(minutes=30)
# The verification time of a stop or start, at least: Multi-AZ and large instances take longer than EC2's default.
VERIFY_MINUTES = 60
# Statuses that do not pass by themselves: nothing to start or stop until someone repairs or deletes the resource.
BROKEN = frozenset(
    {
        "cloning-failed",  # Aurora: "Cloning a DB cluster failed."
        "deleting",
        "failed",
        "inaccessible-encryption-credentials",
        "inaccessible-encryption-credentials-recoverable",
        "insufficient-capacity",  # "Amazon RDS can't create your instance because sufficient capacity isn't ..."
        "migration-failed",  # Aurora: "A migration failed."
        "restore-error",
        "storage-full",
    }
)
# The resource changed state by itself or under someone else: try again later, within the slot's deadline.
# InvalidDBShardGroupState (StopDBCluster/StartDBCluster, Aurora Limitless): "The DB shard group must be in the
# available state.", a state that passes like the others.
RETRY_CODES = (
    frozenset({"InvalidDBInstanceState", "InvalidDBClusterStateFault", "InvalidDBShardGroupState"}) | THROTTLING_ERRORS
)
GONE_CODES = frozenset({"DBInstanceNotFound", "DBClusterNotFoundFault"})


@dataclass(frozen=True)
class RdsActMessage(ScheduledAct):
    """Start or stop RDS instances and Aurora clusters (ledger ids `db:<id>`, `cluster:<id>`) of one target."""

    OMIT_WHEN_NONE: ClassVar[frozenset[str]] = frozenset()
    IDS_FIELD: ClassVar[str] = "resource_ids"

    resource_ids: tuple[str, ...]
    # A stop after RDS's seven-day auto-start (RDS-EVENT-0154/0153): a `stopped` read soon after the event is stale.
    restop: bool = False
    kind: Literal["rds-act"] = "rds-act"


@dataclass(frozen=True)
class RdsEvent:
    """An `RDS DB Instance Event` or `RDS DB Cluster Event`: which resource, which event, when; no status."""

    resource_id: str  # ledger id
    event_id: str
    time: str
    region: str
    account: str


@dataclass(frozen=True)
class Database:
    """One DB instance or Aurora cluster as DescribeDBInstances/DescribeDBClusters lists it."""

    resource_id: str  # ledger id
    status: str
    tags: Mapping[str, str]
    # Why an instance of a DB cluster is left to its cluster ("" if it belongs to none).
    member: str
    # Why AWS refuses to stop this resource at all ("" if it does not).
    unsupported: str

    @property
    def kind(self) -> Kind:
        return "db" if self.resource_id.startswith("db:") else "cluster"

    @property
    def identifier(self) -> str:
        return self.resource_id.split(":", 1)[1]


def _instance(raw: Mapping[str, Any]) -> Database:
    engine = str(raw.get("Engine", ""))
    if raw.get("ReadReplicaSourceDBInstanceIdentifier") or raw.get("ReadReplicaSourceDBClusterIdentifier"):
        unsupported = "a read replica: RDS cannot stop it"
    elif raw.get("ReadReplicaDBInstanceIdentifiers") or raw.get("ReadReplicaDBClusterIdentifiers"):
        # ...Cluster...: the Aurora clusters replicating this instance ("when you create an Aurora read replica of an
        # RDS for MySQL DB instance, the Aurora MySQL DB cluster for the Aurora read replica is shown").
        unsupported = "has read replicas: RDS cannot stop it"
    elif engine.startswith("sqlserver") and raw.get("MultiAZ"):
        unsupported = "SQL Server in a Multi-AZ configuration: RDS cannot stop it"
    elif engine.startswith("custom-"):
        unsupported = f"RDS Custom ({engine}): StopDBInstance does not apply"
    else:
        unsupported = ""
    cluster = raw.get("DBClusterIdentifier")
    if not cluster:
        member = ""
    elif engine.startswith("aurora"):
        member = f"member of Aurora cluster {cluster}: scheduled through the cluster"
    else:
        # A Multi-AZ DB cluster of RDS (or DocumentDB, Neptune): its cluster is reported, not scheduled.
        member = f"member of the DB cluster {cluster} ({engine}, not Aurora): only Aurora clusters are scheduled"
    return Database(
        resource_id=f"db:{raw['DBInstanceIdentifier']}",
        status=str(raw.get("DBInstanceStatus", "")),
        tags=tag_dict(raw.get("TagList")),
        member=member,
        unsupported=unsupported,
    )


def _cluster(raw: Mapping[str, Any]) -> Database:
    engine = str(raw.get("Engine", ""))
    mode = str(raw.get("EngineMode", "provisioned"))
    if not engine.startswith("aurora"):
        # Multi-AZ DB clusters of RDS, and DocumentDB and Neptune clusters, which the same API lists.
        unsupported = f"not an Aurora cluster ({engine}): StopDBCluster applies to Aurora only"
    elif mode == "serverless":
        unsupported = "Aurora Serverless v1: RDS cannot stop it"
    elif mode == "multimaster":
        unsupported = "Aurora multi-master: RDS cannot stop it"
    elif raw.get("GlobalClusterIdentifier"):
        unsupported = f"part of the Aurora global database {raw['GlobalClusterIdentifier']}: RDS cannot stop it"
    elif raw.get("ReplicationSourceIdentifier") or raw.get("ReadReplicaIdentifiers"):
        unsupported = "replicates to or from another cluster: RDS cannot stop it"
    else:
        unsupported = ""
    return Database(
        resource_id=f"cluster:{raw['DBClusterIdentifier']}",
        status=str(raw.get("Status", "")),
        tags=tag_dict(raw.get("TagList")),
        member="",
        unsupported=unsupported,
    )


def _listed(rds: Any) -> Iterator[Database]:
    """Every instance and cluster of the target (RDS filters neither by tag: the tags are compared here)."""
    for page in rds.get_paginator("describe_db_instances").paginate():
        yield from (_instance(raw) for raw in page.get("DBInstances", []))
    for page in rds.get_paginator("describe_db_clusters").paginate():
        yield from (_cluster(raw) for raw in page.get("DBClusters", []))


def _describe(rds: Any, resource_id: str) -> Database | None:
    kind, identifier = resource_id.split(":", 1)
    try:
        if kind == "db":
            found = rds.describe_db_instances(DBInstanceIdentifier=identifier).get("DBInstances", [])
            return _instance(found[0]) if found else None
        found = rds.describe_db_clusters(DBClusterIdentifier=identifier).get("DBClusters", [])
        return _cluster(found[0]) if found else None
    except ClientError as error:
        if error_code(error) in GONE_CODES:
            return None
        raise


def _targeted(rt: SchedulerRuntime, database: Database) -> bool:
    return carries_all(database.tags, rt.config.targets.tags)


def decide(database: Database, action: Action, opt_out_tag_key: str | None) -> Decision:
    """What to do with one instance or cluster for one action, from its listing alone."""
    decided = partial(Decision, database.resource_id)
    if carries_key(database.tags, opt_out_tag_key):
        return decided("skip", f"carries the opt-out tag {opt_out_tag_key}")
    if database.member:
        return decided("skip", database.member)
    if database.unsupported:
        return decided("report", database.unsupported)
    if _broken(database.status):
        return decided("report", f"{database.status}: nothing to {action}")
    if database.status in (DESIRED[action], UNDER_WAY[action]):
        return decided("already", database.status)
    if action == "start" and _busy_running(database.status):
        return decided("already", database.status)  # running, busy with work of its own
    if database.status == ACTS_ON[action]:
        return decided("act")
    # starting, stopping, backing-up, modifying, rebooting, maintenance, upgrading...: passes by itself.
    return decided("wait", f"{database.status}: {action} once it settles")


def _broken(status: str) -> bool:
    return status in BROKEN or status.startswith("incompatible-")


def _busy_running(status: str) -> bool:
    return status in BUSY_RUNNING or status.startswith("configuring-")


# ---------------------------------------------------------------------------------------------------------------
# Adapter interface (handlers.py)
# ---------------------------------------------------------------------------------------------------------------


def enabled(rt: SchedulerRuntime) -> bool:
    # Tag targeting only: instance ids name EC2 instances, and scheduling every database of an account by default
    # would stop what nobody asked for.
    return rt.config.rds and bool(rt.config.targets.tags)


def plan(rt: SchedulerRuntime, action: Action, slot: str, sender: Sink, summary: dict[str, Any]) -> list[str]:
    failures: list[str] = []
    for target in targets_of(rt.config.scope, rt.clients.default_region):
        try:
            plan_target(rt, action, slot, target, sender, summary)
        except ClientError as error:
            logger.exception("databases not listed", extra={"target": target.describe()})
            failures.append(f"{target.describe()} (RDS): {error_code(error)}")
    return failures


def plan_target(
    rt: SchedulerRuntime, action: Action, slot: str, target: Target, sender: Sink, summary: dict[str, Any]
) -> None:
    """The databases of one target: their act batches onto `sender` once all are listed (a listing error, raised,
    sends none of them)."""
    to_act: list[str] = []
    rds = rt.clients.client("rds", target.region, target.role_arn)
    for database in _listed(rds):
        if not _targeted(rt, database):
            continue
        decision = decide(database, action, rt.config.opt_out_tag_key)
        if decision.verdict != "skip":
            # The worker re-reads each one: it acts, waits, reports it once, or (already there) records
            # the slot, so that an older slot still waiting (a stop after RDS's auto-start) cannot undo it.
            to_act.append(database.resource_id)
        if decision.verdict == "already":
            summary["already"] += 1
        elif decision.verdict == "skip":
            summary["skipped"].append(f"{database.resource_id}: {decision.reason}")
        elif decision.verdict == "report":
            summary["reported"].append(f"{database.resource_id}: {decision.reason}")
    for start in range(0, len(to_act), BATCH_SIZE):
        batch = tuple(to_act[start : start + BATCH_SIZE])
        sender.add(RdsActMessage(**act_of(rt, action, slot, target), resource_ids=batch))


def handles(item: Any) -> bool:
    if isinstance(item, CheckMessage):
        return item.resource_id.startswith(tuple(f"{kind}:" for kind in KINDS))
    return isinstance(item, RdsActMessage | RdsEvent)


def handle(rt: SchedulerRuntime, own_account: str, item: Any) -> dict[str, Any]:
    if isinstance(item, RdsActMessage):
        return act(rt, item)
    if isinstance(item, CheckMessage):
        return verify_database(rt, Target(item.region, item.role_arn), item.resource_id, item)
    if isinstance(item, RdsEvent):
        return on_event(rt, own_account, item)
    raise MalformedEventError(f"no RDS handler for {type(item).__name__}")


# ---------------------------------------------------------------------------------------------------------------
# Messages and events
# ---------------------------------------------------------------------------------------------------------------


def decode_act(payload: Mapping[str, Any]) -> RdsActMessage:
    ids = payload.get("resource_ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) and _is_ledger_id(i) for i in ids):
        raise MalformedEventError(f"message field 'resource_ids' must be a list of db:... or cluster:..., got {ids!r}")
    restop = payload.get("restop", False)
    if not isinstance(restop, bool):
        raise MalformedEventError(f"message field 'restop' must be true or false, got {restop!r}")
    return RdsActMessage(**act_fields(payload), resource_ids=tuple(ids), restop=restop)


def _is_ledger_id(value: str) -> bool:
    kind, _, identifier = value.partition(":")
    return kind in KINDS and bool(identifier)


def decode_event(event: Mapping[str, Any]) -> RdsEvent:
    """The resource comes from `detail.SourceArn` (`arn:aws:rds:<region>:<account>:db:<id>` or `...:cluster:<id>`):
    AWS's own examples show `SourceIdentifier` both bare and as `rds:<id>`."""
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise MalformedEventError("RDS event has no detail object")
    arn = text(detail, "SourceArn", where="detail")
    fields = arn.split(":", 6)
    if len(fields) != 7 or fields[2] != "rds" or fields[5] not in KINDS or not fields[6]:
        raise MalformedEventError(f"RDS event detail.SourceArn is not a db or cluster ARN: {arn!r}")
    return RdsEvent(
        resource_id=f"{fields[5]}:{fields[6]}",
        event_id=text(detail, "EventID", where="detail"),
        time=time_field(event, "time"),
        region=text(event, "region"),
        account=text(event, "account"),
    )


DECODERS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "rds-act": decode_act,
    INSTANCE_EVENT: decode_event,
    CLUSTER_EVENT: decode_event,
}


def on_event(rt: SchedulerRuntime, own_account: str, event: RdsEvent) -> dict[str, Any]:
    result: dict[str, Any] = {"resource_id": event.resource_id, "event_id": event.event_id}
    target = event_target(rt.config.scope, event.region, event.account, own_account, rt.clients.default_region)
    if target is None:
        return {**result, "outcome": "ignored"}
    if event.event_id in AUTO_STARTED:
        entry = rt.ledger.get(ledger_key(rt, target, event.resource_id))
        if entry is None or action_of_entry(entry) != "stop":
            # Not ours, or last started here: RDS's start changes nothing the schedule asked for.
            return {**result, "outcome": "ignored"}
        logger.info("started by RDS after seven days stopped: stopping again", extra=result)
        restop = RdsActMessage(
            **act_of(rt, "stop", event.time, target),
            resource_ids=(event.resource_id,),
            deadline=format_time(parse_time(event.time, "time") + RESTOP_WINDOW),
            restop=True,
        )
        return {**result, "outcome": "restop", **act(rt, restop)}
    if event.event_id in STATE_EVENTS:
        return verify_database(rt, target, event.resource_id, None)
    return {**result, "outcome": "ignored"}


# ---------------------------------------------------------------------------------------------------------------
# Worker: act and verify
# ---------------------------------------------------------------------------------------------------------------


def act(rt: SchedulerRuntime, message: RdsActMessage) -> dict[str, Any]:
    """One call per (resource, action, slot), whatever the deliveries; each resource is read again first."""
    target = Target(message.region, message.role_arn)
    if message.deadline is None:
        # First handled now: the waits of RDS's window count from here, whenever the planner sent the item.
        message = replace(message, deadline=format_time(rt.clock() + _window(rt, ACT_WINDOW[message.action])))
    rds = rt.clients.client("rds", target.region, target.role_arn)
    ttl = rt.config.completion.ledger_ttl_days
    request = f"{message.action}@{message.slot}"
    result: dict[str, Any] = {"acted": [], "already": [], "reported": [], "superseded": [], "left": [], "waiting": []}
    # AWS's answer to the latest refused call of each id still waiting: the deadline alert gives it as the cause.
    refusals: dict[str, str] = {}
    for resource_id in message.resource_ids:
        database = _describe(rds, resource_id)
        if database is None:
            report_once(rt, target, resource_id, "not found (deleted, or renamed)")
            result["reported"].append(resource_id)
            continue
        if superseded(rt, target, resource_id, message.slot):
            result["superseded"].append(resource_id)
            continue
        if not _targeted(rt, database):
            result["left"].append(resource_id)
            continue
        decision = decide(database, message.action, rt.config.opt_out_tag_key)
        if decision.verdict == "wait" or (decision.verdict == "already" and _stale_stopped(rt, message, database)):
            result["waiting"].append(resource_id)
        elif decision.verdict == "already":
            result["already"].append(resource_id)
            # There or on its way (its owner, RDS's auto-start, a delivery that died after its call): this slot
            # is now the resource's newest, verified like ours.
            expect(rt, target, resource_id, message.action, message.slot, _verify_minutes(rt))
        elif decision.verdict == "skip":
            result["left"].append(resource_id)  # opted out, or joined a cluster, since the plan
        elif decision.verdict == "report":
            report_once(rt, target, resource_id, decision.reason)
            result["reported"].append(resource_id)
        else:
            held = claim(rt, target, resource_id, request, ttl)
            if held.status == "in_flight":
                result["waiting"].append(resource_id)  # another delivery is calling now, or died doing so
                continue
            if held.status == "made":
                result["already"].append(resource_id)
                continue
            try:
                status = _call(rds, message.action, database)
            except ClientError as error:
                code = error_code(error)
                release(rt, held, code, ttl)
                answer = error.response.get("Error", {}).get("Message")
                refusal = f"{code}: {answer}" if answer else code
                outcome = _refused(rt, target, message, resource_id, code, refusal)
                if outcome == "waiting":
                    refusals[resource_id] = refusal
                result[outcome].append(resource_id)
                continue
            record_made(rt, held, [status], ttl)
            expect(rt, target, resource_id, message.action, message.slot, _verify_minutes(rt))
            result["acted"].append(resource_id)
    waiting = result["waiting"]
    if message.deadline is not None and rt.clock() >= parse_time(message.deadline, "deadline"):
        # Before send_back's own alert (one per resource and slot), so that the alert names AWS's refusal.
        for resource_id, refusal in refusals.items():
            reason = f"not acted on by the deadline: refused {refusal}"
            fail_once(rt, target, resource_id, message.action, message.slot, reason)
    send_back(rt, target, message, waiting, waiting)
    return {"action": message.action, "slot": message.slot, **result}


def _call(rds: Any, action: Action, database: Database) -> str:
    """One Start/Stop call; the status RDS answers. A stop never takes a snapshot (no DBSnapshotIdentifier): the
    module's backups are its own business, and the snapshot would need rights over snapshots."""
    if database.kind == "db":
        call = rds.start_db_instance if action == "start" else rds.stop_db_instance
        answer = call(DBInstanceIdentifier=database.identifier).get("DBInstance", {})
        return str(answer.get("DBInstanceStatus", ""))
    call = rds.start_db_cluster if action == "start" else rds.stop_db_cluster
    return str(call(DBClusterIdentifier=database.identifier).get("DBCluster", {}).get("Status", ""))


def _window(rt: SchedulerRuntime, window: timedelta) -> timedelta:
    return max(window, timedelta(minutes=rt.config.completion.timeout_minutes))


def _verify_minutes(rt: SchedulerRuntime) -> int:
    return max(VERIFY_MINUTES, rt.config.completion.timeout_minutes)


def _stale_stopped(rt: SchedulerRuntime, message: RdsActMessage, database: Database) -> bool:
    """A re-stop reading `stopped` soon after RDS said it is starting the resource: the read predates the start."""
    return (
        message.restop
        and database.status == DESIRED["stop"]
        and rt.clock() < parse_time(message.slot, "slot") + RESTOP_STALE_READ
    )


def _refused(
    rt: SchedulerRuntime, target: Target, message: RdsActMessage, resource_id: str, code: str, refusal: str
) -> str:
    """Where a refused call leaves the resource in the result: waiting (retried until the deadline), or reported."""
    if code in RETRY_CODES:
        # Its status changed since the read (a backup began, its owner acted), or the API throttled: later.
        return "waiting"
    if code in GONE_CODES:
        report_once(rt, target, resource_id, "not found (deleted, or renamed)")
        return "reported"
    # KMSKeyNotAccessibleFault (the key is disabled or its grant revoked: someone must repair it),
    # InsufficientDBInstanceCapacity (AWS documents no retry advice and names the fix: another instance class or
    # Availability Zone), AccessDenied, and anything else: one alert with the code, no retries that cannot help.
    fail_once(rt, target, resource_id, message.action, message.slot, f"refused: {refusal}")
    return "reported"


def verify_database(
    rt: SchedulerRuntime, target: Target, resource_id: str, check: CheckMessage | None
) -> dict[str, Any]:
    # A client only for a resource of the ledger (see handlers.verify_instance): no AssumeRole for another's.
    rds = partial(rt.clients.client, "rds", target.region, target.role_arn)
    return verify(rt, target, resource_id, check, partial(_observe, rds, resource_id))


def _observe(rds: Callable[[], Any], resource_id: str, entry: LedgerEntry, at_deadline: bool) -> Observation:
    """Before the deadline only a definite outcome counts: the desired status, gone, or broken."""
    action = action_of_entry(entry)
    database = _describe(rds(), resource_id)
    if database is None:
        return Observation(state=None, reason=f"{resource_id} no longer exists")
    if database.status == DESIRED[action] or (action == "start" and _busy_running(database.status)):
        return Observation(state="available")
    broken = _broken(database.status)
    if at_deadline or broken:
        return Observation(state="failed", reason=f"{database.status} (wanted {DESIRED[action]} after {action})")
    return Observation(state="pending", reason=database.status)
