# The two commands: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

# Embedded development defaults; any of them can be overridden from the environment.
export DJANGO_DEBUG ?= true

# `make run STRIPE=localstripe`: card payments (R11s) against localstripe on loopback.
STRIPE ?=
LOCALSTRIPE_PORT ?= 8420
ifeq ($(STRIPE),localstripe)
export STRIPE_API_KEY ?= sk_test_localstripe
export STRIPE_API_BASE ?= http://127.0.0.1:$(LOCALSTRIPE_PORT)
export STRIPE_WEBHOOK_SECRET ?= whsec_localstripe_dev
endif

# `make run OMNIVA=fake` (with `make fake-omniva` in another terminal): shipments are
# registered through the Omniva client (R14) against the fake Omniva on loopback.
OMNIVA ?=
FAKE_OMNIVA_PORT ?= 8765
ifeq ($(OMNIVA),fake)
export OMNIVA_API_URL ?= http://127.0.0.1:$(FAKE_OMNIVA_PORT)/api/v01/omx/
export OMNIVA_USERNAME ?= demo
export OMNIVA_PASSWORD ?= demo
export OMNIVA_CUSTOMER_CODE ?= 123456
endif

.PHONY: run test install migrate seed worker beat lint format bench clean messages fake-omniva

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python requirements.lock pyproject.toml
	$(BIN)/python -m pip install --quiet -r requirements.lock
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/python manage.py migrate --no-input

seed: migrate
	$(BIN)/python manage.py seed_demo

run: seed
	@echo ""
	@echo "  Shop back office on http://$(HOST):$(PORT)/"
	@echo "  API docs (Swagger UI):  http://$(HOST):$(PORT)/api/docs/"
	@echo "  OpenAPI schema:         http://$(HOST):$(PORT)/api/schema/"
	@echo "  Admin:                  http://$(HOST):$(PORT)/admin/   (login: staff / staff-demo-password)"
	@echo ""
ifeq ($(STRIPE),localstripe)
	@echo "  Card payments: localstripe on $(STRIPE_API_BASE) (log: var/localstripe.log)"
	@echo ""
	@mkdir -p var; \
	$(BIN)/python -m orders.payments.devserver --port $(LOCALSTRIPE_PORT) \
	  --store var/localstripe.pickle --webhook-secret "$$STRIPE_WEBHOOK_SECRET" \
	  --webhook-url http://$(HOST):$(PORT)/api/webhooks/stripe/ >var/localstripe.log 2>&1 & \
	ls_pid=$$!; trap 'kill $$ls_pid 2>/dev/null' EXIT INT TERM; \
	$(BIN)/python manage.py runserver $(HOST):$(PORT)
else
	$(BIN)/python manage.py runserver $(HOST):$(PORT)
endif

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

worker: install
	$(BIN)/celery -A shop worker --loglevel=INFO

beat: install
	$(BIN)/celery -A shop beat --loglevel=INFO

fake-omniva: install
	$(BIN)/python -m delivery.fake_omniva --host 127.0.0.1 --port $(FAKE_OMNIVA_PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# var/ is git-ignored scratch space (benchmark virtualenvs live there): not the catalogue.
messages: install
	$(BIN)/python manage.py makemessages -l lv --ignore=.venv --ignore=var
	$(BIN)/python manage.py compilemessages --ignore=.venv --ignore=var

# `make bench BENCH_ARGS="checkout --quick"`: one benchmark, short runs (docs/benchmarks.md).
bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3 var
