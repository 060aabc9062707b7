# make quickstart : set up .venv (first time) and run the quickstart
# make test       : set up .venv (first time) and run the default test suite
# make test-slow  : the long end-to-end runs (marked slow), as CI's second step
VENV ?= .venv

$(VENV)/.installed: scripts/install.sh requirements.txt setup.py
	bash scripts/install.sh
	touch $@

.PHONY: install quickstart test test-slow
install: $(VENV)/.installed

quickstart: install
	examples/quickstart/run.sh

test: install
	$(VENV)/bin/python -m pytest -q

test-slow: install
	$(VENV)/bin/python -m pytest -q -m slow
