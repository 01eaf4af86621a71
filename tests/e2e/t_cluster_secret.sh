#!/bin/bash
# cluster.secret between three real daemons on 127.0.0.1/2/3:
#  - with the same secret file on every node they connect and replicate
#    (a topic made on node 1, written on node 2, read on node 3);
#  - node 3 restarted with another secret is refused by both peers before
#    anything of it is taken (no connection, its writes fail with ETIMEDOUT),
#    while nodes 1 and 2 go on; restarted with the right one it catches up;
#  - a node without a secret is refused, with its own reason (raw
#    impostors with guessed proofs: test_netport.c);
#  - a secret file others can read, or too short, is refused at start in one
#    line; nothing listens on 0.0.0.0 (each port on its node's own address),
#    and cluster.listen moves the listener.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1

PORT=$((21000 + RANDOM % 2000))
PEERS="peer=1@127.0.0.1:$PORT,peer=2@127.0.0.2:$PORT,peer=3@127.0.0.3:$PORT"
declare -A PID
head -c 32 /dev/urandom >"$T/secret"
chmod 600 "$T/secret"
head -c 32 /dev/urandom >"$T/other"
chmod 600 "$T/other"
start_node() { # ID SECRET_FILE|none [EXTRA_OPTS]
    local i=$1 s=""
    [[ $2 != none ]] && s=",cluster.secret=$2"
    mk_start -o "node.id=$i,$PEERS,request.timeout.ms=3000$s${3:+,$3}" "$T/d$i" "$T/m$i"
    PID[$i]=$MK_PID
}
connected() { grep -qE "^peer=$2 .*state=connected " "$T/m$1/.cluster"; }
field() { grep -E "^$2" "$T/m$1/.cluster" | head -1 | tr ' ' '\n' | sed -n "s/^$3=//p"; }
pair_up() { connected 1 2 && connected 2 1; }
all_up() { local a b; for a in 1 2 3; do for b in 1 2 3; do
    [[ $a == "$b" ]] || connected "$a" "$b" || return 1; done; done; }

for i in 1 2 3; do start_node "$i" "$T/secret"; done
wait_until 10 "three nodes with one secret connected" all_up
assert_eq yes "$(field 1 port= secret)" "node 1 says it has a secret"
mkdir "$T/m1/orders" || fail "mkdir with a secret"
wait_until 10 "orders on node 3" test -e "$T/m3/orders/0"
echo 'paid 17' >>"$T/m2/orders/0" || fail "write on node 2"
wait_until 10 "node 3 reads node 2's record" grep -qx 'paid 17' "$T/m3/orders/0"

# Nothing listens on 0.0.0.0: each node's port is bound to its own address.
ls=$(ss -Hltn "sport = :$PORT" | awk '{print $4}' | sort | tr '\n' ' ')
assert_eq "127.0.0.1:$PORT 127.0.0.2:$PORT 127.0.0.3:$PORT " "$ls" "listeners of the cluster port"

# Node 3 with another secret: refused by both, nothing of it taken.
r1=$(field 1 port= refused)
MK_PID=${PID[3]} MNT=$T/m3 mk_stop
start_node 3 "$T/other"
refused_both() { (($(field 1 port= refused) > r1)) && (($(field 2 port= refused) >= 1)); }
wait_until 15 "nodes 1 and 2 refuse node 3's wrong proof" refused_both
connected 1 3 && fail "node 1 took node 3 with the wrong secret: $(grep ^peer=3 "$T/m1/.cluster")"
connected 3 1 && fail "node 3 with the wrong secret thinks it is connected to node 1"
# (node 3 learns why from a refusal it cannot trust: logged as a stranger's)
grep -q "unidentified node: it refused us: refused node 3: its proof does not match our cluster.secret" \
    "$T/d3/minikafka.log" || fail "node 3 did not log why: $(tail -3 "$T/d3/minikafka.log")"
for i in 1 2; do
    grep -q "peer 3 .*refused node 3: its proof does not match our cluster.secret" \
        "$T/d$i/minikafka.log" || fail "node $i did not log the refusal"
done
echo 'paid 18' >>"$T/m1/orders/0" || fail "nodes 1 and 2 stopped taking writes"
expect_errno ETIMEDOUT append "$T/m3/orders/0" 'from the impostor\n'
pair_up || fail "the wrong node disturbed nodes 1 and 2"

# Without a secret: refused too, with its own reason.
MK_PID=${PID[3]} MNT=$T/m3 mk_stop
start_node 3 none
# (nodes 1 and 2 dial node 3, which refuses them: it has no secret)
wait_until 15 "node 3 without a secret refuses the nodes with one" \
    grep -q "refused node 1: it has a cluster.secret, we have none" "$T/d3/minikafka.log"
wait_until 15 "node 1 says why" \
    grep -q "it refused us: refused node 1: it has a cluster.secret, we have none" "$T/d1/minikafka.log"
connected 1 3 && fail "node 1 took node 3 without a secret"
connected 3 2 && fail "node 3 without a secret took node 2"

# With the right secret again: connected and caught up.
MK_PID=${PID[3]} MNT=$T/m3 mk_stop
start_node 3 "$T/secret"
wait_until 15 "node 3 with the right secret connected again" all_up
wait_until 15 "node 3 caught up" grep -qx 'paid 18' "$T/m3/orders/0"
assert_eq "paid 17
paid 18" "$(cat "$T/m3/orders/0")" "node 3's orders/0"

# Refused at start, in one line: a secret others can read; a short one.
chmod 644 "$T/other"
out=$("$MK" -f -o "node.id=3,$PEERS,cluster.secret=$T/other" "$T/dx" "$T/mx" 2>&1)
[[ $? != 0 ]] || fail "a world-readable secret was accepted"
assert_eq 1 "$(wc -l <<<"$out")" "lines printed for a readable secret"
assert_match "cluster.secret .* readable or writable by group or others \(chmod 600 it\)" "$out" \
    "message for a readable secret"
printf short >"$T/short"
chmod 600 "$T/short"
out=$("$MK" -f -o "node.id=3,$PEERS,cluster.secret=$T/short" "$T/dx" "$T/mx" 2>&1)
[[ $? != 0 ]] || fail "a 5-byte secret was accepted"
assert_match "must hold 16 to 65536 bytes" "$out" "message for a short secret"
out=$("$MK" -f -o "cluster.secret=$T/secret" "$T/dx" "$T/mx" 2>&1)
[[ $? != 0 ]] || fail "cluster.secret without peers was accepted"
assert_match "need the peers" "$out" "message for a secret without peers"

for i in 1 2 3; do MK_PID=${PID[$i]} MNT=$T/m$i mk_stop; done
log ok
