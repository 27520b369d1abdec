# The two commands: `make run` (set up and start the whole service locally) and `make test`
# (set up and run every test). Both install what they need (scripts/bootstrap.sh).
VENV ?= .venv
BIN := $(VENV)/bin
SAM_VENV ?= .venv-sam

.PHONY: setup browser run test test-unit test-integration test-e2e chaos lint format template-check sam-cli bench clean

setup:
	@VENV=$(VENV) ./scripts/bootstrap.sh

# Chromium for the admin page's browser tests (Debian's package; skipped where it cannot be installed)
browser:
	@./scripts/install_chromium.sh

run: setup
	$(BIN)/notifyctl local $(if $(PORT),--port $(PORT)) $(ARGS)

test: setup browser
	@rm -f .coverage .coverage.*
	$(BIN)/coverage run -m pytest $(PYTEST_ARGS)
	@$(BIN)/coverage combine -q
	$(BIN)/coverage report

test-unit: setup
	$(BIN)/pytest tests/unit -q

test-integration: setup
	$(BIN)/pytest tests/integration -q

test-e2e: setup browser
	$(BIN)/pytest tests/e2e -q

# The chaos test alone, with another seed, more notifications, one UNCERTAIN_SENDS mode (default both):
#   make chaos SEED=42 N=2000 UNCERTAIN=skip
SEED ?= 7
N ?= 300
UNCERTAIN ?=
chaos: setup
	$(BIN)/pytest tests/e2e/test_chaos.py -q -s --chaos-seed $(SEED) --chaos-n $(N) --chaos-uncertain $(or $(UNCERTAIN),both)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers/shared functions infra tests

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The SAM CLI pins its own boto3/pydantic/click: it lives in its own virtual environment.
$(SAM_VENV)/bin/sam:
	python3 -m venv $(SAM_VENV) 2>/dev/null || $(BIN)/python -m venv --without-pip $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install -q --upgrade pip
	$(SAM_VENV)/bin/python -m pip install -q aws-sam-cli

sam-cli: $(SAM_VENV)/bin/sam

template-check: setup sam-cli
	$(SAM_VENV)/bin/sam validate --lint --region us-east-1 --template template.yaml
	$(BIN)/cfn-lint template.yaml

# Cold start, batch concurrency, end to end and cost, as ratios against baselines of the same run:
# bench/results/latest.json, latest.md and latency.png. `sam build` first, for the deployment sizes.
bench: setup sam-cli
	$(SAM_VENV)/bin/sam build --template template.yaml >/dev/null 2>&1 || echo "sam build failed: no deployment sizes"
	$(BIN)/notifyctl bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .coverage .coverage.* htmlcov .pytest_cache .mypy_cache .ruff_cache
