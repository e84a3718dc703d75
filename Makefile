# Broadsheet: `make run` (site + worker + demo content) and `make test` (checks + tests).
# Both set up .venv from a fresh clone; running them again is safe and quick.
SHELL := /bin/sh
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
HOST ?= 127.0.0.1
PORT ?= 8000
export DJANGO_SETTINGS_MODULE ?= newsletter_site.settings.dev

.PHONY: run test test-services venv dev-venv migrate demo lint check bench clean messages

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
	$(PY) manage.py load_demo_content

# The Procfile says `python`: the venv goes first on PATH so honcho's processes use it.
run: demo
	@HOST=$(HOST) PORT=$(PORT) $(PY) manage.py run_banner
	PATH="$(CURDIR)/$(BIN):$$PATH" HOST=$(HOST) PORT=$(PORT) $(BIN)/honcho start -f Procfile

check: dev-venv
	$(PY) manage.py check --fail-level WARNING
	$(PY) manage.py makemigrations --check --dry-run

lint: dev-venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: check lint
	DJANGO_SETTINGS_MODULE=newsletter_site.settings.test $(BIN)/pytest -m "not mta"

# Sending benchmark (bench/README.md): make bench BENCH_ARGS="--recipients 100000 --database postgres"
bench: dev-venv
	$(PY) bench/run.py $(BENCH_ARGS)

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
	$(PY) manage.py compilemessages --ignore=.venv
