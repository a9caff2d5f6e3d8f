"""SKELETON (being written): the adapter interface handlers.py relies on. Replace every body."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..core.fanout import BatchSender
from .decisions import Action
from .outcomes import SchedulerRuntime

DECODERS: dict[str, Callable[[Mapping[str, Any]], Any]] = {}


def enabled(rt: SchedulerRuntime) -> bool:
    return False


def plan(
    rt: SchedulerRuntime, action: Action, slot: str, sender: BatchSender[Any], summary: dict[str, Any]
) -> list[str]:
    raise NotImplementedError


def handles(item: Any) -> bool:
    return False


def handle(rt: SchedulerRuntime, own_account: str, item: Any) -> dict[str, Any]:
    raise NotImplementedError
