"""Work items onto the queue: batched sends that stream with the planner, delayed sends, and back-off through SQS.

A throttled or late work item is not retried by sleeping inside the invocation (billed, and racing the timeout):
its visibility timeout is shortened to a back-off delay, so SQS hands it out again later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .events import WorkMessage, to_body
from .observability import logger

SQS_BATCH_SIZE = 10
# Bytes of bodies per SendMessageBatch: SQS's long-standing batch limit, and the queue's default MaximumMessageSize.
SQS_MAX_BATCH_BYTES = 256 * 1024
SQS_MAX_DELAY_SECONDS = 900
SEND_ATTEMPTS = 3
BACKOFF_BASE_SECONDS = 30
# ChangeMessageVisibility accepts up to 12 hours; a quarter of an hour is enough to let a token bucket refill.
BACKOFF_CAP_SECONDS = 900

M = TypeVar("M", bound=WorkMessage)


@dataclass
class BatchSender(Generic[M]):
    """Collects messages and sends them in batches of at most 10 entries and 256 KiB of bodies, as they fill.
    Entries a batch reports as failed are retried unless SQS says the sender is at fault."""

    sqs: Any
    queue_url: str
    # Work items handed out per second at most, through per-message delays (None: all at once). Spreads calls
    # that draw on a small EC2 token bucket shared with the account's other tools.
    pace_per_second: float | None = None
    sent: int = 0
    unsent: list[M] = field(default_factory=list)
    _pending: list[tuple[M, str, int]] = field(default_factory=list)
    _bytes: int = 0
    _added: int = 0

    def add(self, message: M) -> None:
        body = to_body(message)
        size = len(body.encode())
        if self._pending and (len(self._pending) == SQS_BATCH_SIZE or self._bytes + size > SQS_MAX_BATCH_BYTES):
            self.flush()
        delay = (
            0 if self.pace_per_second is None else int(min(SQS_MAX_DELAY_SECONDS, self._added / self.pace_per_second))
        )
        self._pending.append((message, body, delay))
        self._bytes += size
        self._added += 1

    def flush(self) -> None:
        pending = {str(index): entry for index, entry in enumerate(self._pending)}
        self._pending, self._bytes = [], 0
        for _attempt in range(SEND_ATTEMPTS):
            if not pending:
                break
            response = self.sqs.send_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": entry_id, "MessageBody": body, **({"DelaySeconds": delay} if delay else {})}
                    for entry_id, (_, body, delay) in pending.items()
                ],
            )
            self.sent += len(response.get("Successful", []))
            retry: dict[str, tuple[M, str, int]] = {}
            for failed in response.get("Failed", []):
                entry = pending[failed["Id"]]
                logger.warning(
                    "batch entry rejected",
                    extra={"error_code": failed.get("Code"), "sender_fault": failed.get("SenderFault")},
                )
                # A sender fault (bad request) fails the same way every time; only service faults are retried.
                if failed.get("SenderFault"):
                    self.unsent.append(entry[0])
                else:
                    retry[failed["Id"]] = entry
            pending = retry
        self.unsent.extend(message for message, _, _ in pending.values())


def send_delayed(sqs: Any, queue_url: str, message: WorkMessage, delay_seconds: float) -> None:
    delay = int(min(SQS_MAX_DELAY_SECONDS, max(0, delay_seconds)))
    sqs.send_message(QueueUrl=queue_url, MessageBody=to_body(message), DelaySeconds=delay)


def backoff_seconds(attempt: int) -> int:
    """Exponential: 30 s, 60 s, 120 s, ... capped at 15 minutes."""
    return int(min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempt - 1)))
