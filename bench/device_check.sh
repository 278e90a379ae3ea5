#!/usr/bin/env bash
# What a user runs, on an accelerator: the README's first training and its evaluation, a vmapped
# sweep (2 seeds x 2 learning rates, vmapped off the CPU) beside one of its runs alone, float64
# fictitious play and occupation-measure inclusion. Run from the repository root:
#   OUT=dir PYTHONPATH=src bash bench/device_check.sh   (PYTHON=.venv/bin/python: a venv's interpreter)
# and compare OUT/*/metrics.jsonl with the same script run on the CPU (JAX_PLATFORMS=cpu).
export XLA_PYTHON_CLIENT_PREALLOCATE=false
M="${PYTHON:-python3} -m mfax.run.cli"  # PYTHON: another interpreter (a venv's)
R=$(mktemp -d); mkdir -p "$OUT"
date +%T
$M train --game beach_bar --algo rspg --iterations 40 --lr 1e-2 --noise exact --out "$R"/quick --no-progress 2>&1 | grep -v "^plots"
$M eval "$R"/quick 2>&1 | tail -12
$M train --game linear_quadratic --algo rspg --iterations 20 --eval-every 10 --seeds 2 --lr 1e-2,3e-3 --out "$R"/sweep --no-progress 2>&1 | grep -v "^plots"
$M train --game linear_quadratic --algo rspg --iterations 20 --eval-every 10 --seed 1 --lr 3e-3 --out "$R"/single --no-progress 2>&1 | grep -v "^plots"
$M train --game sis --algo fp --iterations 30 --x64 --out "$R"/fp64 --no-progress 2>&1 | grep -v "^plots"
$M train --game mfglib.crowd_motion --algo omi --iterations 5 --x64 --out "$R"/omi64 --no-progress 2>&1 | grep -v "^plots"
for d in "$R"/*/; do n=$(basename $d); mkdir -p "$OUT"/$n; cp $d/metrics.jsonl $d/summary.json $d/provenance.json "$OUT"/$n/ 2>/dev/null; done
date +%T
