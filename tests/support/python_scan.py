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
_FUNCTION = (ast.FunctionDef, ast.AsyncFunctionDef)
_DEFINITION = (*_FUNCTION, ast.ClassDef)


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
    """A call whose method name is an operation of several candidate services and whose client is unknown, or
    a paginator/waiter whose name the scan cannot tell (no candidates then)."""

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


def _own_nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """Nodes of a scope, not descending into nested functions (they are scopes of their own)."""
    for child in ast.iter_child_nodes(scope):
        if isinstance(child, _FUNCTION):
            continue
        yield child
        yield from _own_nodes(child)


# --- what a handler module reaches ------------------------------------------------------------------------------

# A reference inside the package: (module, None) is the module itself, (module, name) a top-level name of it.
Reference = tuple[str, str | None]


@dataclass(frozen=True)
class SourceModule:
    name: str  # dotted, relative to the package; "" is the package's own __init__
    path: Path
    tree: ast.Module
    definitions: dict[str, ast.stmt]  # top-level functions, classes and assigned names
    imports: dict[str, Reference]  # local name -> what it names inside the package

    def import_time_nodes(self) -> list[ast.AST]:
        """What runs when the module is imported: every top-level statement but function and class bodies."""
        return [
            node
            for statement in self.tree.body
            if not isinstance(statement, _DEFINITION)
            for node in (statement, *_own_nodes(statement))
        ]


def _module_name(package: Path, path: Path) -> str:
    parts = path.relative_to(package).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _definitions(tree: ast.Module) -> dict[str, ast.stmt]:
    found: dict[str, ast.stmt] = {}
    for statement in tree.body:
        if isinstance(statement, _DEFINITION):
            found[statement.name] = statement
        elif isinstance(statement, ast.Assign | ast.AnnAssign):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            found.update({target.id: statement for target in targets if isinstance(target, ast.Name)})
    return found


def _imports(module: str, is_package: bool, tree: ast.Module, package: str, names: set[str]) -> dict[str, Reference]:
    """Imports of sibling modules and their names, wherever they appear in the module (an over-approximation)."""

    def inside(dotted: str) -> str | None:
        if dotted == package:
            return ""
        return dotted.removeprefix(f"{package}.") if dotted.startswith(f"{package}.") else None

    found: dict[str, Reference] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = inside(alias.name)
                if target is not None and target in names:
                    # `import pkg.mod` binds `pkg`; `import pkg.mod as m` binds the module itself.
                    found[alias.asname or package] = (target, None) if alias.asname else ("", None)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = (module.split(".") if module else []) if is_package else module.split(".")[:-1]
                parts = parts[: len(parts) - (node.level - 1)]
                base: str | None = ".".join([*parts, *(node.module.split(".") if node.module else [])])
            else:
                base = inside(node.module or "")
            if base is None:
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}" if base else alias.name
                if submodule in names:
                    found[alias.asname or alias.name] = (submodule, None)
                elif base in names:
                    found[alias.asname or alias.name] = (base, alias.name)
    return found


def package_modules(package: Path) -> dict[str, SourceModule]:
    trees = {
        _module_name(package, path): (path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        for path in python_files(package)
    }
    return {
        name: SourceModule(
            name=name,
            path=path,
            tree=tree,
            definitions=_definitions(tree),
            imports=_imports(name, path.name == "__init__.py", tree, package.name, set(trees)),
        )
        for name, (path, tree) in trees.items()
    }


@dataclass(frozen=True)
class ReachableCode:
    """The modules a handler imports and the top-level definitions its code can use, transitively."""

    modules: frozenset[str]
    definitions: frozenset[tuple[str, str]]


def _reference(module: SourceModule, node: ast.AST, modules: dict[str, SourceModule]) -> Reference | None:
    """What `name`, `module_alias.name` or `Generic[T]` in `module` refers to inside the package, if anything."""
    if isinstance(node, ast.Subscript):
        return _reference(module, node.value, modules)
    if isinstance(node, ast.Name):
        if node.id in module.definitions:
            return (module.name, node.id)
        return module.imports.get(node.id)
    if isinstance(node, ast.Attribute):
        owner = _reference(module, node.value, modules)
        if owner is None or owner[1] is not None:
            return None
        submodule = f"{owner[0]}.{node.attr}" if owner[0] else node.attr
        return (submodule, None) if submodule in modules else (owner[0], node.attr)
    return None


def reachable_code(package: Path, handler_modules: Iterable[str]) -> ReachableCode:
    """Everything a Lambda whose handlers live in `handler_modules` can run.

    A handler module counts whole. From there a top-level function, class (whole, with every method) or
    assigned name of a sibling module counts when reached code names it (a call, or a function handed over
    as a value), followed transitively. Importing a module runs its top-level statements, so those count
    too, but they reach only what they call: `KIND = Spec(parse=_parse)` does not make `_parse` reachable
    unless something reachable uses `KIND`.
    """
    modules = package_modules(package)
    reached_modules: set[str] = set()
    reached: set[tuple[str, str]] = set()
    pending: list[tuple[SourceModule, list[ast.AST], bool]] = []  # nodes to follow; False: only what they call

    def follow(reference: Reference | None) -> None:
        if reference is None:
            return
        name, attribute = reference
        if name not in reached_modules:
            reached_modules.add(name)
            module = modules[name]
            if name:  # importing `a.b` imports `a` first
                follow((name.rpartition(".")[0], None))
            for target, _ in module.imports.values():
                follow((target, None))
            pending.append((module, module.import_time_nodes(), False))
        module = modules[name]
        if attribute is None or (name, attribute) in reached:
            return
        if attribute in module.definitions:
            reached.add((name, attribute))
            pending.append((module, list(ast.walk(module.definitions[attribute])), True))
        elif attribute in module.imports:  # a re-export
            follow(module.imports[attribute])

    for dotted in handler_modules:
        name = dotted.removeprefix(f"{package.name}.") if dotted != package.name else ""
        if name not in modules:
            raise ValueError(f"handler module {dotted!r} is not a module of {package}")
        follow((name, None))
        for definition in modules[name].definitions:
            follow((name, definition))
    while pending:
        module, nodes, every_name = pending.pop()
        for node in nodes:
            if every_name and isinstance(node, ast.Name | ast.Attribute):
                follow(_reference(module, node, modules))
            elif not every_name and isinstance(node, ast.Call):
                follow(_reference(module, node.func, modules))
    return ReachableCode(frozenset(reached_modules), frozenset(reached))


def _scan_scopes(module: SourceModule, code: ReachableCode) -> Iterator[list[ast.AST]]:
    """Node lists, one per function scope, of the code of `module` that `code` reaches."""
    yield module.import_time_nodes()
    for name, definition in module.definitions.items():
        if (module.name, name) not in code.definitions or not isinstance(definition, _DEFINITION):
            continue
        if isinstance(definition, ast.ClassDef):
            yield list(_own_nodes(definition))
        for node in ast.walk(definition):
            if isinstance(node, _FUNCTION):
                yield list(_own_nodes(node))


def _keyword_strings(modules: dict[str, SourceModule], code: ReachableCode) -> dict[str, set[str]]:
    """Keyword argument name -> the string literals passed with it in the reachable definitions."""
    found: dict[str, set[str]] = defaultdict(set)
    for module_name, name in code.definitions:
        for node in ast.walk(modules[module_name].definitions[name]):
            if isinstance(node, ast.keyword) and node.arg:
                value = _string(node.value, {})
                if value is not None:
                    found[node.arg].add(value)
    return found


def boto_calls(
    package: Path, services: tuple[str, ...] = DEFAULT_SERVICES, handler_modules: Iterable[str] | None = None
) -> tuple[list[ApiCall], list[Unattributed]]:
    """Every AWS operation (direct calls, paginators, waiters) on the given services in the code of the package
    that the handlers in `handler_modules` reach (see `reachable_code`), or in the whole package if None.

    The client's service comes from, in order: a `.client("svc", ...)` call it was assigned from in the
    same function, the client itself being such a call, the variable name (`ec2`, `self._sqs`), and
    finally the method name when exactly one candidate service has that operation. A paginator or waiter
    named by an attribute (`get_paginator(kind.paginator)`) stands for every string passed as that keyword
    (`paginator="describe_instances"`) in the reachable code; a name that cannot be told is unattributed.
    """
    models = service_models(services)
    modules = package_modules(package)
    if handler_modules is None:
        code = ReachableCode(
            frozenset(modules), frozenset((m.name, name) for m in modules.values() for name in m.definitions)
        )
    else:
        code = reachable_code(package, handler_modules)
    keyword_strings = _keyword_strings(modules, code)
    calls: list[ApiCall] = []
    unattributed: list[Unattributed] = []
    for module in sorted((modules[name] for name in code.modules), key=lambda m: m.name):
        path, tree = module.path, module.tree
        constants = _module_constants(tree)
        # `self._ec2 = factory.client("ec2")` in one method serves the others: attributes are file-wide.
        attributes = {
            target: service
            for target, service in _client_assignments(ast.walk(tree), services).items()
            if "." in target
        }
        for nodes in _scan_scopes(module, code):
            assigned = {**attributes, **_client_assignments(nodes, services)}
            for node in nodes:
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                    continue
                receiver, method = node.func.value, node.func.attr
                location = _location(path, node)
                if method in {"get_paginator", "get_waiter"}:
                    if not node.args:
                        continue
                    names = _operation_names(node.args[0], constants, keyword_strings)
                    if names is None:
                        unattributed.append(Unattributed(f"{method}({ast.unparse(node.args[0])})", (), location))
                        continue
                    table = models.operations if method == "get_paginator" else models.waiters
                else:
                    names, table = [method], models.operations
                for lookup_name in names:
                    candidates = tuple(s for s in services if lookup_name in table[s])
                    if not candidates:
                        continue
                    service = (
                        assigned.get(ast.unparse(receiver))
                        or _client_service(receiver, services)
                        or _name_hint(receiver, services)
                        or (candidates[0] if len(candidates) == 1 else None)
                    )
                    if service is None:
                        unattributed.append(Unattributed(lookup_name, candidates, location))
                    elif lookup_name in table[service]:
                        calls.append(ApiCall(service, table[service][lookup_name], location))
    return calls, unattributed


def _operation_names(
    node: ast.AST, constants: dict[str, str], keyword_strings: dict[str, set[str]]
) -> list[str] | None:
    name = _string(node, constants)
    if name is not None:
        return [name]
    if isinstance(node, ast.Attribute) and keyword_strings.get(node.attr):
        return sorted(keyword_strings[node.attr])
    return None
