#!/bin/bash
# run.sh [PATTERN] — run every tests/e2e/t_*.sh (or those whose name contains
# PATTERN) one after the other; print PASS/FAIL and the time of each; exit
# non-zero if any failed. A failing test's output is printed in full; all
# outputs are kept in $E2E_LOGDIR (default build/e2e/logs).
#
# Each test enforces its own time limit (lib.sh re-executes it under timeout).
# After each test, any mount left behind under the test's temp base is removed.
set -u
cd "$(dirname "$0")/../.." || exit 1
export E2E_LOGDIR=${E2E_LOGDIR:-build/e2e/logs}
mkdir -p "$E2E_LOGDIR"
export E2E_TMPBASE
E2E_TMPBASE=$(mktemp -d /tmp/mk-e2e.XXXXXX) || exit 1
echo "e2e: daemon ${MK:-build/minikafka}, temp $E2E_TMPBASE, logs $E2E_LOGDIR"

pass=0 failed=()
ms() { echo $(($(date +%s%N) / 1000000)); }
t0=$(ms)
for t in tests/e2e/t_*.sh; do
    name=$(basename "$t" .sh)
    [[ -n ${1:-} && $name != *"$1"* ]] && continue
    s=$(ms)
    bash "$t" >"$E2E_LOGDIR/$name.log" 2>&1
    rc=$?
    el=$(($(ms) - s)); secs=$((el / 1000)).$((el % 1000 / 100))
    # Safety net: nothing the test mounted may survive it.
    grep -o " $E2E_TMPBASE/[^ ]*" /proc/self/mounts | while read -r m; do
        echo "  (leftover mount $m removed)"
        fusermount3 -uz "$m" 2>/dev/null || umount -l "$m"
    done
    if [[ $rc == 0 ]]; then
        printf 'PASS  %-22s %6.1fs\n' "$name" "$secs"
        pass=$((pass + 1))
    else
        printf 'FAIL  %-22s %6.1fs  (exit %d)\n' "$name" "$secs" "$rc"
        sed 's/^/    | /' "$E2E_LOGDIR/$name.log" | tail -n 60
        failed+=("$name")
    fi
done
total=$((($(ms) - t0) / 1000))
rmdir "$E2E_TMPBASE" 2>/dev/null
printf 'e2e: %d passed, %d failed in %ds%s\n' "$pass" "${#failed[@]}" "$total" \
    "${failed[*]:+ (failed: ${failed[*]})}"
[[ ${#failed[@]} == 0 ]]
