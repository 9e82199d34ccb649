# The two commands of the README: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export WANDB_MODE ?= offline
export TOKENIZERS_PARALLELISM ?= false

SWEEP_DIR := outputs/sweeps/default

.PHONY: venv lmms-eval data demo lint test sweep clean slurm-up slurm-down

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch first, pinned: with 2.13.0 installed, lightning's torch requirement is already
# met, so pip never reaches for a newer torch with several GB of CUDA packages.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

venv: $(STAMP)

# lmms-eval (README "lmms-eval"): the `lmms` extra, what it needs to run our model on local
# tasks (pyproject.toml), then the package without its declared requirements, which would
# replace this environment's pieces (its unpinned torchvision is a CUDA build on PyPI, and
# breaks `import transformers` on the CPU torch; it pins wandb==0.25.0 and av<16).
LMMS_EVAL := lmms-eval==0.7.3
LMMS_STAMP := $(VENV)/.lmms-eval
$(LMMS_STAMP): pyproject.toml | $(STAMP)
	$(PY) -m pip install --quiet -e ".[dev,lmms]"
	$(PY) -m pip install --quiet --no-deps $(LMMS_EVAL)
	@touch $(LMMS_STAMP)

lmms-eval: $(LMMS_STAMP)

data: venv
	$(PY) -m src.data.synthetic

# The card's sweep, two runs at once, each on half the CPUs, the Qwen1.5-4B replicas first
# (hydra/launcher=local; one after another on 2 threads takes longer: docs/results.md).
demo: data
	$(PY) -m src.train -m encoder=siglip,dinov2 llm=qwen0.5b,qwen4b hydra/launcher=local
	$(PY) -m analysis.collect $(SWEEP_DIR) -o $(SWEEP_DIR)/results.csv
	$(PY) -m analysis.scaling $(SWEEP_DIR)/results.csv --metric test/synthetic/overall --out $(SWEEP_DIR)/scaling
	$(PY) -m analysis.correlations $(SWEEP_DIR)/results.csv --out $(SWEEP_DIR)/correlations
	$(PY) -m analysis.report $(SWEEP_DIR) --paper
	$(PY) -m analysis.report_wandb $(SWEEP_DIR)
	@echo
	@echo "Runs (one result.json each): $(SWEEP_DIR)/"
	@echo "Results table:               $(SWEEP_DIR)/results.csv"
	@echo "Scaling analysis:            $(SWEEP_DIR)/scaling/"
	@echo "Category correlations:       $(SWEEP_DIR)/correlations/"
	@echo "Report (open in a browser):  $(SWEEP_DIR)/report/report.html (and report.md)"
	@echo "W&B (offline, report too):   wandb sync $(SWEEP_DIR)/*/wandb/offline-run-*"

# `make sweep SWEEP=demo`: a sweep file of sweeps/, then its table and Scaling Consistency.
# The file's `sweep:` names its folder; by convention the same as the file's name.
SWEEP ?= demo
sweep: data
	$(PY) -m src.train -m --config-dir sweeps --config-name $(SWEEP)
	$(PY) -m analysis.collect outputs/sweeps/$(SWEEP) -o outputs/sweeps/$(SWEEP)/results.csv
	$(PY) -m analysis.scaling outputs/sweeps/$(SWEEP)/results.csv --metric test/synthetic/overall --out outputs/sweeps/$(SWEEP)/scaling
	$(PY) -m analysis.correlations outputs/sweeps/$(SWEEP)/results.csv --out outputs/sweeps/$(SWEEP)/correlations
	$(PY) -m analysis.report outputs/sweeps/$(SWEEP) --paper
	$(PY) -m analysis.report_wandb outputs/sweeps/$(SWEEP)

# ruff (lint, then formatting) and mypy, configured in pyproject.toml; `make test` runs them first.
lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

test: venv lmms-eval lint
	$(PY) -m pytest

clean:
	rm -rf outputs multirun

# A single-node SLURM cluster from Debian's packages (root; the SLURM tests start it themselves).
slurm-up:
	bash scripts/slurm_up.sh

slurm-down:
	bash scripts/slurm_down.sh
