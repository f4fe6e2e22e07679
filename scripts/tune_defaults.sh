#!/usr/bin/env bash
# Re-choose on held-out validation the defaults that were once chosen on test numbers
# (docs/protocol.md, "Defaults chosen on validation"). Resumable: recorded candidates are skipped.
#   bash scripts/tune_defaults.sh [method ...]    (default: drsch dhih knngan pcaegan)
set -euo pipefail
cd "$(dirname "$0")/.."
HB=${HB:-.venv/bin/hashbench}
DATA=configs/data/fashion_mnist.yaml
common=(--data "$DATA" --bits 32 --seeds 0 --progress false)
run() {  # method max_epochs grid...
  local m=$1 cap=$2; shift 2
  local grid=()
  for g in "$@"; do grid+=(--grid "$g"); done
  "$HB" tune --config "configs/methods/$m.yaml" "${common[@]}" --max_epochs "$cap" "${grid[@]}" \
    --report "docs/tune/fashion-mnist/$m" --out "configs/tuned/fashion-mnist/$m.yaml"
}
for m in "${@:-drsch dhih knngan pcaegan}"; do
  for one in $m; do
    case $one in
      drsch) run drsch 15 "margin=[2.0, 4.0, null]" ;;
      dhih) run dhih 15 "scale=16.0,32.0" "margin=0.1,0.25,0.4" ;;
      knngan) run knngan 8 "lambda1=0.1,0.3,0.6" "lambda2=0.03,0.1,0.3" ;;
      pcaegan) run pcaegan 6 "gamma=10.0,20.0" "beta=0.05,0.1" ;;
      *) echo "unknown method $one" >&2; exit 2 ;;
    esac
  done
done
