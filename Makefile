# The README's two commands: `make quickstart` and `make test`. Both set up .venv from the lock first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
QUICKSTART := examples/quickstart
QUICKSTART_DATA := $(QUICKSTART)/data/credit.csv.gz

.PHONY: setup browser quickstart test test-fast golden json-schema lock clean

setup: $(VENV)/.installed

# Exact pins, no resolver: a fresh install takes minutes, not a backtracking search.
$(VENV)/.installed: requirements.lock setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $@

$(QUICKSTART_DATA): | setup
	$(BIN)/sluiceway generate-data -o $@ --rows 20000 --seed 7

quickstart: setup $(QUICKSTART_DATA)
	$(BIN)/sluiceway run $(QUICKSTART)/pipeline.yaml

# Headless Chromium and pdftotext, for the test that reads the rendered fairness report (Debian packages).
browser:
	@command -v chromium >/dev/null && command -v pdftotext >/dev/null || \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium poppler-utils)

# Everything, slow end-to-end tests included (what CI runs).
test: setup browser
	$(BIN)/python -m pytest

# Skips the tests marked slow.
test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

golden: setup
	$(BIN)/python -m tests.pipeline.regenerate_golden

json-schema: setup
	$(BIN)/sluiceway config-schema -o schemas/pipeline.schema.json

# Re-resolve requirements.in into requirements.lock (needs network access to PyPI).
lock:
	$(PYTHON) -m pip install --quiet uv
	$(PYTHON) -m uv pip compile requirements.in --python-version 3.11 --python-platform x86_64-manylinux_2_28 -o requirements.lock

clean:
	rm -rf $(VENV) *.egg-info $(QUICKSTART)/pipelines
