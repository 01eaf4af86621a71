#!/bin/bash
# Reading a partition whose oldest segments retention has deleted. A read
# below user.position.first is served from position.first (the first byte of
# the oldest retained record, like a Kafka consumer with
# auto.offset.reset=earliest) and the open file is "redirected": its next read
# at the position where that read ended (in the file's own numbering) goes on
# from the real position where it ended, or from position.first if that was
# deleted meanwhile. A read at p >= position.first means byte p as always;
# st_size stays the end position. So cat, grep, wc -l, md5sum, tail -n/-c/-f
# and dd skip= see exactly the retained bytes [position.first, st_size).
# (The bug report: `tail -n 2` of such a small partition said "No data
# available", because coreutils tail reads a file < st_blksize from 0.)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1

mk_start
mkdir "$MNT/r"
P=$MNT/r/0
setfattr -n user.segment.bytes -v 64 "$MNT/r" || fail "setfattr user.segment.bytes=64"
for i in $(seq 100); do echo "rec$i" >>"$P"; done
seq 100 | sed 's/^/rec/' >"$T/all"
setfattr -n user.retention.ms -v 1 "$MNT/r" || fail "setfattr user.retention.ms=1"
pf() { xget user.position.first "$P"; }
moved() { (($(pf) > 0)); }
wait_until 10 "user.position.first > 0 (user.retention.ms=1, 64-byte segments)" moved
stable() { local a; a=$(pf); sleep 1.1; [[ $(pf) == "$a" ]]; }
wait_until 15 "user.position.first to stop moving" stable
PF=$(pf) SIZE=$(fsize "$T/all")
tail -c +$((PF + 1)) "$T/all" >"$T/kept"
KEPT=$(wc -c <"$T/kept")
log "position.first=$PF, st_size=$SIZE, retained $(wc -l <"$T/kept") records: $(tr '\n' ' ' <"$T/kept")"
assert_eq "$SIZE" "$(fsize "$P")" "st_size (the end position) after retention"
assert_eq 0 $((PF > 0 && KEPT >= 12 ? 0 : 1)) "retention kept the active segment (>= 12 bytes) and deleted older ones"
assert_eq "" "$(head -c 1 "$T/kept" | tr -d r)" "position.first is at a record boundary"

# check WHAT EXPECTED CMD...: CMD must exit 0 and print EXPECTED.
check() {
    local what=$1 want=$2 got st
    shift 2
    got=$("$@" 2>"$T/err")
    st=$?
    [[ $st == 0 && $got == "$want" ]] ||
        soft_fail "$what: expected [$(short "${want//$'\n'/\\n}")] and exit 0, seen [$(short "${got//$'\n'/\\n}")] exit $st $(head -c 200 "$T/err")"
}
check "cat (the retained records)" "$(cat "$T/kept")" cat "$P"
check "grep rec" "$(grep rec "$T/kept")" grep rec "$P"
check "grep -c rec" "$(grep -c rec "$T/kept")" grep -c rec "$P"
check "wc -l" "$(wc -l <"$T/kept")" sh -c 'wc -l <"$1"' sh "$P"
check "md5sum" "$(md5 <"$T/kept")  -" sh -c 'md5sum <"$1"' sh "$P"
check "tail -n 2 (the bug report)" "$(tail -n 2 "$T/kept")" tail -n 2 "$P"
check "tail -n 2 prints rec99 and rec100" $'rec99\nrec100' tail -n 2 "$P"
check "tail -c 10" "$(tail -c 10 "$T/kept")" tail -c 10 "$P"
check "tail -c +\$((position.first+1))" "$(cat "$T/kept")" tail -c +$((PF + 1)) "$P"
check "dd bs=1 skip=0 (< position.first)" "$(cat "$T/kept")" dd if="$P" bs=1 skip=0 status=none
check "dd bs=1 skip=position.first-1" "$(cat "$T/kept")" dd if="$P" bs=1 skip=$((PF - 1)) status=none
check "dd bs=1 skip=position.first+3" "$(tail -c +$((PF + 4)) "$T/all")" dd if="$P" bs=1 skip=$((PF + 3)) status=none
check "dd bs=7 skip=1 (mid-record, < position.first)" "$(cat "$T/kept")" dd if="$P" bs=7 skip=1 status=none
check "pread 20 bytes at 0" "OK 20 $(head -c 20 "$T/kept")" $FSOP pread "$P" 0 20
check "pread 20 bytes at position.first-1" "OK 20 $(head -c 20 "$T/kept")" $FSOP pread "$P" $((PF - 1)) 20
check "pread 5 bytes at position.first+2 (literal)" "OK 5 $(tail -c +$((PF + 3)) "$T/all" | head -c 5)" $FSOP pread "$P" $((PF + 2)) 5
check "wc -c (st_size = end position)" "$SIZE" sh -c 'wc -c <"$1"' sh "$P"
check "cat | wc -c (retained bytes)" "$KEPT" sh -c 'cat "$1" | wc -c' sh "$P"

# tail -f: the last 10 retained records, then every appended one. Each record
# is appended only once tail has shown the previous one, so retention (still
# 1 ms) never deletes a record before tail has read it.
spawn tail -f -s 0.1 "$P" >"$T/tailf" 2>"$T/tailf.err"
shows() { [[ $(cat "$T/tailf") == "$1" ]]; }
want=$(tail -n 10 "$T/kept")
if ! poll_until 5 shows "$want"; then
    soft_fail "tail -f -s 0.1: expected [${want//$'\n'/\\n}], seen [$(tr '\n' '|' <"$T/tailf")] $(tr '\n' ' ' <"$T/tailf.err" | head -c 200)"
else
    for i in $(seq 101 110); do
        echo "rec$i" >>"$P"
        want+=$'\n'rec$i
        poll_until 5 shows "$want" || {
            soft_fail "tail -f after appending rec$i: expected [${want//$'\n'/\\n}], seen [$(tr '\n' '|' <"$T/tailf")] $(tr '\n' ' ' <"$T/tailf.err" | head -c 200)"
            break
        }
    done
fi
kill_helpers

# A redirected open file whose real position was deleted meanwhile goes on
# from the new position.first.
got=$($PY - "$P" "$MNT/r" <<'EOF'
import os, sys, time
p, topic = sys.argv[1], sys.argv[2]
pf = lambda: int(os.getxattr(p, "user.position.first"))
lit = lambda pos, n: os.pread(os.open(p, os.O_RDONLY), n, pos)
os.setxattr(topic, "user.retention.ms", b"-1")
time.sleep(1.2)
pf0 = pf()
fd = os.open(p, os.O_RDONLY)
try:
    first = os.read(fd, 4)                  # at 0: redirected to position.first
except OSError as e:
    sys.exit(print("first read at 0: " + os.strerror(e.errno)))
w = os.open(p, os.O_WRONLY | os.O_APPEND)
for i in range(111, 141):
    os.write(w, b"rec%d\n" % i)             # 30 records: several segments roll
os.close(w)
os.setxattr(topic, "user.retention.ms", b"1")
t = time.time()
while pf() == pf0 and time.time() - t < 10:
    time.sleep(0.1)
time.sleep(1.2)
pf1 = pf()
nxt = os.read(fd, 6)                        # at 4: where the last read ended
ok = first == lit(pf0, 4) and pf1 > pf0 + 4 and nxt == lit(pf1, 6)
print("OK" if ok else "BAD: first read %r (at position.first %d: %r), position.first then %d, next read %r (at it: %r)"
      % (first, pf0, lit(pf0, 4), pf1, nxt, lit(pf1, 6)))
EOF
)
[[ $got == OK ]] || soft_fail "redirected read, then retention deletes where it ended: the next read must go on from the new position.first; $got"
# A read is filled across segment ends: tail trusts a full read of a regular
# file (with 64-byte segments, tail -n 3 printed 4 lines, or all of them).
mkdir "$MNT/small"
setfattr -n user.segment.bytes -v 64 "$MNT/small" || fail "setfattr user.segment.bytes=64"
for i in $(seq 31); do echo "rec$i" >>"$MNT/small/0"; done
assert_eq $'rec29\nrec30\nrec31' "$(tail -n 3 "$MNT/small/0")" "tail -n 3 over many 64-byte segments"
got=$($PY -c "import os,sys; fd=os.open(sys.argv[1],os.O_RDONLY); print(len(os.read(fd,1<<20)), os.fstat(fd).st_size)" "$MNT/small/0")
read -r n sz <<<"$got"
assert_eq "$sz" "$n" "one read() of a partition spanning many segments returns all of it"
mk_stop
log ok
