# Two entry points from a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: demo test examples bench bench-quick clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.examples: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[examples]'
	touch $@

$(VENV)/.bench: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[dev,bench]'
	touch $@

$(VENV)/.test: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

demo: $(VENV)/.examples            ## install and run the main example
	$(PY) examples/quickstart.py

examples: $(VENV)/.examples        ## run every example
	for f in examples/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

test: $(VENV)/.test                ## install and run the whole test suite (2 workers)
	$(PY) -m pytest -n 2 --dist loadgroup

bench: $(VENV)/.bench              ## every workload and peer: bench/results/*.csv, README.md, scaling.png
	$(PY) -m bench

bench-quick: $(VENV)/.bench        ## smoke run (1 pass, few reps) into bench/results/raw/quick
	$(PY) -m bench --quick

clean:
	rm -rf $(VENV) build *.egg-info
