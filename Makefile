# One entry point. `make demo` analyses the recorded default session; `make test` runs everything CI runs.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO ?= captures/chromium-ui-only

.PHONY: demo test lint bench install clean

$(STAMP): pyproject.toml
	@set -e; PYTHON=$$(scripts/find-python); echo "using $$PYTHON"; \
	  [ -x $(PY) ] || $$PYTHON -m venv $(VENV); \
	  $(PY) -m pip install --quiet --upgrade pip; \
	  $(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mutecheck streams $(DEMO)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy --strict decoders $(wildcard addons/*.py)

test: lint
	$(VENV)/bin/pytest -q

bench: $(STAMP)
	$(PY) bench/bench_streams.py

clean:
	rm -rf $(VENV) build *.egg-info decoders/wire/_walk*.so
