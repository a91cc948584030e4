# Mizani: `make run` starts a demo on SQLite; `make test` runs the whole suite (PostgreSQL when DATABASE_URL is set).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_HOUSEHOLDS ?= 2500

.PHONY: run test venv migrate demo worker serve check-deploy benchmark-pages clean

$(BIN)/.installed: requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	touch $@

venv: $(BIN)/.installed

migrate: venv
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py seed_demo --households $(DEMO_HOUSEHOLDS)

run: demo
	@$(BIN)/python manage.py demo_logins --url http://$(HOST):$(PORT)/admin/
	$(BIN)/python manage.py run_huey --workers 2 --worker-type thread & \
	  worker=$$!; trap "kill $$worker 2>/dev/null" EXIT INT TERM; \
	  $(BIN)/python manage.py runserver $(HOST):$(PORT)

test: venv
	$(BIN)/python -m pytest -q

check-deploy: venv
	DJANGO_SETTINGS_MODULE=config.settings.production $(BIN)/python manage.py check --deploy --fail-level WARNING

benchmark-pages: venv
	$(BIN)/python manage.py benchmark pages --rows 1000000

clean:
	rm -rf $(VENV) var
