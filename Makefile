# Two commands set up everything: `make demo` and `make test`.
# Each installs the pinned set into .venv first (idempotent: re-runs only when
# pyproject.toml or constraints.txt changed).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install browser demo test lab bench lint clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check --upgrade 'pip<26'
	@$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@$(PY) -c "import syft, torch, cv2, skimage; print('installed: syft', syft.__version__, '| torch', torch.__version__, '| opencv', cv2.__version__)"
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/workbench demo

# Debian's headless Chromium and its driver, for the floor page's browser tests
# (tests/test_floor_browser.py). Skipped when both are already on PATH.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ apt-get update && apt-get install -y chromium chromium-driver; }

test: install browser
	$(PY) -m pytest -q

bench: install
	$(VENV)/bin/workbench bench

lab: install
	$(VENV)/bin/jupyter lab notebooks/

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache bench/ reports/out/
