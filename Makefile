# loopml developer commands. `make test` and `make demo` work on a fresh machine: they create
# .venv and install what they need first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test check lint demo examples bench bench-tracking bench-data bench-models bench-serving bench-monitoring bench-pipelines bench-tuning bench-demo bench-server clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/ruff check src tests bench examples
	$(BIN)/mypy
	$(BIN)/lint-imports

check: lint test

# The whole lifecycle on the real 2013 NYC flights, in a fresh store in loopml-demo/.
demo: install
	rm -rf loopml-demo
	$(BIN)/loopml demo --dir loopml-demo

# The small quick-start scripts of the README's sections.
examples: install
	cd examples && ../$(BIN)/python tracking_quickstart.py
	cd examples && ../$(BIN)/loopml --store .loopml runs list --project quickstart --max-results 8
	cd examples && ../$(BIN)/loopml --store .loopml data list --project quickstart
	cd examples && ../$(BIN)/python models_quickstart.py
	cd examples && ../$(BIN)/loopml --store .loopml models show churn-classifier --project quickstart
	cd examples && ../$(BIN)/python serving_quickstart.py
	cd examples && ../$(BIN)/loopml --store .loopml deployments show churn-api --project quickstart

bench: bench-tracking bench-data bench-models bench-serving bench-monitoring bench-pipelines bench-tuning bench-server

bench-tracking: install
	$(BIN)/python bench/run.py

bench-server: install
	$(BIN)/python bench/server.py

bench-data: install
	$(BIN)/python bench/data.py

bench-models: install
	$(BIN)/python bench/models.py

bench-serving: install
	$(BIN)/python bench/serving.py

bench-monitoring: install
	$(BIN)/python bench/monitoring.py

bench-pipelines: install
	$(BIN)/python bench/pipelines.py

bench-tuning: install
	$(BIN)/python bench/tuning.py

bench-demo: install
	$(BIN)/python bench/demo.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache examples/.loopml loopml-demo
