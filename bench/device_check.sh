#!/usr/bin/env bash
# What a user runs, on an accelerator: the README's first training and its evaluation, a vmapped
# sweep (2 seeds x 2 learning rates, vmapped off the CPU) beside one of its runs alone, float64
# fictitious play and occupation-measure inclusion. Run from the repository root:
#   OUT=dir PYTHONPATH=src bash bench/device_check.sh   (PYTHON=.venv/bin/python: a venv's interpreter)
# and compare OUT/*/metrics.jsonl with the same script run on the CPU (JAX_PLATFORMS=cpu).
# Each run's metrics.jsonl, summary.json and provenance.json are copied to OUT/<name>/; the
# runs themselves go to a temporary directory, removed at the end. A failing command stops it.
set -euo pipefail
if [ $# -gt 0 ]; then
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
    [ "$1" = "--help" ] || [ "$1" = "-h" ] || { echo "device_check.sh: no arguments (set OUT), got $*" >&2; exit 2; }
    exit 0
fi
if [ -z "${OUT:-}" ]; then
    echo "device_check.sh: set OUT to the directory the runs' files are copied to (OUT=dir bash $0)" >&2
    exit 2
fi
export XLA_PYTHON_CLIENT_PREALLOCATE=false
M="${PYTHON:-python3} -m mfax.run.cli"
R=$(mktemp -d)
trap 'rm -rf "$R"' EXIT
mkdir -p "$OUT"
date +%T
run() {  # one mfax command, its lines but the plots', stopping the check if it fails
    local log
    log=$($M "$@" 2>&1) || { echo "$log" | tail -5; echo "device_check.sh: failed: mfax $*" >&2; return 1; }
    echo "$log" | grep -v "^plots" || true
}
run train --game beach_bar --algo rspg --iterations 40 --lr 1e-2 --noise exact --out "$R"/quick --no-progress
$M eval "$R"/quick 2>&1 | tail -12
run train --game linear_quadratic --algo rspg --iterations 20 --eval-every 10 --seeds 2 --lr 1e-2,3e-3 --out "$R"/sweep --no-progress
run train --game linear_quadratic --algo rspg --iterations 20 --eval-every 10 --seed 1 --lr 3e-3 --out "$R"/single --no-progress
run train --game sis --algo fp --iterations 30 --x64 --out "$R"/fp64 --no-progress
run train --game mfglib.crowd_motion --algo omi --iterations 5 --x64 --out "$R"/omi64 --no-progress
for name in quick sweep single fp64 omi64; do
    mkdir -p "$OUT/$name"
    cp "$R/$name"/metrics.jsonl "$R/$name"/summary.json "$R/$name"/provenance.json "$OUT/$name"/
done
date +%T
