#!/usr/bin/env bash
# GPU check of hashbench: what a CPU-only machine never exercises, in one short run (minutes).
#
#   bash scripts/gpu_check.sh [OUT]   # OUT (relative to the repository root) defaults to gpu_check_out
#
# Needs the embedded dataset (Fashion-MNIST IDX files in data/fashion-mnist or
# /usr/share/datasets/fashion-mnist: `make data`) and hashbench's dependencies; the exit status is 0
# when no step failed (a skipped step, e.g. the Faiss GPU test without faiss-gpu, is not a failure).
#
# Steps (each reports pass / fail / skipped and never stops the others):
#   env          python, torch, CUDA and device facts (OUT/env.json; nvidia-smi in the log)
#   pytest-gpu   the tests marked `gpu` (`pytest -m gpu`): fit + test of every method on CUDA
#                (tests/test_gpu_fit.py); the Faiss GPU index test skips without faiss-gpu
#   cli-fit      `hashbench fit` of dsh through the CLI, then test of the best checkpoint
#   fit/<m>      a short timed fit of every deep method of the grid (default profile): per-epoch
#                training time, validation time, val/mAP, peak CUDA memory (OUT/fits/*.json)
#   paper-dry    `hashbench bench --profile paper --dry_run true` (the paper grid resolves)
#   paper/<m>    timed short fits with the paper profile's settings, for each method the profile
#                gives its own arguments (pcaegan / pcwgan: setting paper, lr 2e-4, batch 64)
#   paper-bench  a real `hashbench bench` run of those methods at 32 bits, seed 0, on a copy of the
#                grid whose paper profile is cut to GPU_CHECK_PAPER_EPOCHS epochs (records, test,
#                index timing; written under OUT/work, never under results/)
# Output: OUT/gpu_check.log (everything), OUT/summary.md (the tables), OUT/steps.tsv, OUT/env.json,
# OUT/fits/*.json, OUT/work/ (checkpoints, logs and the smoke's records).
#
# Settings (environment):
#   GPU_CHECK_ACCELERATOR          gpu (default) or cpu (to try the script on a machine without one)
#   GPU_CHECK_EPOCHS               epochs of each method fit (default 2: the second is past warm-up)
#   GPU_CHECK_PAPER_EPOCHS         epochs of the paper-profile fits and bench cells (default 1)
#   GPU_CHECK_LIMIT_TRAIN_BATCHES  batches per training epoch of every fit: a number > 1 counts
#                                  batches, one <= 1 is a fraction (default: all)
#   GPU_CHECK_LIMIT_VAL_BATCHES    likewise for validation (default: all)
#   GPU_CHECK_METHODS              comma-separated deep methods (default: every one of the grid)
#   GPU_CHECK_PAPER_METHODS        methods of the paper steps (default: those the paper profile
#                                  gives method_args)
#   GPU_CHECK_BUDGET_S             a step that would start after this many seconds is skipped
#                                  (default 330)
#   GPU_CHECK_STEP_TIMEOUT_S       cap on one step (default 180); also cut to the budget left + 45
#   GPU_CHECK_BENCH                benchmark grid (default benchmarks/fashion-mnist.yaml)
#   GPU_CHECK_PYTHON               interpreter (default .venv/bin/python if present, else python3)
#   GPU_CHECK_STEPS                comma-separated step groups to run: env, pytest, cli, fits, paper
#                                  (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-gpu_check_out}
ACC=${GPU_CHECK_ACCELERATOR:-gpu}
EPOCHS=${GPU_CHECK_EPOCHS:-2}
PAPER_EPOCHS=${GPU_CHECK_PAPER_EPOCHS:-1}
LIMIT_TRAIN=${GPU_CHECK_LIMIT_TRAIN_BATCHES:-}
LIMIT_VAL=${GPU_CHECK_LIMIT_VAL_BATCHES:-}
BUDGET=${GPU_CHECK_BUDGET_S:-330}
STEP_TIMEOUT=${GPU_CHECK_STEP_TIMEOUT_S:-180}
BENCH=${GPU_CHECK_BENCH:-benchmarks/fashion-mnist.yaml}
if [[ -n ${GPU_CHECK_PYTHON:-} ]]; then
  PY=$GPU_CHECK_PYTHON
elif [[ -x .venv/bin/python ]]; then
  PY=.venv/bin/python
else
  PY=python3
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"  # hashbench from this checkout if not installed
export PYTHONUNBUFFERED=1

mkdir -p "$OUT/fits" "$OUT/work"
OUT=$(cd "$OUT" && pwd)
WORK=$OUT/work
LOG=$OUT/gpu_check.log
STEPS=$OUT/steps.tsv
: >"$LOG"
: >"$STEPS"
rm -f "$OUT"/fits/*.json
HELPER=scripts/gpu_check_fit.py
limits=()
[[ -n $LIMIT_TRAIN ]] && limits+=(--limit_train_batches "$LIMIT_TRAIN")
[[ -n $LIMIT_VAL ]] && limits+=(--limit_val_batches "$LIMIT_VAL")
cli_limits=()
[[ -n $LIMIT_TRAIN ]] && cli_limits+=(--trainer.limit_train_batches "$LIMIT_TRAIN")
[[ -n $LIMIT_VAL ]] && cli_limits+=(--trainer.limit_val_batches "$LIMIT_VAL")

T0=$SECONDS
log() { echo "$*" | tee -a "$LOG"; }
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$STEPS"; }

# step NAME NOTE_CMD -- COMMAND...: run COMMAND (output appended to the log) under the budget and
# the step timeout; record pass/fail/skipped, its wall time and a note (NOTE_CMD's output, given
# the step's own output file as $1; "-" for none).
# group of a step name: env, pytest, cli, fits, paper (GPU_CHECK_STEPS)
group_of() {
  case $1 in
    env) echo env ;; pytest-*) echo pytest ;; cli-*) echo cli ;; fit/*) echo fits ;; *) echo paper ;;
  esac
}
# wanted GROUP: whether GPU_CHECK_STEPS asks for that step group (all when unset)
wanted() { [[ -z ${GPU_CHECK_STEPS:-} || ",$GPU_CHECK_STEPS," == *",$1,"* ]]; }
step() {
  local name=$1 note_cmd=$2
  shift 3
  wanted "$(group_of "$name")" || return 0  # not asked for: not run, not recorded
  local elapsed=$((SECONDS - T0))
  if ((elapsed >= BUDGET)); then
    log "== $name: skipped (time budget of ${BUDGET}s spent)"
    record "$name" skipped 0 "time budget spent before it started"
    return 0
  fi
  local left=$((BUDGET - elapsed + 45)) limit=$STEP_TIMEOUT
  ((left < limit)) && limit=$left
  log "== $name ($(date -u +%H:%M:%S), ${elapsed}s in, timeout ${limit}s): $*"
  local part rc=0 start=$SECONDS
  part=$(mktemp "$WORK/.step.XXXXXX")
  timeout --kill-after=15 "$limit" "$@" >"$part" 2>&1 || rc=$?
  cat "$part" >>"$LOG"
  local wall=$((SECONDS - start)) status=pass note=""
  if [[ $note_cmd != - ]]; then note=$($note_cmd "$part" 2>/dev/null | tr '\t\n' '  ' | cut -c1-200) || true; fi
  if ((rc == 124 || rc == 137)); then
    status=fail
    note="timed out after ${limit}s; $note"
  elif ((rc != 0)); then
    status=fail
    if [[ -z ${note// /} ]]; then
      note=$(grep -E '^[A-Za-z_.]*(Error|Exception)\b|error:' "$part" | tail -1 | cut -c1-200) || true
    fi
    note="exit $rc; $note"
  elif [[ $note == skipped:* ]]; then
    status=skipped
  fi
  rm -f "$part"
  log "== $name: $status (${wall}s) $note"
  record "$name" "$status" "$wall" "$note"
}

# notes read from a step's output ($1)
pytest_note() {
  local line
  line=$(grep -E '(passed|failed|skipped|deselected|error|no tests ran)( in [0-9.]+s)' "$1" | tail -1 | tr -d '=' | tr -s ' ')
  if [[ $line == *skipped* && $line != *passed* && $line != *failed* && $line != *error* ]]; then
    echo "skipped: $line; $(grep -m1 '^SKIPPED' "$1" | cut -c1-160)"
  else
    echo "$line"
  fi
}
cli_note() {
  grep -oE '^best checkpoint \(val/mAP=[0-9.]+\)' "$1" | head -1
  grep -E '^test/mAP@all ' "$1" | tr -s ' ' | head -1
}
fit_note() { grep -E '^gpu_check fit' "$1" | sed 's/^gpu_check fit [^:]*: //' | tail -1; }
dry_note() { grep -E 'cells - |to compute: ' "$1" | sed 's/ (from the recorded.*//' | tr -s ' ' | head -2; }
bench_note() {
  local n
  n=$(find "$WORK/paper-results/raw" -type f -name '*.json*' 2>/dev/null | wc -l)
  echo "$n record(s);"
  grep -E '^ +[A-Za-z0-9_]+/[0-9]+bits/seed[0-9]+: ' "$1" | tr -s ' '
}

# the commit as a bench record gives it (hashbench.bench.records.git_commit: results/ not counted)
commit=$("$PY" - 2>/dev/null <<'PY'
from hashbench.bench.records import git_commit

c = git_commit()
print(c["commit"][:7] + (" (modified)" if c["dirty"] else ""))
PY
) || commit='?'
log "hashbench GPU check: accelerator $ACC, $EPOCHS epoch(s) per method, paper $PAPER_EPOCHS," \
  "train batches ${LIMIT_TRAIN:-all}, val batches ${LIMIT_VAL:-all}, budget ${BUDGET}s;" \
  "python $PY; commit $commit"

# 1. environment
step env - -- "$PY" "$HELPER" env "$OUT/env.json"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi >>"$LOG" 2>&1 || true
fi

# 2. tests marked gpu
step pytest-gpu pytest_note -- "$PY" -m pytest -m gpu -q -rs -p no:cacheprovider tests

# 3. the CLI path: hashbench fit ... --test_after_fit true
step cli-fit cli_note -- "$PY" -m hashbench.cli fit --config configs/methods/dsh.yaml \
  --config configs/data/fashion_mnist.yaml --config configs/trainer/default.yaml \
  --trainer.max_epochs "$EPOCHS" --trainer.min_epochs 1 --trainer.accelerator "$ACC" \
  --trainer.devices 1 --trainer.enable_progress_bar false --trainer.enable_model_summary false \
  --trainer.default_root_dir "$WORK/runs/cli" "${cli_limits[@]}" --test_after_fit true

# 4. every deep method, default profile
methods=()
if [[ -n ${GPU_CHECK_METHODS:-} ]]; then
  IFS=, read -r -a methods <<<"$GPU_CHECK_METHODS"
elif wanted fits; then
  mapfile -t methods < <("$PY" "$HELPER" methods --bench "$BENCH" --profile default 2>>"$LOG")
  ((${#methods[@]})) || record methods fail 0 "no deep methods listed (see the log)"
fi
for m in "${methods[@]}"; do
  step "fit/$m" fit_note -- "$PY" "$HELPER" fit --bench "$BENCH" --profile default \
    --method "$m" --epochs "$EPOCHS" --accelerator "$ACC" "${limits[@]}" \
    --root_dir "$WORK/runs/default" --out "$OUT/fits/default-$m.json"
done

# 5. paper profile
step paper-dry dry_note -- "$PY" -m hashbench.cli bench --config "$BENCH" --profile paper \
  --dry_run true --progress false
paper_methods=()
if [[ -n ${GPU_CHECK_PAPER_METHODS:-} ]]; then
  IFS=, read -r -a paper_methods <<<"$GPU_CHECK_PAPER_METHODS"
elif wanted paper; then
  mapfile -t paper_methods < <("$PY" "$HELPER" methods --bench "$BENCH" --profile paper \
    --with_method_args 2>>"$LOG")
fi
for m in "${paper_methods[@]}"; do
  step "paper/$m" fit_note -- "$PY" "$HELPER" fit --bench "$BENCH" --profile paper \
    --method "$m" --epochs "$PAPER_EPOCHS" --accelerator "$ACC" "${limits[@]}" \
    --root_dir "$WORK/runs/paper" --out "$OUT/fits/paper-$m.json"
done
if ((${#paper_methods[@]})) && wanted paper; then
  only=$(IFS=,; echo "${paper_methods[*]}")
  smoke_yaml=$WORK/paper-smoke.yaml
  if "$PY" "$HELPER" bench-yaml --bench "$BENCH" --profile paper --epochs "$PAPER_EPOCHS" \
    --accelerator "$ACC" "${limits[@]}" --out "$smoke_yaml" >>"$LOG" 2>&1; then
    rm -rf "$WORK/paper-results"
    step paper-bench bench_note -- "$PY" -m hashbench.cli bench --config "$smoke_yaml" \
      --profile paper --only "$only" --only 32 --only seed=0 --results "$WORK/paper-results" \
      --runs_dir "$WORK/runs/paper-bench" --progress false --leaderboard false
  else
    record paper-bench fail 0 "could not write the cut grid (see the log)"
  fi
fi

# 6. summary (also printed)
if ! "$PY" "$HELPER" summary "$OUT" 2>>"$LOG" | tee -a "$LOG"; then
  record summary fail 0 "summary.md not written (see the log)"
fi
failed=$(awk -F'\t' '$2 == "fail"' "$STEPS" | wc -l)
log "hashbench GPU check done in $((SECONDS - T0))s: $(awk -F'\t' '{print $2}' "$STEPS" | sort | uniq -c | tr -s ' ' | tr '\n' ';')"
log "summary: $OUT/summary.md; log: $LOG"
((failed == 0))
