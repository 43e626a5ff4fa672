# Two commands: `make run` starts the app, `make test` runs every test. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
ARGS ?=

.PHONY: run test lint

$(VENV)/installed: requirements.txt requirements-quant.txt requirements-ray.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

run: $(VENV)/installed
	$(VENV)/bin/python app.py $(ARGS)

lint: $(VENV)/installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1 $(VENV)/bin/pytest
