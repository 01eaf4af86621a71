#!/bin/bash
# The metadata Raft group across three real daemons on 127.0.0.1/2/3: they
# agree on one leader and term; `kill -9` of the leader, three times over, is
# followed by a new leader of a higher term on the two others (the time is
# logged), and the killed node, restarted on its stale mount, follows it;
# each node's hard state is in DATA_DIR/metadata/raftstate.  Then a
# partition's leadership is handed over by hand from any node (setfattr
# user.leader, Kafka's manual election): the named replica leads, a node
# that holds no replica is refused with EINVAL, and the preferred leader
# takes it back ~2 s later.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1

PORT=$((19000 + RANDOM % 2000))
PEERS="peer=1@127.0.0.1:$PORT,peer=2@127.0.0.2:$PORT,peer=3@127.0.0.3:$PORT"
declare -A PID UP
start_node() {
    mk_start -o "node.id=$1,$PEERS" "$T/d$1" "$T/m$1"
    PID[$1]=$MK_PID
    UP[$1]=1
}
meta() { # NODE FIELD
    grep '^metadata ' "$T/m$1/.cluster" | tr ' ' '\n' | sed -n "s/^$2=//p"
}
# agreed: every node that is up names the same leader (not 0) and term, and
# that leader is up and says it leads.
agreed() {
    local n l="" t="" x
    for n in 1 2 3; do
        [[ ${UP[$n]} == 1 ]] || continue
        x=$(meta "$n" leader)
        [[ -n $x && $x != 0 ]] || return 1
        [[ -z $l ]] && l=$x && t=$(meta "$n" term)
        [[ $x == "$l" && $(meta "$n" term) == "$t" ]] || return 1
    done
    [[ ${UP[$l]} == 1 && $(meta "$l" role) == leader ]] || return 1
    LEADER=$l TERM=$t
}

for i in 1 2 3; do start_node "$i"; done
wait_until 15 "the three nodes agree on a metadata leader" agreed
log "leader $LEADER in term $TERM"
for i in 1 2 3; do
    [[ -s $T/d$i/metadata/raftstate ]] || fail "node $i has no DATA_DIR/metadata/raftstate"
done

for round in 1 2 3; do
    old=$LEADER oldterm=$TERM
    kill -KILL "${PID[$old]}"
    wait_exit "${PID[$old]}" 10 || fail "leader $old survived kill -9"
    UP[$old]=0
    t0=$(date +%s%N)
    newleader() { agreed && [[ $LEADER != "$old" ]] && ((TERM > oldterm)); }
    wait_until 10 "a new leader after kill -9 of leader $old (round $round)" newleader
    log "round $round: leader $old killed; node $LEADER leads term $TERM after $((($(date +%s%N) - t0) / 1000000)) ms"
    start_node "$old"
    wait_until 10 "node $old follows leader $LEADER after its restart" agreed
    assert_eq follower "$(meta "$old" role)" "role of the restarted node $old"
done
grep -q "metadata group: node $LEADER leads" "$T/d$LEADER/minikafka.log" ||
    fail "the leader did not log its leadership"

mkdir "$T/m1/lt" || fail "mkdir lt"
pleader() { getfattr --absolute-names --only-values -n user.leader "$T/m$1/lt/0" 2>/dev/null; }
led() { local l; l=$(pleader 1); [[ $l =~ ^[123]$ ]] && [[ $(pleader 2) == "$l" && $(pleader 3) == "$l" ]]; }
wait_until 10 "lt/0 has a leader every node names" led
pref=$(getfattr --absolute-names --only-values -n user.replicas "$T/m1/lt/0" | cut -d, -f1)
isp() { led && [[ $(pleader 1) == "$pref" ]]; }
wait_until 10 "the preferred replica $pref leads lt/0" isp
to=$((pref % 3 + 1))
via=$((to % 3 + 1)) # asked on a node that is neither
setfattr -n user.leader -v "$to" "$T/m$via/lt/0" || fail "setfattr user.leader=$to on node $via"
moved() { [[ $(pleader 1) == "$to" && $(pleader 2) == "$to" && $(pleader 3) == "$to" ]]; }
wait_until 5 "node $to leads lt/0 after the manual election" moved
expect_errno EINVAL setxattr "$T/m1/lt/0" user.leader 9
back() { [[ $(pleader 1) == "$pref" && $(pleader 2) == "$pref" ]]; }
wait_until 10 "the preferred leader $pref takes lt/0 back" back
for i in 1 2 3; do MK_PID=${PID[$i]} MNT=$T/m$i mk_stop; done
log ok
