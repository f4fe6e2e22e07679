#!/usr/bin/env bash
# The committed Fashion-MNIST sweep (default profile), in batches: the settled, cheap cells first,
# so a sweep spread over several sittings fills whole comparisons early. Resumable: each
# `hashbench bench` call skips recorded, current cells (docs/bench.md). `make bench` runs the same
# cells in one go; this script only chooses the order.
#   bash scripts/sweep_fashion_mnist.sh [batch ...]    (default: every batch, in this order)
#   batches: shallow plain0 plain12 ws0 ws12 gan0 gan12 knn0 knn12
#   extra arguments for every call: HB_ARGS="--shard 1/2" bash scripts/sweep_fashion_mnist.sh
set -euo pipefail
cd "$(dirname "$0")/.."
HB=${HB:-.venv/bin/hashbench}
read -r -a extra <<< "${HB_ARGS:-}"
common=(--config benchmarks/fashion-mnist.yaml --profile default --progress false "${extra[@]}")
shallow=itq,itq_cca,ksh,lsh,pcah,sdh,sh,sph
plain=dhih,dhn,dpsh,drsch,dsh
ws=wsdh,wsdrsch,ws_ksh
gan=pcaegan,pcwgan,dch   # dch: defined in methods/pcaegan.py (its fingerprint follows it)
knn=knngan,knngan_nogan
run() { echo "== $* ($(date -u +%H:%M:%S))"; "$HB" bench "${common[@]}" "$@" || echo "(exit $?)"; }
for batch in "${@:-shallow plain0 plain12 ws0 ws12 gan0 gan12 knn0 knn12}"; do
  for b in $batch; do
    case $b in
      shallow) run --only "$shallow" ;;
      plain0) run --only "$plain,seed=0" ;;
      plain12) run --only "$plain,seed=1,seed=2" ;;
      ws0) run --only "$ws,seed=0" ;;
      ws12) run --only "$ws,seed=1,seed=2" ;;
      gan0) run --only "$gan,seed=0" ;;
      gan12) run --only "$gan,seed=1,seed=2" ;;
      knn0) run --only "$knn,seed=0" ;;
      knn12) run --only "$knn,seed=1,seed=2" ;;
      *) echo "unknown batch $b" >&2; exit 2 ;;
    esac
  done
done
