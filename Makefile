# Everything sets itself up: a fresh clone needs only python3 (3.10+) on the PATH.
PYTHON ?= python3
AIRFLOW_3_VERSION ?= 3.3.2
AIRFLOW_2_VERSION ?= 2.11.2
VENV3 := .venv
VENV2 := .venv2
EXTRAS := amazon,google,fast,parquet,test,lint,integration

.PHONY: test test-af3 test-af2 lint demo bench clean

## The whole suite on Airflow 3 (with ruff and mypy), then on Airflow 2.11.
test: test-af3 test-af2

$(VENV3)/.installed-$(AIRFLOW_3_VERSION): pyproject.toml
	$(PYTHON) -m venv $(VENV3)
	$(VENV3)/bin/python -m pip install -q --disable-pip-version-check uv
	VIRTUAL_ENV=$(VENV3) $(VENV3)/bin/uv pip install -q "apache-airflow==$(AIRFLOW_3_VERSION)" -e ".[$(EXTRAS)]"
	touch $@

# cryptography 51 made MultiFernet a Rust type that takes no new attributes, and Airflow 2.11's
# get_fernet() sets one: every connection with a password fails to load.
$(VENV2)/.installed-$(AIRFLOW_2_VERSION): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV2)
	$(VENV2)/bin/python -m pip install -q --disable-pip-version-check uv
	VIRTUAL_ENV=$(VENV2) $(VENV2)/bin/uv pip install -q "apache-airflow==$(AIRFLOW_2_VERSION)" "cryptography<51" -e ".[amazon,google,parquet,test]"
	touch $@

lint: $(VENV3)/.installed-$(AIRFLOW_3_VERSION)
	$(VENV3)/bin/ruff check .
	$(VENV3)/bin/ruff format --check .
	$(VENV3)/bin/mypy

test-af3: lint
	$(VENV3)/bin/python -m pytest

test-af2: $(VENV2)/.installed-$(AIRFLOW_2_VERSION)
	$(VENV2)/bin/python -m pytest -m "not airflow3_only"

## Run the hourly S3 example DAG through Airflow 3 against the simulator and moto (ARGS=--keep-running).
demo: $(VENV3)/.installed-$(AIRFLOW_3_VERSION)
	$(VENV3)/bin/python demo/run_demo.py $(ARGS)

clean:
	rm -rf $(VENV3) $(VENV2) .airflow-demo bench/.work

## Benchmark, not part of the tests (~15 min): the operator vs a hand-written task, the raw limit and
## dlt, on loopback; writes bench/results.md. Quick run: make bench BENCH_ARGS="--sizes 10000,100000 --runs 1"
bench: $(VENV3)/.installed-$(AIRFLOW_3_VERSION)
	VIRTUAL_ENV=$(VENV3) $(VENV3)/bin/uv pip install -q msgspec isal zlib-ng
	$(VENV3)/bin/python -m bench $(BENCH_ARGS)
