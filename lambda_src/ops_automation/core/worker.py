"""The work-queue consumer every module shares: partial batch failures, and back-off through SQS.

A record that fails is handed back to SQS with a short, growing visibility timeout (instead of waiting out the
queue's 6 x function-timeout visibility, or sleeping in the invocation). After the first throttling error, and
once the invocation has used most of its time, the remaining records are handed back without calling AWS: one
slot must not starve the account's EC2 API, and no run may end near its timeout.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from .errors import MalformedEventError, is_throttling
from .events import Decoder, parse_work_body
from .fanout import backoff_seconds
from .observability import logger
from .runtime import Runtime

# Stop starting records once this share of the invocation's time is used.
TIME_BUDGET_SHARE = 0.6

# Every record rejected must look the same to the operator whatever else was in its batch: with Powertools' default
# an all-failed batch raises (function error, whole batch retried) while the same record in a mixed batch does not.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class RetryLater(Exception):
    """The item cannot be done now but will be later (an instance `stopping`, a throttled API)."""


class Deferred(Exception):
    """The record was handed back to SQS unprocessed."""


@dataclass
class _Batch:
    context: LambdaContext
    start_remaining_ms: int
    throttled: bool = False

    def out_of_time(self) -> bool:
        used = self.start_remaining_ms - self.context.get_remaining_time_in_millis()
        return used > TIME_BUDGET_SHARE * self.start_remaining_ms


def consume(
    event: dict[str, Any],
    context: LambdaContext,
    sqs: Callable[[], Any],
    queue_url: str,
    decode: Callable[[str], Any],
    handle: Callable[[Any], dict[str, Any]],
    give_up: Callable[[SQSRecord, str], None],
    max_receive_count: int,
) -> PartialItemFailureResponse:
    """`give_up(record, why)` is called when a record fails on its last receive: the redrive moves it to the
    dead-letter queue next, and the alarm on that queue cannot say which item it was."""
    batch = _Batch(context, context.get_remaining_time_in_millis())

    def defer(record: SQSRecord, why: str) -> None:
        receives = int(record.attributes.approximate_receive_count or 1)
        if receives >= max_receive_count:
            give_up(record, why)
            return
        seconds = backoff_seconds(receives)
        try:
            sqs().change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=record.receipt_handle, VisibilityTimeout=seconds
            )
        except Exception:
            logger.exception(
                "could not shorten the visibility of a failed record", extra={"message_id": record.message_id}
            )
        logger.info("record deferred", extra={"message_id": record.message_id, "why": why, "retry_in_seconds": seconds})

    def record_handler(record: SQSRecord) -> dict[str, Any]:
        if batch.throttled or batch.out_of_time():
            defer(record, "throttled earlier in this batch" if batch.throttled else "invocation time budget used")
            raise Deferred(record.message_id)
        try:
            item = decode(record.body)
        except MalformedEventError as error:
            logger.error("malformed work item", extra={"message_id": record.message_id, "reason": str(error)})
            defer(record, "malformed")
            raise
        try:
            return handle(item)
        except RetryLater as error:
            defer(record, str(error))
            raise
        except Exception as error:
            if is_throttling(error):
                batch.throttled = True
            defer(record, type(error).__name__)
            raise

    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)


def consume_work(
    rt: Runtime[Any],
    event: dict[str, Any],
    context: LambdaContext,
    decoders: Mapping[str, Decoder],
    handle: Callable[[Any], dict[str, Any]],
) -> PartialItemFailureResponse:
    """A module's work handler: its message kinds (`decoders`) and the core's, each handled by `handle`; a record
    failing on its last receive is named in an alert."""
    logger.append_keys(policy=rt.policy)
    return consume(
        event,
        context,
        sqs=lambda: rt.clients.client("sqs"),
        queue_url=rt.common.work_queue_url,
        decode=lambda body: parse_work_body(body, decoders),
        handle=handle,
        give_up=lambda record, why: rt.alerts.send(
            "work item given up to the dead-letter queue",
            {"message_id": record.message_id, "why": why, "body": record.body[:4000]},
        ),
        max_receive_count=rt.common.max_receive_count,
    )
