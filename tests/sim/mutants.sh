#!/bin/sh
# tests/sim/mutants.sh -- prove the simulator's checker bites.
#
# For each tests/sim/mutants/NAME.sed (a classic Raft bug written as a sed
# edit of a line tagged "MUTANT:..." in raft/*.c), copy raft/ into
# OUTDIR/NAME/raft, apply the edit to the copy (never to the real files),
# build the simulator against the copy and run the CI seed budget.  Every
# mutant must make the simulator fail; the unmodified copy must pass.
# Prints, per mutant, the first failing seed, the time it took and why.
#
# usage: sh tests/sim/mutants.sh [OUTDIR]     (env: SEEDS, JOBS, CC)
set -u
out=${1:-build/mutants}
seeds=${SEEDS:-6000}
jobs=${JOBS:-2}
cc=${CC:-gcc}
flags="-std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -g -O2"
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cd "$top" || exit 2

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

build() { # dir
        $cc $flags -I"$1" -o "$1/sim" tests/sim/sim.c "$1"/raft/*.c 2> "$1/build.log"
}

fail=0
mkdir -p "$out"

# Baseline: the unmodified core must pass the same budget.
base="$out/baseline"
rm -rf "$base" && mkdir -p "$base/raft" && cp raft/*.c raft/*.h "$base/raft/"
if ! build "$base"; then
        echo "mutants: baseline does not build"; cat "$base/build.log"; exit 1
fi
t0=$(now)
if "$base/sim" --seeds "$seeds" --jobs "$jobs" -q > "$base/log" 2>&1; then
        echo "mutants: baseline (unmodified core) passes $seeds seeds in $(secs "$t0" "$(now)") s"
else
        echo "mutants: baseline FAILS:"; grep '^sim: FAILED' "$base/log" | head -3; fail=1
fi

for m in tests/sim/mutants/*.sed; do
        name=$(basename "$m" .sed)
        what=$(sed -n 's/^# //p' "$m" | head -1)
        dir="$out/$name"
        rm -rf "$dir" && mkdir -p "$dir/raft" && cp raft/*.c raft/*.h "$dir/raft/"
        for f in "$dir"/raft/*.c; do sed -i -f "$m" "$f"; done
        if diff -r raft "$dir/raft" > /dev/null; then
                printf '%-20s NOT APPLIED (the tagged line changed?)\n' "$name"; fail=1; continue
        fi
        if ! build "$dir"; then
                printf '%-20s DOES NOT BUILD\n' "$name"; cat "$dir/build.log"; fail=1; continue
        fi
        t0=$(now)
        "$dir/sim" --seeds "$seeds" --jobs "$jobs" -q > "$dir/log" 2>&1
        rc=$?
        t=$(secs "$t0" "$(now)")
        if [ $rc -eq 1 ] && grep -q '^sim: FAILED at seed' "$dir/log"; then
                seed=$(sed -n 's/^sim: FAILED at seed \([0-9]*\):.*/\1/p' "$dir/log")
                why=$(sed -n 's/^sim: FAILED at seed [0-9]*: //p' "$dir/log")
                printf '%-20s caught at seed %-5s in %5s s: %s\n' "$name" "$seed" "$t" "$why"
                printf '%-20s   (%s)\n' "" "$what"
        else
                printf '%-20s SURVIVED %s seeds (exit %d): %s\n' "$name" "$seeds" $rc "$what"
                fail=1
        fi
done
if [ $fail -ne 0 ]; then
        echo "mutants: FAILED (logs and traces in $out/)"
        exit 1
fi
echo "mutants: every mutant caught"
