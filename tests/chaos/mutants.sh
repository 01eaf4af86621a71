#!/bin/bash
# mutants.sh — proves the chaos run bites: each deliberate bug of
# tests/chaos/mutants.py is applied to a copy of the source tree, built, and
# run against the chaos driver (tests/chaos/run.sh) with the faults that
# expose it, seed after seed, until the checker reports an anomaly (the
# mutant is killed) or the seeds run out (it survived: this script fails).
#
#   tests/chaos/mutants.sh [-n NODES] [-d SECS] [-S SEEDS] [NAME...]
#
#   -n NODES  3 or 5 (default 3)      -d SECS  fault seconds per run (default 30)
#   -S SEEDS  seeds to try per mutant: its known seed (mutants.py seed NAME)
#             first, then 1..SEEDS (default 3)
# Prints one line per mutant: killed at seed S (the checks that failed) or
# SURVIVED; exits 1 if any survived or could not be built.
set -uo pipefail
CHAOS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$CHAOS_DIR/../.." && pwd)
NODES=3 SECS=30 SEEDS=3
while getopts "n:d:S:" o; do
    case $o in
    n) NODES=$OPTARG ;;
    d) SECS=$OPTARG ;;
    S) SEEDS=$OPTARG ;;
    *) echo "usage: $0 [-n NODES] [-d SECS] [-S SEEDS] [NAME...]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
PY=${PYTHON:-python3}
names=("$@")
((${#names[@]})) || mapfile -t names < <($PY "$CHAOS_DIR/mutants.py" list | cut -f1)
WORK=$ROOT/build/chaos/mutants
mkdir -p "$WORK"
make -C "$ROOT" -s build/chaos/cwriter build/chaos/creader >/dev/null || { echo "mutants: cannot build the chaos tools" >&2; exit 1; }
bad=0
t_all=$SECONDS
for m in "${names[@]}"; do
    faults=$($PY "$CHAOS_DIR/mutants.py" faults "$m") || { bad=1; continue; }
    src=$WORK/$m/src
    rm -rf "$WORK/$m"
    mkdir -p "$src"
    # A copy of what builds the daemon (not build/), then the edits.
    (cd "$ROOT" && cp -r Makefile broker fs raft "$src"/ && mkdir -p "$src/tests" && cp tests/install-deps.sh "$src/tests/") ||
        { echo "mutant $m: cannot copy the tree"; bad=1; continue; }
    if ! $PY "$CHAOS_DIR/mutants.py" apply "$m" "$src"; then
        echo "mutant $m: NOT APPLIED (see above)"
        bad=1
        continue
    fi
    if ! make -C "$src" -s -j2 build/minikafka >"$WORK/$m/build.log" 2>&1; then
        echo "mutant $m: DOES NOT BUILD (see $WORK/$m/build.log)"
        bad=1
        continue
    fi
    killed=""
    t0=$SECONDS
    # The seed that caught it last time first, then 1..SEEDS: timing varies
    # from run to run, so a known seed is likely, not certain, to catch it.
    known=$($PY "$CHAOS_DIR/mutants.py" seed "$m") || { bad=1; continue; }
    tries=("$known")
    for ((seed = 1; seed <= SEEDS; seed++)); do ((seed == known)) || tries+=("$seed"); done
    for seed in "${tries[@]}"; do
        out=$WORK/$m/run-$seed
        MK=$src/build/minikafka bash "$CHAOS_DIR/run.sh" -n "$NODES" -s "$seed" -d "$SECS" \
            -f "$faults" -o "$out" >"$WORK/$m/run-$seed.log" 2>&1
        rc=$?
        if ((rc != 0)) && [[ -f $out/check.txt ]]; then
            # Killed only by an anomaly the checks name, not by a broken run.
            failed=$(grep -E "^check [a-z-]+: [1-9][0-9]* violations" "$out/check.txt" | cut -d: -f1 | sed 's/^check //' | tr '\n' ',' | sed 's/,$//')
            # Driver checks that a lost or diverged log fails (not the
            # harness's own: copies, stopping writers, sanitizer).
            drv=$(awk '/^driver checks:/ { on = 1; next } on && /^  / { if ($2 != "pass" && ($1 == "converged" || $1 == "recovered" || $1 == "topics-agree")) print $1; next } { on = 0 }' \
                "$out/summary.txt" 2>/dev/null | tr '\n' ',' | sed 's/,$//')
            if [[ -n $failed || -n $drv ]]; then
                killed="seed $seed (${failed:+checks: $failed}${failed:+${drv:+; }}${drv:+driver: $drv})"
                break
            fi
        fi
    done
    if [[ -n $killed ]]; then
        echo "mutant $m: killed at $killed after $((SECONDS - t0)) s"
    else
        echo "mutant $m: SURVIVED seeds ${tries[*]} of $SECS s ($faults): the chaos run does not catch it"
        bad=1
    fi
done
echo "mutants: $((SECONDS - t_all)) s in all"
exit $bad
