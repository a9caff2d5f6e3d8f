# Every target builds or reuses the local virtualenv itself; nothing needs to be installed by hand.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SECURITY_VENV ?= .venv-security
# The handlers run on Lambda's python3.13: their tests run on it too where this machine has one (pyenv or PATH).
LAMBDA_PYTHON ?= $(shell (ls -d "$$(pyenv root 2>/dev/null)"/versions/3.13*/bin/python3.13 2>/dev/null || command -v python3.13) | tail -n 1)
RUNTIME_VENV ?= .venv-lambda-runtime

.PHONY: help venv test lint unit runtime demo docs lock security clean bench soak

help:
	@echo "make demo      run every example (backups, clean-up, DR copies, scheduling, Run Command) against a local AWS; print the report"
	@echo "make test      lint + every verification tier (unit/moto/HCL, terraform, end to end)"
	@echo "make lint      ruff + mypy on lambda_src"
	@echo "make venv      the virtualenv, with the operator CLI installed (.venv/bin/ops-automation --help)"
	@echo "make runtime   the Python tests on Lambda's python3.13, where this machine has it"
	@echo "make docs      regenerate the Inputs/Outputs tables of the module READMEs"
	@echo "make lock      re-pin requirements*.txt from requirements*.in with pip-tools"
	@echo "make security  checkov, parliament on every rendered IAM policy, no mutating action on *, spoke roles bound to ownership tags"
	@echo "make bench     calls, memory, import time, zip size, monthly cost vs the origin design and landing-zone scale (bench/RESULTS.md)"
	@echo "make soak      a seeded fault-injection run of every module over a simulated year; invariants checked after every step"

$(STAMP): requirements.txt requirements-cli.txt requirements-dev.txt pyproject.toml setup.cfg
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-cli.txt -r requirements-dev.txt
	# The `ops-automation` script; --no-deps keeps the locks above in charge of every version.
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(PY) -m ruff check lambda_src tests scripts bench
	$(PY) -m ruff format --check lambda_src tests scripts bench
	$(PY) -m mypy

# The python3.13 run of tests/python goes side by side with the main run: tier 1 keeps one core busy, tiers 2 and 3
# mostly wait on terraform and the emulator, and the machine has two. Its log follows the main run's.
test: lint
	$(VENV)/bin/ops-automation --help > /dev/null
	@log=$$(mktemp); \
	$(MAKE) --no-print-directory runtime > $$log 2>&1 & runtime=$$!; \
	$(PY) -m pytest; tests=$$?; \
	wait $$runtime; lambda=$$?; \
	echo "=== the same tests/python on Lambda's runtime, run alongside ==="; cat $$log; rm -f $$log; \
	test $$tests -eq 0 && test $$lambda -eq 0

# The benchmark and soak smokes measure our tooling, not the runtime: they run on the main interpreter only, which
# leaves the second core to the main run (make test stays under 30 minutes).
RUNTIME_IGNORE := --ignore-glob='tests/python/test_bench_*' --ignore-glob='tests/python/test_soak_*' \
	--ignore=tests/python/test_example_costs.py --ignore=tests/python/test_performance_section.py

runtime:
	@set -e; if [ -z "$(LAMBDA_PYTHON)" ]; then \
		echo "!!! python3.13 (Lambda's runtime) NOT FOUND: the handler tests ran on $$($(PYTHON) --version) only !!!"; \
	else \
		test -x $(RUNTIME_VENV)/bin/python || $(LAMBDA_PYTHON) -m venv $(RUNTIME_VENV); \
		$(RUNTIME_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-cli.txt -r requirements-dev.txt; \
		echo "handler tests on $$($(RUNTIME_VENV)/bin/python --version) (Lambda's runtime):"; \
		$(RUNTIME_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/python $(RUNTIME_IGNORE); \
	fi

unit: $(STAMP)
	$(PY) -m pytest tests/python tests/hcl

demo: $(STAMP)
	$(PY) scripts/demo.py

bench: $(STAMP)
	$(PY) -m bench

# Options: make soak SOAK_ARGS="--seed 7 --days 30" (python -m bench.soak --help).
soak: $(STAMP)
	$(PY) -m bench.soak $(SOAK_ARGS)

docs: $(STAMP)
	$(PY) scripts/readme_tables.py --write

lock: $(STAMP)
	$(VENV)/bin/pip-compile --quiet --no-emit-index-url --no-emit-find-links --strip-extras -o requirements.txt requirements.in
	$(VENV)/bin/pip-compile --quiet --no-emit-index-url --no-emit-find-links --strip-extras -c requirements.txt -o requirements-cli.txt requirements-cli.in
	$(VENV)/bin/pip-compile --quiet --no-emit-index-url --no-emit-find-links --strip-extras -o requirements-dev.txt requirements-dev.in
	$(VENV)/bin/pip-compile --quiet --no-emit-index-url --no-emit-find-links --strip-extras -o requirements-security.txt requirements-security.in

# checkov (its exit status and counts) runs inside the gate, alongside the applies of every example; the gate lints
# every IAM policy Terraform renders and exits non-zero on any finding (scripts/security_gate.py).
security: $(STAMP)
	test -x $(SECURITY_VENV)/bin/checkov || ($(PYTHON) -m venv $(SECURITY_VENV) && \
		$(SECURITY_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-security.txt)
	$(PY) scripts/security_gate.py --checkov $(SECURITY_VENV)/bin/checkov

clean:
	rm -rf $(VENV) $(SECURITY_VENV) $(RUNTIME_VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info
