"""The Logger and Metrics every handler of a function shares (Powertools reads the service name from the
environment Lambda sets before the import)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
# Dimension `service` only (Powertools adds it from POWERTOOLS_SERVICE_NAME): every policy of a module shares one
# custom metric per name, so monitoring cost does not grow with the number of policies. The policy is in the logs
# and in the alert messages.
metrics = Metrics()


def count(name: str, value: int = 1) -> None:
    """Zero counts are not sent: a custom metric is billed for every hour in which it receives data. So only what
    an operator graphs or alarms on is a metric (backups created, failed, snapshots leaked); the rest (targets
    planned, images retired, snapshots deleted) are structured log keys and ledger records."""
    if value > 0:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


@contextmanager
def log_keys(**keys: Any) -> Iterator[None]:
    """Keys on every log line of one work item. Appended keys outlive the invocation in a warm container, so they
    are removed again when the item is done."""
    logger.append_keys(**keys)
    try:
        yield
    finally:
        logger.remove_keys(list(keys))
