# rtm: the two commands of the README (make demo, make test) and the developer targets.
# Every target creates .venv when missing and installs the project into it.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
DEMO_OUT ?= demo-output

.PHONY: demo test lint bench docs clean validate-london schema qgis-plugin

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# make demo installs rtm alone (no test, docs or dev tools): what the demo runs on
DEMO_STAMP := $(VENV)/.demo-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
$(DEMO_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/rtm analyze sample_data/crimes.csv --area sample_data/area.gpkg \
	    --factors-dir sample_data/factors --protective parks --where type=robbery \
	    --block-length 150 --out $(DEMO_OUT) --overwrite --verbose
	@echo ""
	@echo "Demo done (synthetic sample city, robbery):"
	@echo "  map (interactive, works offline): $(DEMO_OUT)/map.html"
	@echo "  report (printable):              $(DEMO_OUT)/report.html"
	@echo "  model table $(DEMO_OUT)/factors.csv, risk raster $(DEMO_OUT)/risk.tif, details $(DEMO_OUT)/report.json"

# make docs: the documentation site in site/ (MkDocs, warnings are errors)
DOCS_STAMP := $(VENV)/.docs-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# the JSON Schema of report.json, generated from rtm/runs/schema.py (tests check it is current)
schema: $(STAMP)
	$(BIN)/python -c "import sys; from rtm.runs.schema import schema_text; \
	    sys.stdout.write(schema_text())" > docs/reference/run-report.schema.json

# the test files run on up to 4 cores (pytest-xdist, one file per worker at a time, so a
# file's module fixtures are built once); TEST_WORKERS=0 runs them in this process
TEST_WORKERS ?= $(shell $(PYTHON) -c "import os; print(min(4, len(os.sched_getaffinity(0))))")
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# make bench: every case (~20 min); a quick run: make bench CASES=startup,sample,london100
# cases: startup sample london100 london50 london25 synth1m synth4m glmnet_london100
#        glmnet_synth1m force (every London borough x crime type, serial and 2 workers)
CASES ?= startup,sample,london100,london50,london25,synth1m,synth4m,glmnet_london100,glmnet_synth1m,force
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run --cases $(CASES) $(if $(REPEATS),--repeats $(REPEATS))

# London robbery 2022 validation table (needs ../shared/data/london; ~5 min with the rolling CV)
# (into out/, untracked; VALIDATE_OUT=benchmarks/results/validation_london.json refreshes the
# published numbers on purpose)
VALIDATE_OUT ?= out/validation_london.json
validate-london: $(STAMP)
	$(BIN)/python -m benchmarks.validate_london --rolling --out $(VALIDATE_OUT)

# the QGIS plugin, installable with Plugins > Manage and Install Plugins > Install from ZIP
# (standard library only: no virtualenv needed)
qgis-plugin:
	$(PYTHON) qgis/build.py --out dist

lint: $(STAMP)
	$(BIN)/ruff check rtm cli tests benchmarks sample_data qgis
	$(BIN)/ruff format --check rtm cli tests benchmarks sample_data qgis
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(DEMO_OUT) site dist .pytest_cache .mypy_cache .ruff_cache
