"""Static (AST) inventory of what the Lambda package reads from its environment and calls on AWS.

The HCL contract tests compare these inventories with what the Terraform modules set and allow, so
both must be derived from the code itself, never listed by hand.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import botocore.session
from botocore import xform_name
from botocore.exceptions import DataNotFoundError

ENV_NAME = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")
# Every OPS_* literal in the package is one of this project's environment variables, however it is read.
PROJECT_ENV_NAME = re.compile(r"^OPS_[A-Z0-9_]+$")
DEFAULT_SERVICES = ("ec2", "sqs", "dynamodb", "sts")
# SQS batch operations have no IAM action of their own: the single-message action authorizes them
# (SQS developer guide, "Amazon SQS batch actions").
IAM_ACTION_OF_OPERATION = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}
_ENV_NAMES = {"environ", "env", "environment"}


def python_files(package: Path) -> list[Path]:
    return sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)


def _location(path: Path, node: ast.AST) -> str:
    return f"{path.name}:{getattr(node, 'lineno', '?')}"


def _module_constants(tree: ast.Module) -> dict[str, str]:
    constants: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Constant):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                    constants[target.id] = node.value.value
    return constants


def _string(node: ast.AST | None, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    return None


def _is_environ(node: ast.AST) -> bool:
    """`os.environ`, or a name that by convention holds the environment mapping (`env`, `environ`...)."""
    if isinstance(node, ast.Attribute):
        return node.attr == "environ" or node.attr.lstrip("_") in _ENV_NAMES
    return isinstance(node, ast.Name) and (node.id in _ENV_NAMES or node.id.endswith("_env"))


def _env_reads_in(tree: ast.Module, constants: dict[str, str]) -> Iterator[tuple[str, ast.AST]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and _is_environ(node.value):
            name = _string(node.slice, constants)
            if name:
                yield name, node
        elif isinstance(node, ast.Compare) and any(_is_environ(c) for c in node.comparators):
            name = _string(node.left, constants)
            if name:
                yield name, node
        elif isinstance(node, ast.Call):
            func = node.func
            if (
                (
                    isinstance(func, ast.Attribute)
                    and func.attr in {"get", "pop", "setdefault"}
                    and _is_environ(func.value)
                )
                or (isinstance(func, ast.Attribute) and func.attr == "getenv")
                or (isinstance(func, ast.Name) and func.id == "getenv")
            ):
                name = _string(node.args[0] if node.args else None, constants)
                if name:
                    yield name, node
            else:
                # A helper handed the environment and a variable name: `_required(env, "OPS_X")`.
                arguments = [*node.args, *(keyword.value for keyword in node.keywords)]
                if any(_is_environ(argument) for argument in arguments):
                    for argument in arguments:
                        name = _string(argument, constants)
                        if name and ENV_NAME.match(name):
                            yield name, node
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and PROJECT_ENV_NAME.match(node.value):
            yield node.value, node


def env_var_reads(package: Path) -> dict[str, list[str]]:
    """Environment variable name -> where the package reads it."""
    reads: dict[str, list[str]] = defaultdict(list)
    for path in python_files(package):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name, node in _env_reads_in(tree, _module_constants(tree)):
            location = _location(path, node)
            if location not in reads[name]:
                reads[name].append(location)
    return dict(reads)


# --- boto3 calls --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceModels:
    """snake_case method / paginator / waiter name -> API operation name, per service."""

    operations: dict[str, dict[str, str]]
    waiters: dict[str, dict[str, str]]

    def services_with(self, method: str) -> list[str]:
        return [service for service, ops in self.operations.items() if method in ops]


@cache
def service_models(services: tuple[str, ...] = DEFAULT_SERVICES) -> ServiceModels:
    session = botocore.session.get_session()
    operations: dict[str, dict[str, str]] = {}
    waiters: dict[str, dict[str, str]] = {}
    for service in services:
        model = session.get_service_model(service)
        operations[service] = {xform_name(op): op for op in model.operation_names}
        try:
            waiter_model = session.get_waiter_model(service)
        except DataNotFoundError:  # a service without waiters has no waiter model file
            waiters[service] = {}
        else:
            waiters[service] = {
                xform_name(name): waiter_model.get_waiter(name).operation for name in waiter_model.waiter_names
            }
    return ServiceModels(operations=operations, waiters=waiters)


@dataclass(frozen=True)
class ApiCall:
    service: str
    operation: str
    location: str

    @property
    def action(self) -> str:
        """The IAM action that authorizes the call (usually `service:Operation`)."""
        api = f"{self.service}:{self.operation}"
        return IAM_ACTION_OF_OPERATION.get(api, api)


@dataclass(frozen=True)
class Unattributed:
    """A call whose method name is an operation of several candidate services and whose client is unknown."""

    method: str
    candidates: tuple[str, ...]
    location: str


def _client_service(node: ast.AST, services: tuple[str, ...]) -> str | None:
    """`anything.client("ec2", ...)` / `client("ec2")` -> "ec2"."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    service = _string(node.args[0], {})
    return service if name == "client" and service in services else None


def _name_hint(node: ast.AST, services: tuple[str, ...]) -> str | None:
    """`ec2`, `self._ec2`, `ec2_client`, `target_sqs` -> the service named by the identifier."""
    identifier = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
    if identifier is None:
        return None
    words = identifier.lower().strip("_").split("_")
    matches = [service for service in services if service in words]
    return matches[0] if len(matches) == 1 else None


def _client_assignments(nodes: Iterable[ast.AST], services: tuple[str, ...]) -> dict[str, str]:
    assigned: dict[str, str] = {}
    for node in nodes:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            service = _client_service(node.value, services)
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if service:
                assigned.update({ast.unparse(target): service for target in targets})
    return assigned


def _scopes(tree: ast.Module) -> Iterator[ast.AST]:
    yield tree
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def _own_nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """Nodes of a scope, not descending into nested functions (they are scopes of their own)."""
    for child in ast.iter_child_nodes(scope):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        yield child
        yield from _own_nodes(child)


def boto_calls(package: Path, services: tuple[str, ...] = DEFAULT_SERVICES) -> tuple[list[ApiCall], list[Unattributed]]:
    """Every AWS operation the package calls (direct calls, paginators, waiters) on the given services.

    The client's service comes from, in order: a `.client("svc", ...)` call it was assigned from in the
    same function, the client itself being such a call, the variable name (`ec2`, `self._sqs`), and
    finally the method name when exactly one candidate service has that operation.
    """
    models = service_models(services)
    calls: list[ApiCall] = []
    unattributed: list[Unattributed] = []
    for path in python_files(package):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        constants = _module_constants(tree)
        # `self._ec2 = factory.client("ec2")` in one method serves the others: attributes are file-wide.
        attributes = {
            target: service
            for target, service in _client_assignments(ast.walk(tree), services).items()
            if "." in target
        }
        for scope in _scopes(tree):
            nodes = list(_own_nodes(scope))
            assigned = {**attributes, **_client_assignments(nodes, services)}
            for node in nodes:
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                    continue
                receiver, method = node.func.value, node.func.attr
                if method in {"get_paginator", "get_waiter"}:
                    name = _string(node.args[0] if node.args else None, constants)
                    if name is None:
                        continue
                    table = models.operations if method == "get_paginator" else models.waiters
                    candidates = tuple(s for s in services if name in table[s])
                    lookup_name = name
                else:
                    table = models.operations
                    candidates = tuple(models.services_with(method))
                    lookup_name = method
                if not candidates:
                    continue
                service = (
                    assigned.get(ast.unparse(receiver))
                    or _client_service(receiver, services)
                    or _name_hint(receiver, services)
                    or (candidates[0] if len(candidates) == 1 else None)
                )
                location = _location(path, node)
                if service is None:
                    unattributed.append(Unattributed(lookup_name, candidates, location))
                elif lookup_name in table[service]:
                    calls.append(ApiCall(service, table[service][lookup_name], location))
    return calls, unattributed
