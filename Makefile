# Mission Service — every command a newcomer needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install up test lint bench soak clean schema

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv with the service and its dev tools

up: $(STAMP)  ## the whole service: Redis (embedded if none answers), a worker, the API with GraphiQL
	$(BIN)/mission-service up

test: $(STAMP)  ## the whole suite, against real Redis servers it starts itself
	$(BIN)/pytest

lint: $(STAMP)  ## ruff + mypy (strict)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

schema: $(STAMP)  ## write schema.graphql (the committed SDL) from the code
	$(BIN)/python -c "from config.settings import Settings; from schema.schema import build_schema; print(build_schema(Settings()).as_str())" > schema.graphql

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
