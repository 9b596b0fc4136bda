# TalIA: `make run` starts everything, `make test` checks everything. See README.md.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: run test lint format typecheck messages install clean bench

run: $(STAMP)
	$(PY) -m talia.runtime

test: $(STAMP) lint
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(MAKE) --no-print-directory typecheck

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The django-stubs plugin imports the settings, which need these URLs; mypy connects to nothing.
typecheck: $(STAMP)
	DATABASE_URL=$${DATABASE_URL:-postgres://localhost/talia} REDIS_URL=$${REDIS_URL:-redis://localhost:6379/0} \
	SECRET_KEY=$${SECRET_KEY:-typecheck-only} ALLOWED_HOSTS=$${ALLOWED_HOSTS:-localhost} $(VENV)/bin/mypy talia conversations channels_web channels_whatsapp channels_voice leads rag

# Refresh the translation catalogues after changing user-facing text; the compiled .mo files are committed.
messages: $(STAMP)
	$(PY) manage.py makemessages -l es -l en -i ".venv/*" -i "var/*"
	$(PY) manage.py compilemessages -i .venv

install: $(STAMP)

# Every benchmark scenario on a throwaway embedded stack under var/bench/: a table of TalIA beside its
# floors, and var/bench/latest.json (see bench/README.md). Not part of `make test`; tests never time.
bench: $(STAMP)
	$(PY) bench/run.py $(BENCH_ARGS)

# Reinstall whenever a requirements file changes (the stamp name carries their checksum).
$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
