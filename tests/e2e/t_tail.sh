#!/bin/bash
# tail -f follows a partition: existing records first, then new appends
# (GNU tail polls about once a second on FUSE).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1

mk_start
mkdir "$MNT/f"
P=$MNT/f/0
echo first >>"$P"
spawn tail -f "$P" >"$T/out"
TAIL=$!
has() { grep -qx "$1" "$T/out"; }
wait_until 5 "tail -f shows the existing record" has first
echo second >>"$P"
wait_until 5 "tail -f shows an appended record" has second
seq 1 5000 | sed 's/^/n/' >>"$P"
wait_until 5 "tail -f shows 5000 more records" has n5000
assert_eq "$(printf 'first\nsecond\n'; seq 1 5000 | sed 's/^/n/')" "$(cat "$T/out")" "everything tail -f printed"
# tail -n +1 -f from another partition position
printf 'p1\np2\n' >>"$P"
wait_until 5 "tail -f shows later records" has p2
kill "$TAIL"
# A byte-position consumer: tail -c +N -f starting mid-file.
pos=$(fsize "$P")
spawn tail -c +$((pos + 1)) -f "$P" >"$T/out2"
sleep 0.3
echo after >>"$P"
has2() { grep -qx after "$T/out2"; }
wait_until 5 "tail -c +N -f shows only records after N" has2
assert_eq after "$(cat "$T/out2")" "tail -c +N -f output"
kill_helpers
mk_stop
log ok
