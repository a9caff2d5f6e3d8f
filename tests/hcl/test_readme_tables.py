"""Tier 1: module README tables match the HCL, and the generator reads types the way they are written."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from tests.support.hcl_tree import public_modules
from tests.support.terraform_env import repo_root

ROOT = repo_root()


def _load_generator() -> ModuleType:
    path = ROOT / "scripts" / "readme_tables.py"
    spec = importlib.util.spec_from_file_location("readme_tables", path)
    assert spec and spec.loader, f"cannot load {path}"
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("readme_tables", module)
    spec.loader.exec_module(module)
    return module


readme_tables = _load_generator()
PUBLIC = public_modules()


def test_public_modules_are_documented() -> None:
    assert PUBLIC, "no public module (modules/<name>/README.md) found"
    assert not (ROOT / "modules" / "internal" / "README.md").exists(), "modules/internal is internal: no README"


@pytest.mark.parametrize("module_dir", PUBLIC, ids=[p.name for p in PUBLIC])
def test_readme_tables_match_hcl(module_dir: Path) -> None:
    readme = (module_dir / "README.md").read_text(encoding="utf-8")
    current = readme_tables.marked_block(readme)
    assert current is not None, f"{module_dir.name}/README.md has no {readme_tables.BEGIN} block"
    assert current == readme_tables.render_tables(module_dir), (
        f"{module_dir.name}/README.md tables are stale: run `python scripts/readme_tables.py --write`"
    )


HCL = """# a { brace in a comment
variable "settings" {
  description = "Braces } and ${var.other} \\"quoted\\" in a string."
  type = object({
    retries = optional(number, 3) # inline { comment
    names   = list(string)
  })
  default = { retries = 1, names = ["a"] }
}

variable "plain" {
  type        = map(string)
  description = <<-EOT
    A heredoc with type = bogus inside.
  EOT
  validation {
    condition     = alltrue([for k, v in var.plain : length(k) > 0])
    error_message = "type = not this either."
  }
}
"""


def test_raw_types_ignore_strings_comments_and_heredocs() -> None:
    types = readme_tables.raw_variable_types(HCL)
    assert types == {
        "settings": "object({\n    retries = optional(number, 3)\n    names   = list(string)\n  })",
        "plain": "map(string)",
    }


def test_tables_render_in_declaration_order(tmp_path: Path) -> None:
    (tmp_path / "variables.tf").write_text(HCL, encoding="utf-8")
    (tmp_path / "outputs.tf").write_text(
        'output "b_id" {\n  description = "Pipe | inside."\n  value = 1\n}\n'
        'output "a_id" {\n  description = "Second."\n  value = 2\n}\n',
        encoding="utf-8",
    )
    rendered = readme_tables.render_tables(tmp_path).splitlines()
    assert rendered[0] == readme_tables.BEGIN and rendered[-1] == readme_tables.END
    rows = [line for line in rendered if line.startswith("| `")]
    assert rows == [
        '| `settings` | Braces } and ${var.other} "quoted" in a string. | '
        "<pre>object({<br>  retries = optional(number, 3)<br>  names   = list(string)<br>})</pre> | "
        '`{"retries": 1, "names": ["a"]}` | no |',
        "| `plain` | A heredoc with type = bogus inside. | `map(string)` | n/a | yes |",
        "| `b_id` | Pipe \\| inside. |",
        "| `a_id` | Second. |",
    ]


def test_write_then_check_round_trip(tmp_path: Path) -> None:
    (tmp_path / "variables.tf").write_text(HCL, encoding="utf-8")
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nProse.\n\n{readme_tables.BEGIN}\nold\n{readme_tables.END}\n\nMore.\n", "utf-8")
    assert readme_tables.sync_readme(tmp_path, write=False) is not None
    assert readme_tables.sync_readme(tmp_path, write=True) is None
    assert readme_tables.sync_readme(tmp_path, write=False) is None
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# Title\n\nProse.\n\n") and text.endswith("\n\nMore.\n")


def test_readme_without_markers_is_reported(tmp_path: Path) -> None:
    (tmp_path / "variables.tf").write_text(HCL, encoding="utf-8")
    (tmp_path / "README.md").write_text("# No tables\n", encoding="utf-8")
    problem = readme_tables.sync_readme(tmp_path, write=True)
    assert problem is not None and "no" in problem and readme_tables.BEGIN in problem


SUB_MODULES = sorted(p.parent for p in (ROOT / "modules").glob("*/modules/*/README.md"))


@pytest.mark.parametrize("module_dir", SUB_MODULES, ids=[str(p.relative_to(ROOT)) for p in SUB_MODULES])
def test_sub_module_readme_tables_match_hcl(module_dir: Path) -> None:
    """A sub-module its caller instantiates itself (snapshot-copy's destination) is documented like a module."""
    assert module_dir in set(readme_tables.documented_dirs()), f"{module_dir} is not documented by make docs"
    readme = (module_dir / "README.md").read_text(encoding="utf-8")
    assert readme_tables.marked_block(readme) == readme_tables.render_tables(module_dir), (
        f"{module_dir.relative_to(ROOT)}/README.md tables are stale: run `python scripts/readme_tables.py --write`"
    )
