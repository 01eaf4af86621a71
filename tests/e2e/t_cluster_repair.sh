#!/bin/bash
# Damage on one replica is found and repaired from the others, never served
# (three real daemons on 127.0.0.1/2/3).  While a follower is stopped, bytes
# of its .log, .idx and .aux are flipped; after its restart:
#  - cat on its mount shows exactly the leader's bytes at once (a read of a
#    damaged range is served by the leader while the replica is repaired);
#  - its log names the damage and the repair, .cluster counts it, and its
#    segment files end byte-identical to the leader's;
# then damage nobody reads is found by the scrub and repaired the same way;
# and a follower whose active segment lost its committed tail (cut while it
# was stopped) rebuilds from the others without a vote and converges.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1

PORT=$((23000 + RANDOM % 2000))
PEERS="peer=1@127.0.0.1:$PORT,peer=2@127.0.0.2:$PORT,peer=3@127.0.0.3:$PORT"
OPTS="scrub.bytes.per.sec=1048576,scrub.interval.ms=500,request.timeout.ms=10000"
declare -A PID
start_node() {
    mk_start -o "node.id=$1,$PEERS,$OPTS" "$T/d$1" "$T/m$1"
    PID[$1]=$MK_PID
}
stop_node() { MK_PID=${PID[$1]} MNT=$T/m$1 mk_stop; }
pfield() { grep "^partition=t/0 " "$T/m$1/.cluster" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p"; }
sfield() { grep "^scrub" "$T/m$1/.cluster" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p"; }
at_least() { local v; v=$(sfield "$1" "$2"); [[ -n $v ]] && ((v >= $3)); }
flip() { # FILE OFFSET
    $PY - "$1" "$2" <<'PYEOF' || fail "flipping byte $2 of $1"
import sys
p, at = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, 'rb').read())
b[at] ^= 0x01
open(p, 'wb').write(b)
PYEOF
}
same_files() { # NODE-A NODE-B: their t/0 segment files are identical
    local f
    for f in "$T/d$1"/topics/t/0/*.log "$T/d$1"/topics/t/0/*.aux; do
        cmp -s "$f" "$T/d$2/topics/t/0/$(basename "$f")" || return 1
    done
}

for i in 1 2 3; do start_node "$i"; done
mkdir "$T/m1/t" || fail "mkdir"
wait_until 10 "t/0 on every node" test -e "$T/m3/t/0"
for i in $(seq 1 300); do printf 'record %04d of the repair test\n' "$i"; done >"$T/want"
$PY - "$T/want" "$T/m1/t/0" <<'PYEOF' || fail "writing"
import os, sys
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND)
for l in open(sys.argv[1], 'rb').read().splitlines(keepends=True):
    assert os.write(fd, l) == len(l)
PYEOF
for i in 1 2 3; do wait_until 10 "node $i has every record" cmp -s "$T/want" "$T/m$i/t/0"; done
L=$(pfield 1 leader)
[[ $L =~ ^[123]$ ]] || fail "no leader of t/0: $L"
F=$(( L % 3 + 1 ))
log "leader $L, damaging follower $F"

# --- flipped bytes in .log, .idx and .aux; read at once after the restart
stop_node "$F"
P=$T/d$F/topics/t/0
seg=$(ls "$P"/*.log | head -1)
flip "$seg" 100
flip "$seg" 4000
flip "${seg%.log}.idx" $((32 + 48 * 200 + 9))
flip "${seg%.log}.aux" 50
start_node "$F"
assert_file_eq "$T/want" "$T/m$F/t/0" "the damaged follower's t/0, read at once"
wait_until 10 "the follower repaired its replica" at_least "$F" repaired 1
grep -q "t/0: the entry at offset .* fails its checks: repairing it from another replica" "$T/d$F/minikafka.log" ||
    fail "the damage is not logged"
grep -q "t/0: entries .* repaired from node" "$T/d$F/minikafka.log" || fail "the repair is not logged"
wait_until 10 "the follower's files equal the leader's" same_files "$F" "$L"
assert_file_eq "$T/want" "$T/m$F/t/0" "t/0 after the repair"

# --- damage nobody reads: the scrub finds and repairs it
stop_node "$F"
flip "$seg" 2000
start_node "$F"
# (the counters start again with the daemon)
wait_until 15 "the scrub repairs unread damage" at_least "$F" repaired 1
wait_until 10 "the follower's files equal the leader's again" same_files "$F" "$L"

# --- the committed tail of the active segment cut off: rebuilt without a vote
stop_node "$F"
act=$(ls "$P"/*.log | tail -1)
truncate -s $(( $(stat -c %s "$act") - 300 )) "$act"
start_node "$F"
wait_until 10 "the follower says it rebuilds" grep -q "t/0: holds entries up to .* committed: rebuilding from the others, without a vote" "$T/d$F/minikafka.log"
echo 'after the cut' >>"$T/m$L/t/0" || fail "a write after the cut"
echo 'after the cut' >>"$T/want"
for i in 1 2 3; do wait_until 15 "node $i converges" cmp -s "$T/want" "$T/m$i/t/0"; done
wait_until 10 "the rebuilt follower's files equal the leader's" same_files "$F" "$L"
for i in 1 2 3; do stop_node "$i"; done
log ok
