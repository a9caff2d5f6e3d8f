"""The soak (`make soak`, `python -m bench.soak`): every module's real handlers in-process on moto made faithful,
over a simulated year of daily schedules, with seeded faults (bench/soak/faults.py) and invariants checked after
every step against the emulated AWS state and the ledger (bench/soak/report.py says what a run reports)."""
