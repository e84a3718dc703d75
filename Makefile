# Broadsheet: `make run` (site + worker + demo content) and `make test` (checks + tests).
# Both set up .venv from a fresh clone; running them again is safe and quick.
SHELL := /bin/sh
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
HOST ?= 127.0.0.1
PORT ?= 8000
export DJANGO_SETTINGS_MODULE ?= newsletter_site.settings.dev
# Where `make run` / `make serve-prod` are reached: links in emails, List-Unsubscribe, the feed and
# consent records follow HOST and PORT unless BASE_URL is given (environment, make argument or
# .env). 0.0.0.0 listens everywhere; links then name this machine as 127.0.0.1 (give BASE_URL to
# test from a phone on the LAN, e.g. BASE_URL=http://192.168.1.20:8000).
LINK_HOST = $(if $(filter 0.0.0.0 ::,$(HOST)),127.0.0.1,$(HOST))
ENV_FILE ?= .env
RUN_BASE_URL = $(or $(BASE_URL),$(shell sed -n 's/^BASE_URL=//p' $(ENV_FILE) 2>/dev/null | tail -n 1),http://$(LINK_HOST):$(PORT))

.PHONY: screenshots run serve-prod test test-services mutation venv dev-venv migrate demo lint check bench bench-import bench-web bench-webhooks clean messages

# The venv is rebuilt when requirements change (stamp files), never by hand.
$(PY):
	@interp="$$(scripts/find-python)" || exit 1; \
	echo "Creating $(VENV) with $$interp"; \
	"$$interp" -m venv $(VENV) && $(PY) -m pip install --quiet --upgrade pip

$(VENV)/.runtime-stamp: requirements.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.dev-stamp: requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@ $(VENV)/.runtime-stamp

venv: $(VENV)/.runtime-stamp
dev-venv: $(VENV)/.dev-stamp

migrate: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py createcachetable

demo: migrate
	BASE_URL="$(RUN_BASE_URL)" $(PY) manage.py load_demo_content

# The Procfile says `python`: the venv goes first on PATH so honcho's processes use it. BASE_URL is
# set here, once, for the web server and the worker alike (honcho gives each process its own PORT).
run: demo
	@BASE_URL="$(RUN_BASE_URL)" $(PY) manage.py run_banner
	PATH="$(CURDIR)/$(BIN):$$PATH" HOST=$(HOST) PORT=$(PORT) BASE_URL="$(RUN_BASE_URL)" $(BIN)/honcho start -f Procfile

# The production path on this machine: production settings, collectstatic (manifest storage),
# gunicorn on loopback. Variables production requires get development-safe values unless given;
# with the default SQLite database the demo content is loaded too. Tasks run in the web process
# (immediate://) unless TASKS_URL is given, so no separate worker is needed to try it. One
# process (SQLite by default), no control socket (its default path is shared by every gunicorn).
SERVE_PROD_ENV = DJANGO_SETTINGS_MODULE=newsletter_site.settings.production \
	SECRET_KEY="$${SECRET_KEY:-serve-prod-local-only-$$(cat /proc/sys/kernel/random/boot_id 2>/dev/null || echo key)}" \
	ALLOWED_HOSTS="$${ALLOWED_HOSTS:-127.0.0.1,localhost}" \
	BASE_URL="$(RUN_BASE_URL)" \
	DATABASE_URL="$${DATABASE_URL:-sqlite:///$${VAR_DIR:-$(CURDIR)/var}/db.sqlite3}" \
	EMAIL_URL="$${EMAIL_URL:-outbox://}" \
	TASKS_URL="$${TASKS_URL:-immediate://}" \
	SECURE_SSL_REDIRECT="$${SECURE_SSL_REDIRECT:-0}" \
	SERVE_MEDIA="$${SERVE_MEDIA:-1}"
serve-prod: venv
	$(SERVE_PROD_ENV) $(PY) manage.py migrate --noinput
	$(SERVE_PROD_ENV) $(PY) manage.py createcachetable
	@if [ -z "$$DATABASE_URL" ]; then $(SERVE_PROD_ENV) $(PY) manage.py load_demo_content; fi
	$(SERVE_PROD_ENV) $(PY) manage.py collectstatic --noinput --verbosity 0
	$(SERVE_PROD_ENV) $(BIN)/gunicorn newsletter_site.wsgi --bind "$(HOST):$(PORT)" \
		--workers 1 --threads 4 --no-control-socket --access-logfile -

check: dev-venv
	$(PY) manage.py check --fail-level WARNING
	$(PY) manage.py makemigrations --check --dry-run

lint: dev-venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: check lint
	DJANGO_SETTINGS_MODULE=newsletter_site.settings.test $(BIN)/pytest -m "not mta"

# Mutation run over the engine, the ledger and the subscription workflows (docs/testing.md):
# migrate one SQLite file, then every mutant's pytest session runs on a copy of it.
MUTATION_DB := $(CURDIR)/var/mutation.sqlite3
mutation: dev-venv
	rm -f $(MUTATION_DB) && DATABASE_URL=sqlite:///$(MUTATION_DB) DJANGO_SETTINGS_MODULE=newsletter_site.settings.test \
		$(PY) manage.py migrate -v0
	MUTATION_TEST_DB=$(MUTATION_DB) DJANGO_SETTINGS_MODULE=newsletter_site.settings.test $(BIN)/mutmut run --max-children 2
	$(BIN)/mutmut results

# Regenerate the README's screenshots (docs/screenshots/*.png): the visitor's and the editor's
# browser journeys save them on the way (SCREENSHOTS=1), of a campaign really sent by the worker.
screenshots: dev-venv
	SCREENSHOTS=1 DJANGO_SETTINGS_MODULE=newsletter_site.settings.test $(BIN)/pytest -m browser \
		newsletter_site/tests/test_visitor_journeys.py campaigns/tests/test_editor_journey.py

# Sending benchmark (bench/README.md): make bench BENCH_ARGS="--recipients 100000 --database postgres"
bench: dev-venv
	$(PY) bench/run.py $(BENCH_ARGS)

# CSV import benchmark (bench/README.md): 1,000,000 generated rows into SQLite, then PostgreSQL
# (database broadsheet_import_bench, dropped and created). E.g. make bench-import IMPORT_ROWS=100000
# IMPORT_DATABASES=postgres IMPORT_ARGS="--chunk-size 5000".
IMPORT_ROWS ?= 1000000
IMPORT_DATABASES ?= sqlite postgres
bench-import: dev-venv
	@for database in $(IMPORT_DATABASES); do \
		$(PY) bench/import_bench.py --rows $(IMPORT_ROWS) --database $$database $(IMPORT_ARGS) || exit 1; \
	done

# Public site under load (bench/README.md): gunicorn, production settings, 2 workers, PostgreSQL +
# Redis on this machine. make bench-web BENCH_WEB_ARGS="--seconds 30 --redis-url redis://127.0.0.1:6379/3"
bench-web: dev-venv
	$(PY) bench/web_bench.py $(BENCH_WEB_ARGS)

# Tracking-webhook ingestion (bench/README.md): signed SendGrid batches, SQLite by default.
# make bench-webhooks BENCH_WEBHOOK_ARGS="--recipients 15000 --database postgres"
bench-webhooks: dev-venv
	$(PY) bench/webhook_bench.py $(BENCH_WEBHOOK_ARGS)

clean:
	rm -rf $(VENV) var/db.sqlite3 var/outbox var/media

# The tests that need PostgreSQL / Redis (read DATABASE_URL / REDIS_URL; skip when unset) and
# the real mail servers (Postfix, Dovecot: skip when not installed; .ci/run installs them).
test-services: dev-venv
	DJANGO_SETTINGS_MODULE=newsletter_site.settings.test $(BIN)/pytest -m "services or mta"

# Translations (docs/i18n.md): collect the marked strings into locale/*/LC_MESSAGES/django.po,
# then compile the .mo files, which are committed (a fresh clone serves every language). Needs
# GNU gettext (apt-get install gettext). Translate the new entries, then run it again.
messages: dev-venv
	$(PY) manage.py makemessages -l zh_Hans --add-location=file --no-obsolete \
		--ignore=.venv --ignore=var --ignore=bench --ignore='*/tests/*'
	@# compilemessages skips a .mo newer than its .po, which a checkout or a merge makes stale.
	find locale -name '*.mo' -delete
	$(PY) manage.py compilemessages --ignore=.venv
