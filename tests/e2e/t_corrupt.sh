#!/bin/bash
# Damage on disk is found, never served (single node): a byte flipped in a
# sealed segment's .log, in an index entry, and a sealed .log cut short,
# each made while the daemon is stopped.  After the restart:
#  - reading the damaged range fails with EIO (cat fails, dd stops there),
#    while every record before it reads back exactly as written;
#  - the log names the partition, the offset, the position and the segment
#    file, once;
#  - the background scrub finds damage nobody reads (`damaged=` in .cluster
#    counts up without a read), and a healthy partition passes a whole
#    scrub pass with nothing found.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1

flip() { # FILE OFFSET MASK: XORs one byte
    $PY -c 'import sys
p, at, m = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
b = bytearray(open(p, "rb").read()); b[at] ^= m; open(p, "wb").write(b)' "$@" || fail "flipping byte $2 of $1"
}
OPTS=log.segment.bytes=4096,scrub.bytes.per.sec=1048576,scrub.interval.ms=500
mk_start -o "$OPTS"
mkdir "$MNT/t" "$MNT/ok"
for i in $(seq 1 400); do printf 'record %04d of the corruption test\n' "$i"; done >"$T/want"
# one record per write(), so that segments roll every 4 KiB
$PY - "$T/want" "$MNT/t/0" "$MNT/ok/0" <<'PYEOF' || fail "writing the records"
import os, sys
lines = open(sys.argv[1], 'rb').read().splitlines(keepends=True)
for path in sys.argv[2:]:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    for l in lines:
        assert os.write(fd, l) == len(l)
    os.close(fd)
PYEOF
assert_file_eq "$T/want" "$MNT/t/0" "t/0 before the damage"
mk_umount_stop
P=$DATA/topics/t/0
segs=($(ls "$P"/*.log | sort))
((${#segs[@]} >= 4)) || fail "expected several segments of 4096 bytes, found ${#segs[@]}"
seg=${segs[1]}     # sealed
size=$(stat -c %s "$seg")
flip "$seg" 100 1
mk_start -o "$OPTS"
expect_fail() { "$@" >/dev/null 2>"$T/err" && fail "$* succeeded over damaged data"; grep -q "Input/output error" "$T/err" || fail "$*: $(cat "$T/err")"; }
expect_fail cat "$MNT/t/0"
# dd reads up to the damage and stops there with EIO
dd if="$MNT/t/0" of="$T/got" bs=4096 2>"$T/dd.err" && fail "dd read across the damage"
grep -q "Input/output error" "$T/dd.err" || fail "dd did not fail with EIO: $(cat "$T/dd.err")"
got=$(stat -c %s "$T/got")
((got >= size)) || fail "dd read only $got bytes before the damage (the first segment holds $size)"
cmp -n "$got" "$T/got" "$T/want" || fail "the bytes before the damage differ"
wait_until 5 "the log names the damage" grep -q "t/0: the entry at offset .* (position .*, segment .*\.log in .*/topics/t/0) fails its checks: not served (EIO)" "$MK_LOG"
expect_fail cat "$MNT/t/0"
assert_eq 1 "$(grep -c 'fails its checks' "$MK_LOG")" "times the damage was logged"
# the healthy topic reads back whole
assert_file_eq "$T/want" "$MNT/ok/0" "ok/0"
mk_umount_stop

# Damage nobody reads: an index entry, and a sealed .log cut short.  The scrub
# finds both (damaged counts them) without any read of the partition file.
flip "$seg" 100 1 # undone
idx=${segs[2]%.log}.idx
flip "$idx" $((32 + 48 * 3 + 9)) 64 # the 4th entry's timestamp
truncate -s 1000 "${segs[1]}"
mk_start -o "$OPTS"
field() { grep -E "^scrub" "$MNT/.cluster" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
at_least() { local v; v=$(field "$1"); [[ -n $v ]] && ((v >= $2)); }
wait_until 20 "the scrub finds both" at_least damaged 2
wait_until 20 "a scrub pass completes" at_least scrub.passes 1
for s in "${segs[1]}" "${segs[2]}"; do
    grep -q "t/0: the entry at offset .*segment $(basename "$s")" "$MK_LOG" ||
        fail "segment $(basename "$s") is not named: $(grep 'fails its checks' "$MK_LOG")"
done
grep -q "ok/0" <(grep 'fails its checks' "$MK_LOG") && fail "the healthy partition was reported damaged"
assert_file_eq "$T/want" "$MNT/ok/0" "ok/0 after the scrub"
mk_umount_stop
log ok
