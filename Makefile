# make run   : create .venv, install permlmc, run the workflow on $(CONFIG), build the HTML report
# make test  : the whole test suite in the same environment
# make test-quick : the suite without the whole-workflow runs and the large networks (marks workflow, slow)
VENV ?= .venv
CONFIG ?= config.yaml
CORES ?= all
REPORT ?= results/report.html
PY := $(VENV)/bin/python
SNAKEMAKE := $(VENV)/bin/snakemake
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: run test test-quick data lint dry-run clean

# pip byte-compiles the files it installs but not the sources of an editable install: compiled here, so that no job
# compiles them again where Python writes no bytecode itself (PYTHONDONTWRITEBYTECODE, a read-only checkout).
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[workflow,dev]'
	$(PY) -m compileall -q src
	touch $@

data: $(VENV)/.installed
	$(SNAKEMAKE) fetch_data --cores 1 --nolock --configfile $(CONFIG)

# clear_stale_lock.py removes the lock a killed run left, only when no Snakemake process works in this directory;
# profiles/default (read by Snakemake itself) redoes the outputs such a run left incomplete.
run: data
	$(PY) workflow/scripts/clear_stale_lock.py "$(CURDIR)"
	$(SNAKEMAKE) --cores $(CORES) --configfile $(CONFIG)
	$(SNAKEMAKE) --cores 1 --configfile $(CONFIG) --report $(REPORT)
	@echo "report: $(REPORT)"

# Test files are spread over worker processes (pytest-xdist), one file per worker at a time, one worker more than
# cores (tests/conftest.py): the SLURM and workflow tests partly wait on subprocesses and a scheduler, and the unit
# tests run beside them; the workflow files start first, then the longest unit files (tests/conftest.py LONG_FIRST).
test: $(VENV)/.installed
	$(PY) -m pytest -n auto --maxprocesses 4 --dist loadfile --no-loadscope-reorder

test-quick: $(VENV)/.installed
	$(PY) -m pytest -n auto --maxprocesses 4 --dist loadfile --no-loadscope-reorder -m "not workflow and not slow"

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/mypy
	$(SNAKEMAKE) --lint --configfile $(CONFIG)

dry-run: $(VENV)/.installed
	$(PY) workflow/scripts/clear_stale_lock.py "$(CURDIR)"
	$(SNAKEMAKE) -n --configfile $(CONFIG)

clean:
	rm -rf results logs .snakemake
