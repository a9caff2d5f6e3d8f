"""The README's "Performance and reliability" section: one block per target (`make bench`, `make soak`,
`make security`), each written by its target between its own markers, with the date and the machine it ran on.

A target rewrites only its own block, so the three can run at different times; the section says when each ran."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from . import ROOT

README = ROOT / "README.md"
SECTION_TITLE = "## Performance and reliability"
BLOCKS = ("bench", "soak", "security")


def markers(block: str) -> tuple[str, str]:
    if block not in BLOCKS:
        raise ValueError(f"block must be one of {', '.join(BLOCKS)}, not {block!r}")
    name = block.upper()
    return f"<!-- BEGIN_PERFORMANCE_{name} -->", f"<!-- END_PERFORMANCE_{name} -->"


def machine() -> str:
    """What the figures were measured on: CPU count, memory, OS and Python."""
    memory = ""
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            kib = int(meminfo.readline().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    cpu = platform.processor() or platform.machine()
    return (
        f"{os.cpu_count()} CPU ({cpu}){memory}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def stamp(command: str, now: datetime | None = None) -> str:
    when = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    return f"_`{command}`, run {when} on {machine()}._"


def replace_block(text: str, block: str, lines: Sequence[str]) -> str:
    """`text` with `block`'s markers holding `lines`; the markers are added at the end of the section (created
    after "## Verification tiers" if missing) the first time."""
    begin, end = markers(block)
    body = "\n".join([begin, *lines, end])
    if begin in text:
        head, rest = text.split(begin, 1)
        if end not in rest:
            raise ValueError(f"README has {begin} without {end}")
        return head + body + rest.split(end, 1)[1]
    if SECTION_TITLE not in text:
        anchor = "\n## Other targets"
        if anchor not in text:
            raise ValueError(f"README has neither {SECTION_TITLE!r} nor {anchor.strip()!r}")
        intro = (
            f"{SECTION_TITLE}\n"
            "Measured, not asserted: `make bench`, `make soak` and `make security` write these blocks; "
            "`make test` runs a small smoke of each so they keep working.\n\n"
        )
        return text.replace(anchor, "\n" + intro + body + "\n" + anchor, 1)
    # After the last block of the section that is already there, or right after the title.
    section_start = text.index(SECTION_TITLE)
    next_section = text.find("\n## ", section_start + len(SECTION_TITLE))
    insert_at = len(text) if next_section < 0 else next_section
    return text[:insert_at].rstrip("\n") + "\n\n" + body + "\n" + text[insert_at:]


def write_block(block: str, command: str, lines: Sequence[str], readme: Path = README) -> None:
    """Write `lines` (Markdown) as `block`, under a line naming the command, the date and the machine."""
    text = readme.read_text(encoding="utf-8")
    readme.write_text(replace_block(text, block, [stamp(command), "", *lines]), encoding="utf-8")
