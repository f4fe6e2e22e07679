#!/usr/bin/env bash
# Re-choose on held-out validation the defaults that were once chosen on test numbers
# (docs/protocol.md, "Defaults chosen on validation"). Resumable: recorded candidates are skipped.
#   bash scripts/tune_defaults.sh [method ...]    (default: drsch dhih knngan knngan_source pcaegan wsdh)
set -euo pipefail
cd "$(dirname "$0")/.."
HB=${HB:-.venv/bin/hashbench}
DATA=configs/data/fashion_mnist.yaml
common=(--data "$DATA" --bits 32 --seeds 0 --progress false)
run() {  # method max_epochs grid...  (NAME= a report name, CONFIG= the starting config)
  local m=$1 cap=$2; shift 2
  local name=${NAME:-$m} config=${CONFIG:-configs/methods/$m.yaml}
  local grid=()
  for g in "$@"; do grid+=(--grid "$g"); done
  "$HB" tune --config "$config" "${common[@]}" --max_epochs "$cap" "${grid[@]}" \
    --report "docs/tune/fashion-mnist/$name" --out "configs/tuned/fashion-mnist/$name.yaml"
}
for m in "${@:-drsch dhih knngan knngan_source pcaegan wsdh}"; do
  for one in $m; do
    case $one in
      drsch) run drsch 15 "margin=[2.0, 4.0, null]" ;;
      dhih) run dhih 15 "scale=16.0,32.0" "margin=0.1,0.25,0.4" ;;
      knngan) run knngan 8 "lambda1=0.1,0.3,0.6" "lambda2=0.03,0.1,0.3" ;;
      # second stage, from the lambdas chosen above: L_N per pair or summed (eq. 9 literally),
      # and the features M is built from (ImageNet features as the paper, or the pixels)
      knngan_source) NAME=knngan_source CONFIG=configs/tuned/fashion-mnist/knngan.yaml \
        run knngan 8 "pair_reduction=mean,sum" "knn_features=efficientnet_lite0,pixels" ;;
      # third stage: the first two preferred the smallest weights and `sum` (which scales the
      # other terms down by B(B-1)); smaller weights with L_N per pair, M from ImageNet features
      knngan_small) NAME=knngan_small CONFIG=configs/tuned/fashion-mnist/knngan_source.yaml \
        run knngan 8 "pair_reduction=mean" "lambda1=0.003,0.01,0.03" "lambda2=0.001,0.01" ;;
      pcaegan) run pcaegan 6 "gamma=10.0,20.0" "beta=0.05,0.1" ;;
      # WSDH stage 1 (tag pretraining): its length and the tag cleaning; fine-tuning as DSH's
      wsdh) run wsdh 8 "stage1_epochs=3,6,10" "clean_threshold=[0.2, null]" ;;
      *) echo "unknown method $one" >&2; exit 2 ;;
    esac
  done
done
