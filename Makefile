# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
# Each creates .venv from requirements-dev.txt when it is missing.
# The interpreter the venv is made from: Python 3.13 (or 3.12), found by scripts/find_python.sh.
# The deployed Lambda runtime is the venv's version (chalice takes it from the interpreter).
PYTHON_FOUND := $(shell sh scripts/find_python.sh)
VENV ?= .venv
PY := $(VENV)/bin/python
STAGE ?= dev

.PHONY: venv run demo test lint typecheck unit package validate-template bench soak clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -n "$(PYTHON_FOUND)" || { sh scripts/find_python.sh; exit 1; }
	$(PYTHON_FOUND) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# A venv left from an older Python (the project once ran on 3.11) is made again.
venv:
	@if [ -x $(PY) ] && ! $(PY) -c 'import sys; sys.exit(sys.version_info[:2] < (3, 12))'; then \
	  echo "replacing $(VENV): it was made with Python < 3.12"; rm -rf $(VENV); fi
	@$(MAKE) --no-print-directory $(VENV)/.installed

## The whole pipeline on this machine (embedded AWS stand-in, no account, no Docker).
run: venv
	$(PY) -m local run

## The runtime plus a scripted walk through the reference scenario.
demo: venv
	$(PY) -m local demo

## Everything CI checks: lint, types, the deployment template, the test suite.
test: venv lint typecheck validate-template
	$(PY) -m pytest

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy .

## CloudFormation (SAM) template + deployment zip in build/package. No region or account
## goes into it (pseudo-parameters); chalice package gets your AWS_REGION/AWS_DEFAULT_REGION
## or a placeholder only to name service principals (scripts/package.py).
package: venv
	$(PY) -m scripts.render_template
	$(PY) -m scripts.package --stage $(STAGE) build/package

## cfn-lint on the SAM template and on its expansion by aws-sam-translator.
validate-template: package
	$(PY) -m scripts.validate_template build/package/sam.json

## Cost, CPU, cold start (bench/results.md), then the local pipeline's throughput.
bench: venv
	$(PY) -m bench
	$(PY) -m bench.local_pipeline

soak: venv
	$(PY) -m bench.soak

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
