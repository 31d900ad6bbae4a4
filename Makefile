# One entry point. `make demo` analyses the recorded default session; `make test` runs everything CI runs.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO ?= captures/chromium-ui-only

.PHONY: demo test lint bench bench-addon bench-bombs bench-live bench-scale bench-batch install clean

$(STAMP): pyproject.toml
	@set -e; PYTHON=$$(scripts/find-python); echo "using $$PYTHON"; \
	  [ -x $(PY) ] || $$PYTHON -m venv $(VENV); \
	  $(PY) -m pip install --quiet --upgrade pip; \
	  $(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# The verdict is the exit code (0 no leak, 3 inconclusive, 4 metadata leak, 5 content leak);
# the default session leaks on purpose, so only 1 (crash) and 2 (usage) fail the demo.
demo: $(STAMP)
	@mkdir -p build/demo
	$(VENV)/bin/mutecheck streams $(DEMO)
	@echo
	@$(VENV)/bin/mutecheck analyze $(DEMO) --report build/demo/report.json \
	    --html build/demo/report.html --wireshark build/demo/wireshark; \
	  code=$$?; if [ $$code -eq 1 ] || [ $$code -eq 2 ]; then exit $$code; fi; \
	  echo; echo "open build/demo/report.html in a browser (verdict exit code $$code)"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy --strict decoders $(wildcard addons/*.py)

test: lint
	$(VENV)/bin/pytest -q

bench: $(STAMP)
	$(PY) bench/bench_streams.py

# one long call of 1, 5 and 20 million packets (generated once into build/scale/, ~16 GB):
# streams and analyze, packets/s, peak RSS and bytes/packet, the ratio to tshark on the first
bench-scale: $(STAMP)
	$(PY) bench/bench_scale.py

bench-addon: $(STAMP)
	$(PY) bench/bench_addon.py

bench-live: $(STAMP)
	$(PY) bench/bench_live.py
	$(PY) bench/bench_live.py --view

# hostile inputs (gzip of zero records, huge records, 10,000 mute windows, a 50 MB dump line)
# against normal inputs of the same size on disk: peak RSS, time, ratios
bench-bombs: $(STAMP)
	$(PY) bench/bench_bombs.py

# mutecheck batch over 200 sessions (the lab's + synthetic), serial vs 2 worker processes:
# sessions/minute, the ratio (target >= 1.7x on 2 cores), peak RSS per worker.
# BATCH_ARGS="--extra PATH" adds long captures (or any sessions) to the corpus as they are.
bench-batch: $(STAMP)
	$(PY) bench/bench_batch.py $(BATCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info decoders/wire/_walk*.so
