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

.PHONY: demo test test-other-kernels unit notebooks lab clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(STAMP)

# demo: the synthetic set (generated on first use), the tiny PSPNet and the no-PPM baseline
# trained with poly LR and the aux loss, per-class IoU of both, a last line `mIoU: 0.xxxx`, and
# runs/demo/demo.png. A second run reuses runs/demo (delete it to train again). PASSIVE: idle
# OpenMP threads sleep instead of spinning, which keeps 2 threads fast on a busy machine.
# The training recipe is pspnet_edu.experiments.DEMO_RECIPE (measured in data/README.md); options
# added to the command below (e.g. --iters 600 --threads 2) override it.
demo: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(BIN)/pspnet-edu demo --out runs/demo

# One pytest run collects everything: unit tests (tests/), doctests (pspnet_edu/) and every
# notebook under nbval in strict mode. An empty collection (exit status 5) fails the target.
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with notebooks/nbval_sanitize.cfg
# PASSIVE: idle OpenMP threads sleep instead of spinning (2 torch threads stay fast when the
# machine is busy; on a quiet one the default training command was slower with it since its
# batches are prepared between the steps, README "Timings"); TQDM_DISABLE: no progress bars.
test: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE TQDM_DISABLE=1 $(BIN)/python -m pytest tests pspnet_edu notebooks --doctest-modules $(NBVAL)

# CI's second pass (not part of `make test`): the lessons that train, again with other CPU kernels
# than this machine's best (ATen without SIMD, oneDNN limited to AVX2) and one thread, so that
# float sums come out in another order. A stored output that depends on the CPU fails here.
OTHER_KERNELS := ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=AVX2 OMP_NUM_THREADS=1
TRAINING_LESSONS := notebooks/07_training.ipynb notebooks/08_evaluation.ipynb notebooks/09_ablations.ipynb
test-other-kernels: $(STAMP)
	$(OTHER_KERNELS) OMP_WAIT_POLICY=PASSIVE TQDM_DISABLE=1 $(BIN)/python -m pytest $(TRAINING_LESSONS) $(NBVAL)

# The two halves on their own, for development.
unit: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest tests pspnet_edu --doctest-modules
notebooks: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE TQDM_DISABLE=1 $(BIN)/python -m pytest notebooks $(NBVAL)

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf $(VENV) build runs .pytest_cache
