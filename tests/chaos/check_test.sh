#!/usr/bin/env bash
# check_test.sh — proves that check.py bites, and that cwriter/creader work.
#
#   bash tests/chaos/check_test.sh        (or: make chaos-check-test)
#
# 1. Synthetic runs (synth.py): a clean history must pass every check (exit
#    0); each planted anomaly must make exactly the checks it implies report
#    violations, every other check 0, exit 1; garbage logs and a missing
#    directory must exit 2 naming the file and line.
# 2. The tools for real, on plain files in a temp dir (a plain file stands in
#    for a mount): two cwriters (-b 1 and -b 5 -s 64) append to one file for
#    2 s while a creader follows it; check.py on that run must pass. Plus the
#    tools' own edges: failed opens, SIGTERM, -n, usage errors, a reader that
#    sees a partial line, a shrink, a file that appears late.
# Prints PASS/FAIL per case; exits 1 if any failed. Needs python3 and the
# binaries in $CHAOS_BIN (default build/chaos; built with make if missing).
# The temp dir is removed unless a case failed or CHAOS_KEEP=1.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${CHAOS_BIN:-$root/build/chaos}
py=${PYTHON:-python3}
checks="identical wellformed known duplicate lost failed-present order read-consistent read-monotonic unseen"

if [ ! -x "$bin/cwriter" ] || [ ! -x "$bin/creader" ]; then
    make -s -C "$root" "$bin/cwriter" "$bin/creader" >/dev/null || {
        echo "check_test: cannot build $bin/cwriter and $bin/creader"; exit 1; }
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/chaos-check-test.XXXXXX")
pids=()
failures=0
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    if [ "$failures" -eq 0 ] && [ "${CHAOS_KEEP:-0}" != 1 ]; then rm -rf "$tmp"
    else echo "check_test: kept $tmp"; fi
}
trap cleanup EXIT

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; failures=$((failures + 1)); }

# checker CASE DIR WANT_RC "FAILING CHECKS" [check.py options...]
# Runs check.py on DIR; the named checks must report >= 1 violation, all
# others 0, the exit status must be WANT_RC and the last line must count them.
checker() {
    local name=$1 dir=$2 want_rc=$3 want=$4 out rc c n why=""
    shift 4
    out=$tmp/$name.out
    timeout 60 "$py" "$here/check.py" "$dir" "$@" >"$out" 2>&1
    rc=$?
    [ "$rc" -eq "$want_rc" ] || why="exit $rc, want $want_rc;"
    local nfail=0
    for c in $checks; do
        n=$(sed -n "s/^check $c: \([0-9][0-9]*\) violations\$/\1/p" "$out")
        if [ -z "$n" ]; then why="$why no line for $c;"; continue; fi
        case " $want " in
        *" $c "*) [ "$n" -ge 1 ] || why="$why $c: 0 violations, want >= 1;"; nfail=$((nfail + 1)) ;;
        *) [ "$n" -eq 0 ] || why="$why $c: $n violations, want 0;" ;;
        esac
    done
    [ "$(tail -n 1 "$out")" = "$((10 - nfail)) passed, $nfail failed" ] ||
        why="$why last line '$(tail -n 1 "$out")';"
    if [ -z "$why" ]; then pass "$name"; else fail "$name" "$why (output: $out)"; fi
}

# bad_input CASE DIR PATTERN: check.py must exit 2 with PATTERN on stderr.
bad_input() {
    local name=$1 dir=$2 pattern=$3 rc
    timeout 60 "$py" "$here/check.py" "$dir" >"$tmp/$name.out" 2>&1
    rc=$?
    if [ "$rc" -eq 2 ] && grep -q -- "$pattern" "$tmp/$name.out"; then pass "$name"
    else fail "$name" "exit $rc, want 2 with '$pattern' (output: $tmp/$name.out)"; fi
}

synth() { "$py" "$here/synth.py" "$tmp/$1" --anomaly "$2" || fail "$1" "synth.py failed"; }

# ---- 1. synthetic runs -------------------------------------------------------
synth clean none
checker clean "$tmp/clean" 0 ""
checker clean-more-definite "$tmp/clean" 1 "failed-present" --definite-errnos 22,110
for case in "lost:lost unseen" "duplicate:duplicate" "failed:failed-present" \
    "identical:identical" "torn:wellformed" "unknown:known" "reorder:order" \
    "realtime:order" "read-differs:read-consistent" "shrink:read-monotonic" \
    "skip:read-monotonic" "unseen:unseen"; do
    anomaly=${case%%:*}
    synth "$anomaly" "$anomaly"
    checker "$anomaly" "$tmp/$anomaly" 1 "${case#*:}"
done
# realtime broke only the order across writers: the violation must say so.
grep -q '^  - t/0: write W2 S[0-9+]* .* before W1 ' "$tmp/realtime.out" ||
    fail realtime-across "no cross-writer real-time violation in $tmp/realtime.out"

synth badlog badlog
bad_input badlog "$tmp/badlog" "writers/w1.log:5:"
bad_input missing-dir "$tmp/no-such-run" "no-such-run: not a directory"
synth badreader none
printf 'R 1 0 99 W1 S0\n' >>"$tmp/badreader/readers/r1.log"
bad_input badreader "$tmp/badreader" "readers/r1.log:[0-9]*: len 99"
synth badmap none
echo "7 t" >>"$tmp/badmap/writers-map.txt"
bad_input badmap "$tmp/badmap" "writers-map.txt:4:"

# ---- 2. the tools for real -------------------------------------------------------
real=$tmp/real
mkdir -p "$real/writers" "$real/readers" "$real/final/n1/t"
part=$tmp/real.part
: >"$part"
"$bin/creader" -r 1 -f "$part" -l "$real/readers/r1.log" -d 40 -p 5 &
rpid=$!; pids+=("$rpid")
"$bin/cwriter" -w 1 -f "$part" -l "$real/writers/w1.log" -b 1 -d 2 -g 50 &
w1=$!; pids+=("$w1")
"$bin/cwriter" -w 2 -f "$part" -l "$real/writers/w2.log" -b 5 -s 64 -d 2 -g 50 &
w2=$!; pids+=("$w2")
wait "$w1"; rc1=$?
wait "$w2"; rc2=$?
# Let the reader catch up with the file (its last R ends at the size), then stop it.
for _ in $(seq 200); do
    size=$(stat -c %s "$part")
    end=$(awk '$1 == "R" { e = $3 + $4 } END { print e + 0 }' "$real/readers/r1.log")
    [ "$end" -eq "$size" ] && break
    sleep 0.05
done
kill -TERM "$rpid"; wait "$rpid"; rcr=$?
cp "$part" "$real/final/n1/t/0"
printf '1 t 0 n1\n2 t 0 n1\n' >"$real/writers-map.txt"
printf '1 t 0 n1\n' >"$real/readers-map.txt"
if [ "$rc1$rc2$rcr" = 000 ]; then pass "real-tools-exit"
else fail "real-tools-exit" "cwriter $rc1, cwriter $rc2, creader $rcr (want 0 0 0)"; fi
checker real "$real" 0 ""
grep -q '^acknowledged=[1-9]' "$tmp/real.out" || fail real-acked "no value acknowledged"
echo "     ($(tail -n 2 "$tmp/real.out" | head -n 1), $(stat -c %s "$part") bytes)"

# cwriter: -n, -b, -s: exactly 7 writes of 3 32-byte records, 7 I and 7 C ok lines.
f=$tmp/n.part; : >"$f"
if "$bin/cwriter" -w 5 -f "$f" -l "$tmp/n.log" -n 7 -b 3 -s 32 &&
    [ "$(stat -c %s "$f")" -eq $((7 * 3 * 32)) ] &&
    [ "$(grep -c '^I ' "$tmp/n.log")" -eq 7 ] && [ "$(grep -c ' ok 0$' "$tmp/n.log")" -eq 7 ] &&
    head -n 1 "$tmp/n.log" | grep -qx "H 5 $f 3 32" &&
    head -n 1 "$f" | grep -qx 'W5 S0 K[0-9a-f]\{4\} x*'; then pass "cwriter-n"
else fail "cwriter-n" "see $tmp/n.log and $f"; fi

# cwriter: a file that cannot be opened: one E line for the whole streak, exit 0.
"$bin/cwriter" -w 6 -f "$tmp/nodir/x" -l "$tmp/noopen.log" -d 0.3
rc=$?
if [ $rc -eq 0 ] && [ "$(wc -l <"$tmp/noopen.log")" -eq 2 ] &&
    sed -n 2p "$tmp/noopen.log" | grep -qx 'E [0-9]* open 2'; then pass "cwriter-open-streak"
else fail "cwriter-open-streak" "exit $rc, log $tmp/noopen.log"; fi

# cwriter: SIGTERM ends it with exit 0 and its last attempt logged.
f=$tmp/term.part; : >"$f"
"$bin/cwriter" -w 7 -f "$f" -l "$tmp/term.log" -d 30 -g 2000 &
p=$!; pids+=("$p")
sleep 0.3; kill -TERM "$p"; wait "$p"; rc=$?
if [ $rc -eq 0 ] && tail -n 1 "$tmp/term.log" | grep -q '^C .* ok 0$'; then pass "cwriter-sigterm"
else fail "cwriter-sigterm" "exit $rc, last line '$(tail -n 1 "$tmp/term.log")'"; fi

# usage errors exit 2
ok=1
for args in "-f x -l y" "-w 1 -l y" "-w 1 -f x" "-w 1 -f x -l y -s 31" "-w 1 -f x -l y -b 0" \
    "-w x -f x -l y" "-w 1 -f x -l y -d -1" "-w 1 -f x -l y extra"; do
    # shellcheck disable=SC2086
    "$bin/cwriter" $args 2>/dev/null; [ $? -eq 2 ] || { ok=0; echo "  cwriter $args: not 2"; }
done
for args in "-f x -l y" "-r 1 -l y" "-r 1 -f x -l y -p 0" "-r 1 -f x -l y -d z"; do
    # shellcheck disable=SC2086
    "$bin/creader" $args 2>/dev/null; [ $? -eq 2 ] || { ok=0; echo "  creader $args: not 2"; }
done
if [ $ok -eq 1 ]; then pass "usage-errors"; else fail "usage-errors" "see above"; fi

# creader: the file appears late (one E open, then O 1), a partial line (one
# P, then the whole line once completed), a shrink, and SIGTERM.
f=$tmp/follow.part
log=$tmp/follow.log
"$bin/creader" -r 9 -f "$f" -l "$log" -d 30 -p 5 &
p=$!; pids+=("$p")
sleep 0.2
printf 'one\nab' >"$f"
sleep 0.2
printf 'c\ntwo\n' >>"$f"
sleep 0.2
: >"$f"   # shrink to 0
sleep 0.2
kill -TERM "$p"; wait "$p"; rc=$?
want='^H 9 .*
E [0-9]* open 2
O [0-9]* 1
R [0-9]* 0 4 one
P [0-9]* 4 2
R [0-9]* 4 4 abc
R [0-9]* 8 4 two
SHRINK [0-9]* 12 0$'
got=$(cat "$log")
if [ $rc -eq 0 ] &&
    "$py" -c 'import re,sys; sys.exit(0 if re.fullmatch(sys.argv[1], sys.argv[2]) else 1)' \
        "$want" "$got"; then pass "creader-follow"
else fail "creader-follow" "exit $rc, log: $(tr '\n' '|' <"$log")"; fi

echo "check_test: $failures failed"
[ "$failures" -eq 0 ]
