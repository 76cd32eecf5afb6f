# Two commands for learners (see README.md):
#   make demo   set up on first use, then run the main job on the embedded synthetic data
#   make test   set up on first use, then run every test: unit tests, doctests, notebooks (nbval)
#   make lab    open the lessons in JupyterLab
# No versions are pinned here: pyproject.toml declares lower bounds, so the same commands
# install the current releases on a learner's laptop.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test unit notebooks lab clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/pspnet-edu rf resnet50 --dilated

# One pytest run collects everything; an empty collection (exit status 5) fails the target.
test: $(STAMP)
	$(BIN)/python -m pytest tests pspnet_edu --doctest-modules

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf $(VENV) build runs .pytest_cache
