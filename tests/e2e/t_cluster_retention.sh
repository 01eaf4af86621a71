#!/bin/bash
# Retention in a cluster is decided once, by the partition's leader, and
# replicated (ROLL and TRIM control entries): with small segments and
# retention.bytes, writes from every mount make the log start move, and it
# moves to the same offset and byte position on all three nodes; the bytes
# are identical; a node killed and restarted keeps that start; a node
# rebuilt from an empty data dir starts at the leader's retained start.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1

PORT=$((25000 + RANDOM % 2000))
PEERS="peer=1@127.0.0.1:$PORT,peer=2@127.0.0.2:$PORT,peer=3@127.0.0.3:$PORT"
declare -A PID
start_node() {
    mk_start -o "node.id=$1,$PEERS,request.timeout.ms=10000" "$T/d$1" "$T/m$1"
    PID[$1]=$MK_PID
}
for i in 1 2 3; do start_node "$i"; done
F=ret/0
xval() { getfattr --absolute-names --only-values -n "$1" "$2" 2>/dev/null; }
starts_agree() { # the log start moved and is the same on every node
    local i pos off
    pos=$(xval user.position.first "$T/m1/$F") off=$(xval user.offset.first "$T/m1/$F")
    [[ -n $pos && $pos -gt 0 ]] || return 1
    for i in 2 3; do
        [[ $(xval user.position.first "$T/m$i/$F") == "$pos" &&
            $(xval user.offset.first "$T/m$i/$F") == "$off" ]] || return 1
    done
    START_POS=$pos START_OFF=$off
}
same_bytes() {
    local a b c
    a=$(md5sum <"$T/m1/$F") b=$(md5sum <"$T/m2/$F") c=$(md5sum <"$T/m3/$F")
    [[ $a == "$b" && $b == "$c" ]]
}

mkdir "$T/m1/ret" || fail "mkdir"
setfattr -n user.segment.bytes -v 4096 "$T/m2/ret" || fail "setfattr segment.bytes"
setfattr -n user.retention.bytes -v 8192 "$T/m3/ret" || fail "setfattr retention.bytes"
# Four rounds a second and a half apart: the leader checks its active
# segment once a second, so each round ends up in its own segments.
for round in 0 1 2 3; do
    for k in $(seq $((round * 100 + 1)) $((round * 100 + 100))); do
        echo "record $k $(printf '%040d' "$k")" >>"$T/m$((k % 3 + 1))/$F" || fail "append $k"
    done
    sleep 1.5
done
wait_until 15 "the log start moved, the same on every node" starts_agree
wait_until 10 "the same bytes on every node" same_bytes
log "log start: offset $START_OFF, position $START_POS, on all three nodes"
for i in 1 2 3; do
    n=$(find "$T/d$i/topics/ret/0" -name '*.log' | wc -l)
    ((n <= 4)) || fail "node $i keeps $n segments: retention did not delete"
    assert_eq "record 400 $(printf '%040d' 400)" "$(tail -n 1 "$T/m$i/$F")" "last record on node $i"
done
# Reading from 0 starts at the oldest retained record, the same everywhere.
first=$(head -n 1 "$T/m1/$F")
[[ $first == record\ * ]] || fail "the first retained line is [$first]"
for i in 2 3; do assert_eq "$first" "$(head -n 1 "$T/m$i/$F")" "first retained record on node $i"; done

# A node killed and restarted keeps the same start.
kill -KILL "${PID[2]}"
wait_exit "${PID[2]}" 10 || fail "node 2 survived kill -9"
start_node 2
wait_until 15 "node 2 agrees on the log start after its restart" starts_agree
wait_until 10 "the same bytes after the restart" same_bytes

# A node rebuilt from an empty data dir after retention moved the start:
# it starts at the leader's first retained offset and position.
MK_PID=${PID[3]} MNT=$T/m3 mk_stop
rm -rf "$T/d3"
echo "after the wipe" >>"$T/m1/$F" || fail "append while node 3 is away"
start_node 3
wait_until 15 "node 3, rebuilt, agrees on the log start" starts_agree
wait_until 10 "the same bytes on the rebuilt node" same_bytes
assert_eq "after the wipe" "$(tail -n 1 "$T/m3/$F")" "last record on the rebuilt node"
log "node 3 rebuilt from an empty data dir: log start offset $START_OFF, position $START_POS"
for i in 1 2 3; do MK_PID=${PID[$i]} MNT=$T/m$i mk_stop; done
log ok
