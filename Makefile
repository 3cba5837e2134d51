# Kinship — the targets the README names.
PYTHON ?= python3.11
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: install run test test-unit test-integration lint format bench clean

# Every version comes from the lock (constraints.txt), build tools included.
$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed ($(PYTHON) not found)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet pip==26.3
	$(BIN)/pip install --quiet -c constraints.txt --build-constraint constraints.txt -e '.[dev]'
	touch $(STAMP)

## install: virtualenv, Python dependencies, and the Kafka jars (fetched once with mvn)
install: $(STAMP)
	$(BIN)/kinship kafka fetch

## run: start the whole local system (Kafka, migrations, the three services and their workers)
run: install
	$(BIN)/kinship dev up

## test: unit, integration and end-to-end tests (starts a throwaway PostgreSQL and a real Kafka if not given)
test: install
	$(BIN)/pytest

test-unit: install
	$(BIN)/pytest tests/unit

test-integration: install
	$(BIN)/pytest tests/integration

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## bench: the benchmarks (not tests); each prints its figures and a summary line
bench: install
	$(BIN)/python bench/events.py

clean:
	-$(BIN)/kinship dev down 2>/dev/null
	-$(BIN)/kinship kafka stop 2>/dev/null
	rm -rf var
