# Two commands set up everything: `make demo` and `make test`.
# Each installs the pinned set into .venv first (idempotent: re-runs only when
# pyproject.toml or constraints.txt changed).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lab bench lint clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check --upgrade 'pip<26'
	@$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@$(PY) -c "import syft, torch, cv2, skimage; print('installed: syft', syft.__version__, '| torch', torch.__version__, '| opencv', cv2.__version__)"
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/workbench demo

test: install
	$(PY) -m pytest -q

bench: install
	$(VENV)/bin/workbench bench

lab: install
	$(VENV)/bin/jupyter lab notebooks/

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache bench/ reports/out/
