"""Failure messages to the policy's SNS topic: the instance (or snapshot) and the reason, not just a counter."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from .observability import logger

SUBJECT_LIMIT = 100  # SNS rejects longer subjects


class Alerts:
    def __init__(self, sns: Callable[[], Any], topic_arn: str | None, service: str, policy: str) -> None:
        self._sns = sns
        self._topic_arn = topic_arn
        self._service = service
        self._policy = policy

    def send(self, what: str, details: Mapping[str, Any]) -> None:
        """Log at ERROR and publish one message. A failed publish raises, so the work item is retried: callers undo
        (or have not yet made) the ledger transition that marks the failure, so an alert is sent at least once."""
        self._publish(what, details, logger.error)

    def report(self, what: str, details: Mapping[str, Any]) -> None:
        """A finding the user must decide on, not a failure: logged at WARNING, published like an alert."""
        self._publish(what, details, logger.warning)

    def _publish(self, what: str, details: Mapping[str, Any], log: Callable[..., None]) -> None:
        body = {"service": self._service, "policy": self._policy, "alert": what, **details}
        log(what, extra={"alert": body})
        if self._topic_arn is None:
            return
        subject = f"[{self._service}/{self._policy}] {what}"[:SUBJECT_LIMIT]
        self._sns().publish(TopicArn=self._topic_arn, Subject=subject, Message=json.dumps(body, indent=2, default=str))
