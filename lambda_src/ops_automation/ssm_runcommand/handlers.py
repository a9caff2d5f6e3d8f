"""Scheduled Run Command with an outcome per instance.

schedule → `plan_handler` enqueues one `send` item per target (region x account) for the tag-targeted command and
one per 50 listed ids → `work_handler` lists the expected instances (EC2) and which of them SSM manages
(DescribeInstanceInformation), claims (chunk, slot) once, calls SendCommand (one call for tags, whatever the fleet
size; SSM resolves them), records the command and one pending item per instance, and schedules a delayed check at
the deadline → the two Run Command events (triggers to re-read: they carry no exit code) or the check read the
invocations (ListCommandInvocations, Details) and complete each instance once: one alert per instance that did not
succeed, with its status, exit code and where its output is. Instances not running, not managed by SSM, or not
found are named, never silently absent: listed ids at the send, tag-targeted ones (SSM may still reach them) when the
command ends or at the deadline.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, ClassVar, Literal

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from ..core.claims import claim, record_made, release, take_over
from ..core.clients import PLANNER_ATTEMPTS, WORKER_ATTEMPTS
from ..core.completion import CompletionNames, Observation, complete, first_failure, ledger_key
from ..core.config import CommonConfig
from ..core.errors import MalformedEventError, PartialFailure, error_code, is_throttling
from ..core.events import (
    CheckMessage,
    WorkMessage,
    format_time,
    optional_text,
    parse_schedule_event,
    text,
    text_list,
    time_field,
)
from ..core.fanout import BatchSender, send_delayed
from ..core.ledger import LedgerEntry
from ..core.observability import count, logger, metrics
from ..core.runtime import Lazy, Runtime, build_runtime
from ..core.scope import Target, event_target, targets_of
from ..core.tagging import carries_all
from ..core.targeting import Instance, chunked, resolve_instances, stream_instances
from ..core.worker import RetryLater, consume_work
from .decisions import (
    EXPIRY_MARGIN,
    MAX_IDS_PER_COMMAND,
    InvocationVerdict,
    RunCommandConfig,
    comment,
    exit_code_of,
    invocation_verdict,
    output_url_of,
    send_arguments,
)

SERVICE = "ssm-runcommand"
COMMAND_EVENT = "EC2 Command Status-change Notification"
INVOCATION_EVENT = "EC2 Command Invocation Status-change Notification"
RUN = CompletionNames(
    "run command failed on instance", "InvocationsSucceeded", "InvocationsFailed", "command succeeded on instance"
)
NOT_SENT_ALERT = "run command not sent"
# SendCommand errors a redelivery cannot cure (API_SendCommand, Errors): the slot's command is given up, alerted
# once. Throttling and InternalServerError are retried through the queue.
CONFIGURATION_ERRORS = frozenset(
    {
        "InvalidDocument",
        "InvalidDocumentVersion",
        "InvalidParameters",
        "InvalidOutputFolder",
        "InvalidRole",
        "InvalidNotificationConfig",
        "MaxDocumentSizeExceeded",
        "UnsupportedPlatformType",
        "AccessDeniedException",
        "ValidationException",
    }
)
# One id that is not a managed node (or terminated) refuses a whole id-targeted SendCommand.
INVALID_INSTANCE = "InvalidInstanceId"
# Event statuses that are not an end: re-reading on them would cost a call per instance and transition for nothing.
NOT_FINAL_EVENT_STATUSES = frozenset({"Pending", "InProgress", "In Progress", "Delayed"})
# Invocation outcomes in which the document usually never ran (no output to point to, unless a plugin reported a code).
NEVER_STARTED = frozenset({"DeliveryTimedOut", "Undeliverable", "Terminated", "AccessDenied", "InvalidPlatform"})
# Command StatusDetails (without spaces) that end a command before it reached every instance.
WHOLE_COMMAND_ENDINGS = frozenset({"NoInstancesInTag", "RateExceeded", "Cancelled", "Canceled", "AccessDenied"})
# States SendCommand can deliver to; a stopped instance's invocation would only wait out the delivery timeout.
RUNNING = frozenset({"pending", "running"})
# Every state but terminated: a tag-targeted instance that is stopped is named, not skipped.
LISTED_STATES = ("pending", "running", "stopping", "stopped", "shutting-down")
ALL_STATES = (*LISTED_STATES, "terminated")
# ListCommandInvocations, ListCommands and DescribeInstanceInformation return at most 50 items a page.
PAGE_SIZE = 50
# The first read of a command's invocations may miss it (eventual consistency): the first check comes this long after
# the send even when the deadline is later; later ones at the deadline.
SEND_TO_FIRST_CHECK = timedelta(minutes=5)

RunRuntime = Runtime[RunCommandConfig]


def _build(max_attempts: int) -> RunRuntime:
    return build_runtime(SERVICE, RunCommandConfig.from_env(), CommonConfig.from_env(), max_attempts=max_attempts)


planner_runtime: Lazy[RunRuntime] = Lazy(partial(_build, PLANNER_ATTEMPTS))
worker_runtime: Lazy[RunRuntime] = Lazy(partial(_build, WORKER_ATTEMPTS))


@dataclass(frozen=True)
class SendMessage(WorkMessage):
    """Send the command of one slot to one chunk of one target: `tags` (SSM resolves the target tags) or `ids-<n>`
    (at most 50 listed ids)."""

    OMIT_WHEN_NONE: ClassVar[frozenset[str]] = frozenset()

    policy: str
    slot: str
    region: str
    role_arn: str | None
    chunk: str
    instance_ids: tuple[str, ...]
    kind: Literal["send"] = "send"


@dataclass(frozen=True)
class CommandEvent:
    """Either Run Command event: a trigger to re-read the command (and the instance, for an invocation event)."""

    command_id: str
    instance_id: str | None
    region: str
    account: str
    # The status the event reports (its spellings beyond Success/Failed/TimedOut/Cancelled are not documented).
    status: str


def decode_send(payload: Mapping[str, Any]) -> SendMessage:
    chunk = text(payload, "chunk")
    if chunk != "tags" and not chunk.startswith("ids-"):
        raise MalformedEventError(f"message field 'chunk' must be tags or ids-<n>, got {chunk!r}")
    return SendMessage(
        policy=text(payload, "policy"),
        slot=time_field(payload, "slot"),
        region=text(payload, "region"),
        role_arn=optional_text(payload, "role_arn"),
        chunk=chunk,
        instance_ids=text_list(payload, "instance_ids", prefix="i-"),
    )


def decode_command_event(event: Mapping[str, Any]) -> CommandEvent:
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise MalformedEventError("Run Command event has no detail object")
    # The invocation event names its instance in detail.instance-id; its `resources` may name another (the docs'
    # own example does), so `resources` is never read.
    instance_id = detail.get("instance-id")
    if event.get("detail-type") == INVOCATION_EVENT and not isinstance(instance_id, str):
        raise MalformedEventError("invocation event has no detail.instance-id")
    return CommandEvent(
        command_id=text(detail, "command-id", where="detail"),
        instance_id=instance_id if isinstance(instance_id, str) else None,
        region=text(event, "region"),
        account=text(event, "account"),
        status=str(detail.get("status") or ""),
    )


DECODERS = {"send": decode_send, COMMAND_EVENT: decode_command_event, INVOCATION_EVENT: decode_command_event}


def run_id(slot: str, instance_id: str) -> str:
    """The ledger id of one instance's run in one slot: one outcome, one alert."""
    return f"run@{slot}#{instance_id}"


def command_item(command_id: str) -> str:
    return f"command#{command_id}"


# ---------------------------------------------------------------------------------------------------------------
# Planner
# ---------------------------------------------------------------------------------------------------------------


@logger.inject_lambda_context
@metrics.log_metrics
def plan_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rt = planner_runtime()
    slot = parse_schedule_event(event).slot
    logger.append_keys(policy=rt.policy, slot=slot)
    # A repeated delivery of the schedule plans again; the worker's claim per (chunk, slot) sends one command.
    sender: BatchSender[SendMessage] = BatchSender(rt.clients.client("sqs"), rt.common.work_queue_url)
    for message in planned_sends(rt, slot):
        sender.add(message)
    sender.flush()
    if sender.unsent:
        failures = [f"{m.region} {m.chunk}: not enqueued" for m in sender.unsent]
        rt.alerts.send("run command not planned for some targets", {"slot": slot, "failures": failures})
        raise PartialFailure(failures)
    logger.info("run command planned", extra={"enqueued": sender.sent})
    return {"slot": slot, "enqueued": sender.sent}


def planned_sends(rt: RunRuntime, slot: str) -> list[SendMessage]:
    """One slot's commands: per target, one for the tag-targeted instances and one per chunk of explicit ids (the
    worker resolves the instances; the operator CLI lists them without sending)."""
    targets = rt.config.targets
    messages: list[SendMessage] = []
    for target in targets_of(rt.config.scope, rt.clients.default_region):
        send_to = partial(SendMessage, rt.policy, slot, target.region, target.role_arn)
        if targets.tags:
            messages.append(send_to("tags", ()))
        for number, ids in enumerate(chunked(sorted(set(targets.instance_ids)), MAX_IDS_PER_COMMAND)):
            messages.append(send_to(f"ids-{number}", tuple(ids)))
    return messages


# ---------------------------------------------------------------------------------------------------------------
# Worker
# ---------------------------------------------------------------------------------------------------------------


@logger.inject_lambda_context
@metrics.log_metrics
def work_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    rt = worker_runtime()
    own_account = context.invoked_function_arn.split(":")[4]
    return consume_work(rt, event, context, DECODERS, partial(handle_item, rt, own_account))


def handle_item(rt: RunRuntime, own_account: str, item: Any) -> dict[str, Any]:
    policy = getattr(item, "policy", rt.policy)  # messages name their policy; events do not
    if policy != rt.policy:
        raise MalformedEventError(f"message for policy {policy!r} reached policy {rt.policy!r}")
    if isinstance(item, SendMessage):
        return send(rt, item)
    if isinstance(item, CheckMessage):
        return check_command(rt, item)
    if isinstance(item, CommandEvent):
        target = event_target(rt.config.scope, item.region, item.account, own_account, rt.clients.default_region)
        if target is None:
            return {"command_id": item.command_id, "outcome": "ignored"}
        return on_event(rt, target, item)
    raise MalformedEventError(f"no handler for {type(item).__name__}")


@dataclass
class Expected:
    """One chunk's instances at send time: those to send to, and those named without a command."""

    to_send: list[str]
    not_sent: dict[str, tuple[str, str]]  # instance id -> (status, reason)
    offline: list[str]
    matched: int
    # Tag-targeted instances not running or not (yet) listed as managed: SSM may still reach them (a stopped node's
    # invocation waits for it; a new node takes minutes to be listed), so their outcome waits for the deadline.
    deferred: dict[str, str] = field(default_factory=dict)  # instance id -> reason


def expected_instances(rt: RunRuntime, ec2: Any, ssm: Any, single_target: bool, message: SendMessage) -> Expected:
    """The instances the chunk should run on: running ones SSM manages are sent to (offline ones too: the agent may
    reconnect before the delivery timeout); the others are named, with their status."""
    targets = rt.config.targets
    expected = Expected(to_send=[], not_sent={}, offline=[], matched=0)
    by_tags = message.chunk == "tags"
    running: list[Instance] = []
    if by_tags:
        stream = stream_instances(ec2, (), targets.tag_map, LISTED_STATES)
        instances = [i for page in stream.pages() for i in page]
    else:
        resolution = resolve_instances(ec2, message.instance_ids, {}, ALL_STATES)
        instances = list(resolution.instances)
        for instance_id in resolution.missing:
            if single_target:
                expected.not_sent[instance_id] = ("NotFound", "NotFound: no such instance (unknown or terminated)")
            else:
                logger.info("listed instance not in this target", extra={"instance_id": instance_id})
        if targets.tags:
            # Carrying every target tag: the tag-targeted command runs on it.
            instances = [i for i in instances if not carries_all(i.tags, targets.tags)]
    expected.matched = len([i for i in instances if i.state not in ("shutting-down", "terminated")])
    for instance in instances:
        if instance.state in RUNNING:
            running.append(instance)
        elif instance.state in ("shutting-down", "terminated") and by_tags:
            # Tag-targeted and being terminated: it left the fleet (listed for a while after), nothing to run.
            logger.info("instance left the fleet", extra={"instance_id": instance.instance_id})
        elif instance.state in ("shutting-down", "terminated"):
            expected.not_sent[instance.instance_id] = ("NotFound", f"NotFound: the instance is {instance.state}")
        elif by_tags:
            expected.deferred[instance.instance_id] = f"NotRunning: the instance was {instance.state} when sent"
        else:
            expected.not_sent[instance.instance_id] = (
                "NotRunning",
                f"NotRunning: the instance is {instance.state}, the command cannot run on it",
            )
    pings = managed_nodes(ssm, [i.instance_id for i in running])
    for instance in running:
        ping = pings.get(instance.instance_id)
        if ping is None:
            reason = (
                "NotManaged: not a managed node of SSM (no SSM Agent, no instance profile with "
                "AmazonSSMManagedInstanceCore, or no route to the SSM endpoints)"
            )
            if by_tags:
                expected.deferred[instance.instance_id] = reason
            else:
                expected.not_sent[instance.instance_id] = ("NotManaged", reason)
            continue
        expected.to_send.append(instance.instance_id)
        if ping != "Online":
            expected.offline.append(instance.instance_id)
    return expected


def managed_nodes(ssm: Any, instance_ids: Sequence[str]) -> dict[str, str]:
    """PingStatus of every given instance SSM manages; unmanaged ones are absent. An id the call refuses
    (InvalidInstanceId: the docs say only "isn't valid or … you don't own") is looked up alone, and absent."""
    found: dict[str, str] = {}
    for ids in chunked(list(instance_ids), PAGE_SIZE):
        found.update(_pings(ssm, ids))
    return found


def _pings(ssm: Any, ids: list[str]) -> dict[str, str]:
    try:
        paginator = ssm.get_paginator("describe_instance_information")
        pages = paginator.paginate(
            Filters=[{"Key": "InstanceIds", "Values": ids}], PaginationConfig={"PageSize": PAGE_SIZE}
        )
        return {n["InstanceId"]: n.get("PingStatus", "") for page in pages for n in page["InstanceInformationList"]}
    except ClientError as error:
        if error_code(error) != INVALID_INSTANCE:
            raise
        if len(ids) == 1:
            return {}
        half = len(ids) // 2
        return {**_pings(ssm, ids[:half]), **_pings(ssm, ids[half:])}


def send(rt: RunRuntime, message: SendMessage) -> dict[str, Any]:
    """One command per (chunk, slot), whatever the deliveries: SendCommand takes no client token, so a claim comes
    first, and a delivery that takes over a stale claim looks for the chunk's commands by `Comment` before sending
    to the instances they do not cover."""
    cfg = rt.config
    target = Target(message.region, message.role_arn)
    ttl = cfg.completion.ledger_ttl_days
    ec2 = rt.clients.client("ec2", target.region, target.role_arn)
    ssm = rt.clients.client("ssm", target.region, target.role_arn)
    label = comment(rt.policy, message.chunk, message.slot)
    result: dict[str, Any] = {"slot": message.slot, "chunk": message.chunk}
    held = claim(rt, target, message.chunk, message.slot, ttl)
    if held.status == "made":
        return {**result, "outcome": "already_sent", "command_ids": list(held.refs)}
    if held.status == "in_flight":
        raise RetryLater(f"another delivery is sending the command of {message.chunk}@{message.slot}")
    single_target = len(targets_of(cfg.scope, rt.clients.default_region)) == 1
    try:
        expected = expected_instances(rt, ec2, ssm, single_target, message)
        adopted = list(commands_sent(ssm, cfg.document_name, label, message.slot)) if held.status == "stale" else []
    except (ClientError, BotoCoreError) as error:
        if held.status == "new":  # nothing sent yet: the next delivery may claim again
            release(rt, held, error_code(error) if isinstance(error, ClientError) else type(error).__name__, ttl)
        raise
    if held.status == "stale" and not take_over(rt, held, ttl):
        raise RetryLater(f"another delivery took over the command of {message.chunk}@{message.slot}")
    for instance_id, (status, reason) in sorted(expected.not_sent.items()):
        fail_not_sent(rt, target, message.slot, instance_id, status, reason)
    # A delivery that died after SendCommand: its commands exist; they are recorded, not sent again.
    for command_id, ids in adopted:
        track(rt, target, message, command_id, ids or expected.to_send, expected.deferred, None)
    covered = {i for _, ids in adopted for i in ids}
    if message.chunk == "tags":
        to_send = [] if adopted else expected.to_send
    else:
        to_send = [i for i in expected.to_send if i not in covered]
    command_ids = [c for c, _ in adopted]
    if not to_send:
        for instance_id, reason in sorted(expected.deferred.items()) if not adopted else ():
            # No command at all (every tagged instance stopped or unmanaged): nothing will reach them.
            fail_not_sent(rt, target, message.slot, instance_id, reason.split(":")[0], reason)
        record_made(rt, held, command_ids, ttl)
        if message.chunk == "tags" and expected.matched == 0:
            # A tag typo or an emptied fleet must not go quiet.
            report_once(rt, target, f"nothing@{message.slot}", message.slot, "no instance carries every target tag")
        outcome = "adopted" if adopted else "nothing_to_send"
        return {**result, "outcome": outcome, "command_ids": command_ids, "not_sent": sorted(expected.not_sent)}
    if expected.offline:
        logger.warning("SSM Agent offline at send (ConnectionLost)", extra={"instance_ids": expected.offline})
    # One attempt: an SDK retry after a timeout or a 5xx could send the command twice.
    once = rt.clients.client("ssm", target.region, target.role_arn, retries=False)
    sent = send_commands(once, cfg, label, to_send if message.chunk != "tags" else [])
    for command_id, ids in sent.commands:
        deferred = {} if ids else expected.deferred
        track(rt, target, message, command_id, ids or to_send, deferred, sent.expires.get(command_id))
        count("CommandsSent")
    command_ids += [c for c, _ in sent.commands]
    for instance_id in sent.refused:
        fail_not_sent(rt, target, message.slot, instance_id, "NotManaged", "NotManaged: SendCommand refused the id")
    if sent.error is not None:
        code = error_code(sent.error) if isinstance(sent.error, ClientError) else type(sent.error).__name__
        if code in CONFIGURATION_ERRORS:
            record_made(rt, held, command_ids, ttl)
            marker = f"refused@{message.slot}#{message.chunk}"
            report_once(rt, target, marker, message.slot, f"SendCommand refused: {sent.error}")
            refused = sent.unsent if message.chunk != "tags" else to_send  # by tags the call names no ids
            for instance_id in [*refused, *expected.deferred]:
                fail_not_sent(rt, target, message.slot, instance_id, "NotSent", f"NotSent: {code}", alert=False)
            count("CommandsNotSent")
            return {**result, "outcome": "refused", "error": code, "command_ids": command_ids}
        if is_throttling(sent.error) and not sent.commands:
            release(rt, held, code, ttl)  # refused before anything was sent: the next delivery sends
        # Otherwise the outcome is unknown (a 5xx, a timeout) or some commands went out: the claim stays pending, and
        # once stale a delivery finds what was sent by its Comment and sends only to the rest.
        raise sent.error
    record_made(rt, held, command_ids, ttl)
    return {
        **result,
        "outcome": "sent",
        "command_ids": command_ids,
        "instances": len(to_send) - len(sent.refused),
        "not_sent": sorted([*expected.not_sent, *sent.refused]),
    }


@dataclass
class Sent:
    commands: list[tuple[str, list[str]]] = field(default_factory=list)  # (command id, its ids; [] by tags)
    expires: dict[str, datetime] = field(default_factory=dict)  # command id -> ExpiresAfter, when SSM gave it
    refused: list[str] = field(default_factory=list)  # ids SendCommand refused alone (InvalidInstanceId)
    unsent: list[str] = field(default_factory=list)  # ids not sent because of `error`
    error: Exception | None = None


def send_commands(ssm: Any, cfg: RunCommandConfig, label: str, instance_ids: list[str]) -> Sent:
    """By tags (no ids) one call; by ids one call, split in halves around an id SendCommand refuses
    (InvalidInstanceId: it stopped being a managed node since it was listed). The first other error stops the
    sending: what was sent is kept, the rest named `unsent`."""
    sent = Sent()

    def call(ids: list[str]) -> None:
        if sent.error is not None:
            sent.unsent.extend(ids)
            return
        try:
            response = ssm.send_command(**send_arguments(cfg, label, ids))
        except (ClientError, BotoCoreError) as error:
            if isinstance(error, ClientError) and ids and error_code(error) == INVALID_INSTANCE:
                if len(ids) == 1:
                    sent.refused.extend(ids)
                    return
                half = len(ids) // 2
                call(ids[:half])
                call(ids[half:])
                return
            sent.error = error
            sent.unsent.extend(ids)
            return
        command = response["Command"]
        sent.commands.append((str(command["CommandId"]), ids))
        if isinstance(command.get("ExpiresAfter"), datetime):
            sent.expires[str(command["CommandId"])] = command["ExpiresAfter"]

    call(instance_ids)
    return sent


def commands_sent(ssm: Any, document_name: str, label: str, slot: str) -> Iterator[tuple[str, list[str]]]:
    """Commands of this document sent since the slot with this chunk's `Comment`, with the ids each was sent to
    ([] when by tags)."""
    name = document_name.split("document/")[-1]
    paginator = ssm.get_paginator("list_commands")
    pages = paginator.paginate(
        Filters=[{"key": "InvokedAfter", "value": slot}, {"key": "DocumentName", "value": name}],
        PaginationConfig={"PageSize": PAGE_SIZE},
    )
    for page in pages:
        for command in page.get("Commands", []):
            if command.get("Comment") == label:
                yield str(command["CommandId"]), [str(i) for i in command.get("InstanceIds") or []]


def track(
    rt: RunRuntime,
    target: Target,
    message: SendMessage,
    command_id: str,
    instance_ids: Sequence[str],
    deferred: Mapping[str, str],
    expires_after: datetime | None,
) -> None:
    """Record the command and a pending run per instance (a `deferred` one with why it may not run), and schedule
    the check (idempotent)."""
    ttl = rt.config.completion.ledger_ttl_days
    now = rt.clock()
    instance_ids = [*instance_ids, *sorted(deferred)]
    rt.ledger.transition(
        ledger_key(rt, target, command_item(command_id)),
        "pending",
        now,
        ttl,
        from_states=(),
        source_id=message.chunk,
        slot=message.slot,
        refs=list(instance_ids),
    )
    for instance_id in instance_ids:
        rt.ledger.transition(
            ledger_key(rt, target, run_id(message.slot, instance_id)),
            "pending",
            now,
            ttl,
            from_states=(),
            source_id=command_id,
            slot=message.slot,
            reason=deferred.get(instance_id, ""),
        )
    # The configured deadline, or later when SSM says the command expires later (a document whose own timeouts
    # exceed the configured execution timeout).
    deadline = now + rt.config.deadline
    if expires_after is not None:
        deadline = max(deadline, expires_after.astimezone(UTC) + EXPIRY_MARGIN)
    check = CheckMessage(
        rt.policy, command_item(command_id), message.chunk, target.region, target.role_arn, message.slot,
        format_time(deadline),
    )  # fmt: skip
    delay = min(SEND_TO_FIRST_CHECK, deadline - now).total_seconds()
    send_delayed(rt.clients.client("sqs"), rt.common.work_queue_url, check, delay)


def _first(rt: RunRuntime, target: Target, resource_id: str, slot: str, reason: str) -> bool:
    return first_failure(rt, target, resource_id, rt.config.completion.ledger_ttl_days, slot=slot, reason=reason)


def fail_not_sent(
    rt: RunRuntime, target: Target, slot: str, instance_id: str, status: str, reason: str, alert: bool = True
) -> None:
    """An instance the command was not sent to: its run fails once (a redelivery finds the item and says nothing)."""
    if not _first(rt, target, run_id(slot, instance_id), slot, reason):
        return
    count(RUN.failed_metric)
    if alert:
        rt.alerts.send(
            RUN.failure_alert,
            {
                "instance_id": instance_id,
                "status": status,
                "reason": reason,
                "slot": slot,
                "region": target.region,
                "account": target.account,
                "command_id": "",
                "exit_code": None,
                "output": "",
            },
        )


def report_once(rt: RunRuntime, target: Target, marker: str, slot: str, reason: str) -> None:
    """One alert per slot for what stops the whole command (a refused SendCommand, no instance matched)."""
    if _first(rt, target, f"reported#{marker}", slot, reason):
        rt.alerts.send(NOT_SENT_ALERT, {"region": target.region, "account": target.account, "reason": reason})


# ---------------------------------------------------------------------------------------------------------------
# Outcomes
# ---------------------------------------------------------------------------------------------------------------


def check_command(rt: RunRuntime, check: CheckMessage) -> dict[str, Any]:
    """The delayed check: before the deadline, settle what is final and look again at the deadline; at it, every
    instance still without a final status, or without an invocation, fails."""
    target = Target(check.region, check.role_arn)
    entry = rt.ledger.get(ledger_key(rt, target, check.resource_id))
    if entry is None:
        return {"resource_id": check.resource_id, "outcome": "ignored"}
    if entry.state != "pending":
        return {"resource_id": check.resource_id, "outcome": "already_" + entry.state}
    now = rt.clock()
    if now < check.deadline_time:
        outcomes = settle(rt, target, entry, None)
        if outcomes.get("pending", 0) or outcomes.get("missing", 0):
            send_delayed(
                rt.clients.client("sqs"), rt.common.work_queue_url, check, (check.deadline_time - now).total_seconds()
            )
            return {"resource_id": check.resource_id, "outcome": "pending", **outcomes}
    else:
        outcomes = settle(rt, target, entry, check)
    rt.ledger.transition(entry.key, "available", rt.clock(), rt.config.completion.ledger_ttl_days, reason="")
    return {"resource_id": check.resource_id, "outcome": "settled", **outcomes}


def on_event(rt: RunRuntime, target: Target, event: CommandEvent) -> dict[str, Any]:
    """Either event re-reads what it names, if it is one of this policy's commands; the check settles the rest."""
    entry = rt.ledger.get(ledger_key(rt, target, command_item(event.command_id)))
    if entry is None:
        return {"command_id": event.command_id, "outcome": "ignored"}
    if entry.state != "pending":
        return {"command_id": event.command_id, "outcome": "already_" + entry.state}
    if event.status in NOT_FINAL_EVENT_STATUSES:
        return {"command_id": event.command_id, "outcome": "not_final", "status": event.status}
    return {"command_id": event.command_id, **settle(rt, target, entry, None, event.instance_id)}


def settle(
    rt: RunRuntime, target: Target, command: LedgerEntry, check: CheckMessage | None, instance_id: str | None = None
) -> dict[str, int]:
    """Complete the runs of the command's invocations (or of the one instance named). With the check at its deadline
    (`check`), an instance still pending times out, and an expected one without an invocation fails."""
    command_id = command.key.resource_id.split("#", 1)[1]
    ssm = rt.clients.client("ssm", target.region, target.role_arn)
    tally: dict[str, int] = {}
    seen: set[str] = set()
    for invocation in invocations(ssm, command_id, instance_id):
        seen.add(invocation["InstanceId"])
        outcome = complete_run(rt, target, command, command_id, invocation["InstanceId"], check, invocation, "")
        tally[outcome] = tally.get(outcome, 0) + 1
    if instance_id is not None:
        return tally
    missing = sorted(set(command.refs) - seen)
    ended = command_ended(ssm, command_id) if missing and check is None else ""
    for instance_id in missing:
        if check is None and not _settled_by_end(rt, target, command.slot, instance_id, ended):
            tally["missing"] = tally.get("missing", 0) + 1  # not listed yet, or not reached yet
            continue
        outcome = complete_run(rt, target, command, command_id, instance_id, check, None, ended)
        tally[outcome] = tally.get(outcome, 0) + 1
    return tally


def command_ended(ssm: Any, command_id: str) -> str:
    """The command's StatusDetails once it has ended (Success, Failed, Incomplete, Rate Exceeded, ...); "" while it
    runs."""
    commands = ssm.list_commands(CommandId=command_id).get("Commands", [])
    if not commands or commands[0].get("Status") in ("Pending", "InProgress", "Cancelling"):
        return ""
    return str(commands[0].get("StatusDetails") or commands[0].get("Status", ""))


def _settled_by_end(rt: RunRuntime, target: Target, slot: str, instance_id: str, ended: str) -> bool:
    """Whether an instance without an invocation is final before the deadline: the command ended as a whole before
    reaching every instance (Rate Exceeded, No Instances In Tag, Cancelled, Access Denied), or it ended and the
    instance was already known not to be reachable at the send (stopped, not listed as managed). After Success or
    Failed, an instance the command was sent to may just not be listed yet: it waits for the deadline."""
    if not ended:
        return False
    if ended.replace(" ", "") in WHOLE_COMMAND_ENDINGS:
        return True
    entry = rt.ledger.get(ledger_key(rt, target, run_id(slot, instance_id)))
    return entry is not None and bool(entry.reason)


def invocations(ssm: Any, command_id: str, instance_id: str | None) -> Iterator[dict[str, Any]]:
    """The command's invocations with their plugins (exit codes, output URLs), 50 a page."""
    arguments: dict[str, Any] = {"CommandId": command_id, "Details": True}
    if instance_id is not None:
        arguments["InstanceId"] = instance_id
    paginator = ssm.get_paginator("list_command_invocations")
    # Right after SendCommand the list may be empty (eventual consistency): nothing final to settle yet.
    try:
        for page in paginator.paginate(**arguments, PaginationConfig={"PageSize": PAGE_SIZE}):
            yield from page.get("CommandInvocations", [])
    except ClientError as error:
        if instance_id is None or error_code(error) != INVALID_INSTANCE:
            raise
        # An instance terminated since (its invocation may not be listed by it any more): left to the check.
        logger.info("invocation not readable by instance", extra={"command_id": command_id, "instance_id": instance_id})


def complete_run(
    rt: RunRuntime,
    target: Target,
    command: LedgerEntry,
    command_id: str,
    instance_id: str,
    check: CheckMessage | None,
    invocation: Mapping[str, Any] | None,
    command_status: str,
) -> str:
    ttl = rt.config.completion.ledger_ttl_days
    succeeded = invocation is not None and _verdict(invocation).outcome == "succeeded"
    if check is None and invocation is not None and _verdict(invocation).outcome == "pending":
        return "pending"  # nothing final to record before the deadline: no ledger call
    key = ledger_key(rt, target, run_id(command.slot, instance_id))
    entry = rt.ledger.get(key)
    if entry is None:
        # An instance SSM resolved from the tags that the send did not list (tagged or registered since).
        rt.ledger.transition(key, "pending", rt.clock(), ttl, from_states=(), source_id=command_id, slot=command.slot)
    elif entry.state == "available" or (entry.state == "failed" and not succeeded):
        # Settled already (its own event, an earlier check): the re-reads of a whole command cost one read each. A
        # failed one that succeeded late goes on to be completed.
        return "already_" + entry.state
    done = complete(
        rt,
        target,
        run_id(command.slot, instance_id),
        check,
        observe=lambda entry: observe(rt.config, command_id, instance_id, invocation, entry.reason, command_status),
        finish=lambda _entry, _observation: {},
        ttl_days=ttl,
        names=RUN,
    )
    return str(done["outcome"])


def _verdict(invocation: Mapping[str, Any]) -> InvocationVerdict:
    exit_code = exit_code_of(invocation.get("CommandPlugins") or [])
    return invocation_verdict(str(invocation.get("Status", "")), str(invocation.get("StatusDetails", "")), exit_code)


def observe(
    cfg: RunCommandConfig,
    command_id: str,
    instance_id: str,
    invocation: Mapping[str, Any] | None,
    known_reason: str,
    command_status: str,
) -> Observation:
    """The instance's outcome from its invocation; without one (the command ended, or the deadline came), the
    reason the send recorded (not running, not managed) or NoInvocation."""
    details: dict[str, Any] = {"instance_id": instance_id, "command_id": command_id}
    if invocation is None:
        ended = f" (the command ended {command_status})" if command_status else ""
        reason = (known_reason or "NoInvocation: SSM ran no invocation on this instance") + ended
        status = reason.split(":")[0]
        return Observation(
            state="failed",
            reason=reason,
            details={**details, "status": status, "exit_code": None, "output": "none: the command did not run here"},
        )
    exit_code = exit_code_of(invocation.get("CommandPlugins") or [])
    verdict = _verdict(invocation)
    # -1: the plugin never started; an execution timeout started by definition, whatever code SSM gives it.
    ran = verdict.status not in NEVER_STARTED or exit_code not in (None, -1)
    details["output"] = (
        cfg.output.location(command_id, instance_id, output_url_of(invocation))
        if ran
        else "none: the command did not run here"
    )
    details.update(status=verdict.status, exit_code=exit_code)
    if verdict.outcome == "succeeded":
        return Observation(state="available", details=details)
    if verdict.outcome == "failed":
        # A tag-targeted instance found stopped or unlisted at the send: say so beside what SSM reports.
        reason = f"{verdict.reason} ({known_reason})" if known_reason else verdict.reason
        return Observation(state="failed", reason=reason, details=details)
    # Still running at the deadline: reported as timed out, with the status it was left in.
    return Observation(state="pending", reason=verdict.reason, details={**details, "status": "TimedOut"})
