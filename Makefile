# The README's two commands: `make run` (the main job) and `make test` (the tests).
# Each sets up what it needs: a .venv with the project and its extras, and the few
# Debian packages the tests use (poppler-utils for pdftotext), installed with apt when absent.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test setup system-tools bench lab clean
# Debian packages the reports and their tests use: pdftotext/pdftoppm (poppler-utils) and
# HarfBuzz-Subset (WeasyPrint subsets fonts with it; without it, it warns on import).
# Installed only when missing, so a machine that has them is left alone.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

system-tools:
	@command -v pdftotext >/dev/null 2>&1 && command -v pdftoppm >/dev/null 2>&1 && \
	  ldconfig -p | grep -q libharfbuzz-subset || \
	  { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq poppler-utils libharfbuzz-subset0 >/dev/null; }
	@# chromium: tests/test_browser.py opens reports and JupyterLab in Debian's browser (skipped without it)
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; } || \
	  echo "chromium could not be installed: the browser tests will be skipped"
	@# bpftrace: tests/test_collector.py checks the collector's programs with `bpftrace -d` (skipped without it)
	@command -v bpftrace >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq bpftrace >/dev/null; } || \
	  echo "bpftrace could not be installed: the collector's bpftrace check will be skipped"

setup: $(STAMP) system-tools

# The main job: the reference report (HTML + PDF + executed notebook) into reports/, the
# model set beside the shipped reference measurements; then the numbers in the terminal.
run: setup
	$(BIN)/costmodel report -p data costmodel/reference/roth-2025-07.csv --to html,pdf -o reports
	$(BIN)/costmodel predict --memory 16GiB --vcpus 16 --hugepage 2M --platform snp
	$(BIN)/costmodel predict --memory 16GiB --vcpus 16 --hugepage 1G --platform snp
	$(BIN)/costmodel predict --memory 16GiB --vcpus 1:256:x2 --hugepage 2M,1G --platform snp,tdx --table

test: setup
	$(BIN)/python -m pytest -n auto -q

bench: setup
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

# JupyterLab on costmodel/notebooks/ (installs the lab extra on first use).
lab: setup
	$(BIN)/python -c "import jupyterlab" 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[lab]'
	$(BIN)/costmodel lab

clean:
	rm -rf $(VENV) reports .pytest_cache .hypothesis
