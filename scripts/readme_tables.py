#!/usr/bin/env python3
"""Generate the Inputs/Outputs tables of the module READMEs from the HCL.

The tables live between `<!-- BEGIN_TF_DOCS -->` and `<!-- END_TF_DOCS -->`; everything else in a README
is prose written by hand and left alone.

    python scripts/readme_tables.py            print the tables of every documented directory
    python scripts/readme_tables.py --write    rewrite the marked block of every README that has one
    python scripts/readme_tables.py --check    exit 1 and list the READMEs whose block is stale

Documented directories: every public module (a folder directly under modules/ with a README.md; each must
carry the markers), its sub-modules with a README (modules/<name>/modules/<sub>/, markers too), and every
example whose README has the markers.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2
from hcl2 import SerializationOptions

ROOT = Path(__file__).resolve().parents[1]
BEGIN = "<!-- BEGIN_TF_DOCS -->"
END = "<!-- END_TF_DOCS -->"
HCL_OPTIONS = SerializationOptions(
    strip_string_quotes=True, explicit_blocks=False, preserve_heredocs=False, with_comments=False
)
# Declarations are listed file by file; the conventional files come first.
_FILE_PRIORITY = {"variables.tf": 0, "outputs.tf": 1}
_MARKED_BLOCK = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)


@dataclass(frozen=True)
class Variable:
    name: str
    description: str
    type_source: str | None
    has_default: bool
    default: Any


@dataclass(frozen=True)
class Output:
    name: str
    description: str


# --- raw HCL text: python-hcl2 rewrites type expressions, so types are read from the source ---------------


def mask_hcl(text: str) -> str:
    """Blank out comments, string/template contents and heredoc bodies, keeping length and newlines.

    Structural scanning (braces, attribute names) on the result cannot be fooled by a brace or a `#`
    inside a string, and offsets still index the original text.
    """
    return _scan(text)[0]


def strip_comments(text: str) -> str:
    out = list(text)
    for start, end in _scan(text)[1]:
        for k in range(start, end):
            if out[k] != "\n":
                out[k] = " "
    return "\n".join(line.rstrip() for line in "".join(out).splitlines())


def _scan(text: str) -> tuple[str, list[tuple[int, int]]]:
    out = list(text)
    comments: list[tuple[int, int]] = []
    i, n = 0, len(text)
    # Each entry is "string" or an int: the brace depth of a `${ ... }` template inside a string.
    stack: list[str | int] = []

    def blank(start: int, end: int) -> None:
        for k in range(start, min(end, n)):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        ch = text[i]
        mode = stack[-1] if stack else None
        if mode == "string":
            if ch == "\\":
                blank(i, i + 2)
                i += 2
            elif ch == '"':
                stack.pop()
                if stack:
                    blank(i, i + 1)
                i += 1
            elif text.startswith(("${", "%{"), i):
                blank(i, i + 2)
                stack.append(1)
                i += 2
            else:
                blank(i, i + 1)
                i += 1
            continue
        inside_template = isinstance(mode, int)
        if ch == '"':
            if inside_template:
                blank(i, i + 1)
            stack.append("string")
            i += 1
        elif ch == "#" or text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end == -1 else end
            blank(i, end)
            if not stack:
                comments.append((i, end))
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end == -1 else end + 2
            blank(i, end)
            if not stack:
                comments.append((i, end))
            i = end
        elif heredoc := re.match(r"<<-?([A-Za-z_][A-Za-z0-9_]*)[ \t]*\n", text[i:]):
            marker = heredoc.group(1)
            body_start = i + heredoc.end()
            closing = re.compile(rf"^[ \t]*{re.escape(marker)}[ \t]*$", re.MULTILINE).search(text, body_start)
            end = closing.start() if closing else n
            blank(body_start, end)
            if inside_template:
                blank(i, body_start)
            i = end
        elif isinstance(mode, int):
            depth = mode + (ch == "{") - (ch == "}")
            if depth:
                stack[-1] = depth
            else:
                stack.pop()
            blank(i, i + 1)
            i += 1
        else:
            i += 1
    return "".join(out), comments


def _matching_brace(masked: str, open_index: int) -> int:
    depth = 0
    for k in range(open_index, len(masked)):
        if masked[k] in "{[(":
            depth += 1
        elif masked[k] in "}])":
            depth -= 1
            if depth == 0:
                return k
    raise ValueError(f"unbalanced brace at offset {open_index}")


def _attribute_expression(text: str, masked: str, start: int, end: int, attribute: str) -> str | None:
    """Source text of a top-level `attribute = expr` between offsets start and end (a block body)."""
    depth = 0
    line_start = True
    k = start
    pattern = re.compile(rf"[ \t]*{re.escape(attribute)}[ \t]*=(?!=)")
    while k < end:
        ch = masked[k]
        if line_start and depth == 0 and (match := pattern.match(masked, k)):
            expr_start = match.end()
            expr_depth = 0
            j = expr_start
            while j < end:
                if masked[j] in "{[(":
                    expr_depth += 1
                elif masked[j] in "}])":
                    expr_depth -= 1
                elif masked[j] == "\n" and expr_depth == 0:
                    break
                j += 1
            return strip_comments(text[expr_start:j]).strip()
        if ch in "{[(":
            depth += 1
        elif ch in "}])":
            depth -= 1
        line_start = ch == "\n"
        k += 1
    return None


def raw_variable_types(text: str) -> dict[str, str]:
    """Map each `variable` block of one file to the source text of its `type` expression."""
    masked = mask_hcl(text)
    types: dict[str, str] = {}
    for match in re.finditer(r'(?m)^[ \t]*variable[ \t]+"([^"\n]*)"[ \t]*\{', masked):
        name = text[match.start(1) : match.end(1)]
        open_index = match.end() - 1
        close_index = _matching_brace(masked, open_index)
        expression = _attribute_expression(text, masked, open_index + 1, close_index, "type")
        if expression is not None:
            types[name] = expression
    return types


# --- declarations -------------------------------------------------------------------------------------------


def _tf_files(module_dir: Path) -> list[Path]:
    return sorted(module_dir.glob("*.tf"), key=lambda p: (_FILE_PRIORITY.get(p.name, 2), p.name))


def _load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return hcl2.load(handle, serialization_options=HCL_OPTIONS)


def _one_line(text: Any) -> str:
    return " ".join(str(text or "").split())


def read_declarations(module_dir: Path) -> tuple[list[Variable], list[Output]]:
    variables: list[Variable] = []
    outputs: list[Output] = []
    for path in _tf_files(module_dir):
        parsed = _load(path)
        types = raw_variable_types(path.read_text(encoding="utf-8"))
        for block in parsed.get("variable", []):
            for name, body in block.items():
                variables.append(
                    Variable(
                        name=name,
                        description=_one_line(body.get("description")),
                        type_source=types.get(name),
                        has_default="default" in body,
                        default=body.get("default"),
                    )
                )
        for block in parsed.get("output", []):
            for name, body in block.items():
                outputs.append(Output(name=name, description=_one_line(body.get("description"))))
    return variables, outputs


# --- rendering ----------------------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_type(source: str | None) -> str:
    if source is None:
        return "n/a"
    lines = source.splitlines()
    if len(lines) == 1:
        return f"`{_cell(source)}`"
    body = [lines[0].strip(), *textwrap.dedent("\n".join(lines[1:])).splitlines()]
    return "<pre>" + "<br>".join(_cell(line.replace("<", "&lt;").replace(">", "&gt;")) for line in body) + "</pre>"


def render_default(variable: Variable) -> str:
    if not variable.has_default:
        return "n/a"
    return f"`{_cell(json.dumps(variable.default, separators=(', ', ': ')))}`"


def render_tables(module_dir: Path) -> str:
    """The marked block (markers included) for one module or example directory."""
    variables, outputs = read_declarations(module_dir)
    lines = [BEGIN, "## Inputs", ""]
    if variables:
        lines += [
            "| Name | Description | Type | Default | Required |",
            "|------|-------------|------|---------|:--------:|",
        ]
        lines += [
            f"| `{v.name}` | {_cell(v.description)} | {render_type(v.type_source)} | {render_default(v)} | "
            f"{'no' if v.has_default else 'yes'} |"
            for v in variables
        ]
    else:
        lines.append("No inputs.")
    lines += ["", "## Outputs", ""]
    if outputs:
        lines += ["| Name | Description |", "|------|-------------|"]
        lines += [f"| `{o.name}` | {_cell(o.description)} |" for o in outputs]
    else:
        lines.append("No outputs.")
    lines.append(END)
    return "\n".join(lines)


def marked_block(readme_text: str) -> str | None:
    match = _MARKED_BLOCK.search(readme_text)
    return match.group(0) if match else None


def documented_dirs(root: Path = ROOT) -> Iterator[Path]:
    """Every public module (its README must carry the markers) and every example README that has them."""
    modules = root / "modules"
    if modules.is_dir():
        yield from sorted(p for p in modules.iterdir() if (p / "README.md").is_file())
        # Sub-modules a public module's caller instantiates itself (modules/<name>/modules/<sub>/), such as
        # snapshot-copy's per-region destination: documented like a public module when they have a README.
        yield from sorted(p.parent for p in modules.glob("*/modules/*/README.md"))
    examples = root / "examples"
    if examples.is_dir():
        for readme in sorted(examples.rglob("README.md")):
            if ".terraform" not in readme.parts and marked_block(readme.read_text(encoding="utf-8")) is not None:
                yield readme.parent


def sync_readme(module_dir: Path, write: bool) -> str | None:
    """Return why the README is out of date (None when current); with `write`, bring it up to date."""
    readme = module_dir / "README.md"
    text = readme.read_text(encoding="utf-8")
    current = marked_block(text)
    if current is None:
        return f"{readme}: no {BEGIN} ... {END} block"
    expected = render_tables(module_dir)
    if current == expected:
        return None
    if write:
        readme.write_text(text.replace(current, expected, 1), encoding="utf-8")
        return None
    return f"{readme}: tables differ from the HCL (run `python scripts/readme_tables.py --write`)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite the marked block of each README")
    mode.add_argument("--check", action="store_true", help="exit 1 if any README block is stale")
    args = parser.parse_args(argv)
    if not (args.write or args.check):
        for module_dir in documented_dirs():
            print(f"# {module_dir.relative_to(ROOT)}\n{render_tables(module_dir)}\n")
        return 0
    problems = [problem for module_dir in documented_dirs() if (problem := sync_readme(module_dir, args.write))]
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
