# Relay. `make run` serves the embedded demo; `make test` runs the whole suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)
DEV_ENV := DJANGO_DEBUG=true DJANGO_SETTINGS_MODULE=config.settings.base RELAY_INPROCESS_WORKER=true
PYTEST_ARGS ?=

.PHONY: install run test lint format check bench clean checkov-venv check-infra

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

run: install
	env $(DEV_ENV) $(BIN)/python manage.py migrate --noinput
	env $(DEV_ENV) $(BIN)/python manage.py seed_demo
	env $(DEV_ENV) $(BIN)/python manage.py demo_admin
	@echo ""
	@echo "  Relay is starting on http://127.0.0.1:8000"
	@echo "  Chat as a WhatsApp user:  http://127.0.0.1:8000/sandbox/   (or: make chat)"
	@echo "  Admin:                    http://127.0.0.1:8000/admin/      user admin / password admin"
	@echo "  API docs:                 http://127.0.0.1:8000/api/docs/"
	@echo ""
	env $(DEV_ENV) $(BIN)/python manage.py runserver --noreload 127.0.0.1:8000

chat: install
	env $(DEV_ENV) $(BIN)/python manage.py chat

test: install
	@$(BIN)/python scripts/check_services.py
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy apps config
	$(BIN)/python manage.py makemigrations --check --dry-run --settings=config.settings.test
	$(BIN)/pytest --create-db $(PYTEST_ARGS)

# Security: bandit (no high-severity finding), check --deploy under production settings, pip-audit.
# pip-audit needs a vulnerability database on the network; unreachable fails unless PIP_AUDIT_UNREACHABLE=warn
# (see tests/security/tools.py for why).
check: install
	$(BIN)/python -m tests.security.tools bandit
	$(BIN)/python -m tests.security.tools deploy
	$(BIN)/python -m tests.security.tools pip-audit

# Benchmarks (not tests): figures printed and written to bench/results/*.json. BENCH_ARGS=--quick for a short run.
BENCH_ARGS ?=
bench: install
	@$(BIN)/python scripts/check_services.py
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# Infrastructure lint: checkov over the Bicep in infra/. Its dependencies clash with the app's pins, so it
# lives in its own venv (.venv-checkov, gitignored); tests/deploy/test_infra.py builds it the same way.
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-checkov-$(CHECKOV_VERSION)

$(CHECKOV_STAMP):
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV) || python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check checkov==$(CHECKOV_VERSION)
	@rm -f $(CHECKOV_VENV)/.installed-checkov-*
	@touch $(CHECKOV_STAMP)

checkov-venv: $(CHECKOV_STAMP)

check-infra: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/checkov -d infra --framework bicep --skip-download --quiet --compact

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy apps config

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .pytest_cache .ruff_cache
