"""What a soak run reports: per module, the steps run, the faults injected by kind, the invariant checks made and
the violations found (each with what replays it)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Violation:
    module: str
    invariant: str
    step: int
    detail: str


@dataclass
class ModuleReport:
    module: str
    seed: int
    days: int
    sources: int
    steps: int = 0
    checks: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    violations: list[Violation] = field(default_factory=list)

    def replay_command(self, step: int) -> str:
        return (
            f"python -m bench.soak --module {self.module} --seed {self.seed} --days {self.days} "
            f"--sources {self.sources} --stop-at-step {step}"
        )
