# Everything sets itself up: a fresh clone needs only python3 (3.10+) on the PATH.
PYTHON ?= python3
AIRFLOW_3_VERSION ?= 3.3.2
AIRFLOW_2_VERSION ?= 2.11.2
VENV3 := .venv
VENV2 := .venv2
EXTRAS := amazon,google,fast,test,lint

.PHONY: test test-af3 test-af2 lint demo bench clean

## The whole suite on Airflow 3 (with ruff and mypy), then on Airflow 2.11.
test: test-af3 test-af2

$(VENV3)/.installed-$(AIRFLOW_3_VERSION): pyproject.toml
	$(PYTHON) -m venv $(VENV3)
	$(VENV3)/bin/python -m pip install -q --disable-pip-version-check uv
	VIRTUAL_ENV=$(VENV3) $(VENV3)/bin/uv pip install -q "apache-airflow==$(AIRFLOW_3_VERSION)" -e ".[$(EXTRAS)]"
	touch $@

$(VENV2)/.installed-$(AIRFLOW_2_VERSION): pyproject.toml
	$(PYTHON) -m venv $(VENV2)
	$(VENV2)/bin/python -m pip install -q --disable-pip-version-check uv
	VIRTUAL_ENV=$(VENV2) $(VENV2)/bin/uv pip install -q "apache-airflow==$(AIRFLOW_2_VERSION)" -e ".[amazon,google,fast,test]"
	touch $@

lint: $(VENV3)/.installed-$(AIRFLOW_3_VERSION)
	$(VENV3)/bin/ruff check .
	$(VENV3)/bin/ruff format --check .
	$(VENV3)/bin/mypy

test-af3: lint
	$(VENV3)/bin/python -m pytest

test-af2: $(VENV2)/.installed-$(AIRFLOW_2_VERSION)
	$(VENV2)/bin/python -m pytest -m "not airflow3_only"

clean:
	rm -rf $(VENV3) $(VENV2) .airflow-demo bench/.work
