# kubelite — two commands matter: `make up` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DATA_DIR ?= /var/lib/kubelite
PORT ?= 6443

.PHONY: up test lint unit integration bench clean

$(STAMP): pyproject.toml scripts/bootstrap.sh
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/bootstrap.sh
	touch $(STAMP)

up: $(STAMP)
	$(VENV)/bin/kubelite server --data-dir $(DATA_DIR) --port $(PORT)

lint: $(STAMP)
	$(VENV)/bin/ruff check kubelite tests bench
	$(VENV)/bin/lint-imports

test: lint
	$(PY) -m pytest -q -p no:cacheprovider tests

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

integration: $(STAMP)
	$(PY) -m pytest -q tests/integration

bench: $(STAMP)
	$(PY) bench/store.py --seconds 30
	$(PY) bench/api.py

clean:
	rm -rf $(VENV) build *.egg-info
