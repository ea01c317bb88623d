# rhino_mlir developer entry points.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: venv demo test test-all lit clean

venv: $(VENV)/.installed

# editable, with what `make test` (test) and `rhino bench --quick` (bench: matplotlib) need;
# the stamp follows this file too, so an older .venv gets a changed install line
$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,bench]'
# keras-hub models for tests/launch/test_keras_models.py: without its declared deps
# (tensorflow-text would pull TensorFlow); import and the models tested need only these
	$(PY) -m pip install -q 'keras==3.15.*' tokenizers regex absl-py
	$(PY) -m pip install -q --no-deps 'keras-hub==0.32.*'
	touch $@

demo: venv
	$(VENV)/bin/rhino demo

test: venv
	$(PY) -m pytest -n 2 --durations=15 -q $(PYTEST_ARGS)
	PATH=$(abspath $(VENV))/bin:$$PATH $(VENV)/bin/lit -q lit_tests

test-all: venv
	$(PY) -m pytest -n 2 --durations=25 -q -m '' $(PYTEST_ARGS)
	PATH=$(abspath $(VENV))/bin:$$PATH $(VENV)/bin/lit -q lit_tests

clean:
	rm -rf $(VENV) build *.egg-info
