#!/bin/bash
# The cluster port between three real daemons on 127.0.0.1/2/3, each with its
# own data dir and mount: every node's .cluster shows both peers connected
# with a round trip; garbage, an oversized header and a stranger's HELLO on a
# node's port close only that connection, are counted, and change nothing;
# a daemon of another cluster (another peer list) is refused; a node killed
# with -9 and restarted is connected again; a node.id that is not among the
# peers, and a port already in use, are refused at start in one line.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1

PORT=$((17000 + RANDOM % 2000))
PEERS="peer=1@127.0.0.1:$PORT,peer=2@127.0.0.2:$PORT,peer=3@127.0.0.3:$PORT"
declare -A PID
start_node() { # ID [EXTRA_OPTS]
    local i=$1
    mk_start -o "node.id=$i,$PEERS${2:+,$2}" "$T/d$i" "$T/m$i"
    PID[$i]=$MK_PID
}
connected() { # ON PEER
    grep -qE "^peer=$2 .*state=connected rtt.us=[0-9]+ " "$T/m$1/.cluster"
}
all_connected() {
    local a b
    for a in 1 2 3; do for b in 1 2 3; do
        [[ $a == "$b" ]] || connected "$a" "$b" || return 1
    done; done
}
field() { # NODE LINE-PREFIX KEY
    grep -E "^$2" "$T/m$1/.cluster" | head -1 | tr ' ' '\n' | sed -n "s/^$3=//p"
}

for i in 1 2 3; do start_node "$i"; done
wait_until 10 "all three nodes connected to each other" all_connected
assert_match "role=cluster-node" "$(head -1 "$T/m2/.cluster")" ".cluster node line in a cluster"
id1=$(field 1 port= cluster.id) id3=$(field 3 port= cluster.id)
assert_match '^[0-9a-f]{16}$' "$id1" "cluster.id on node 1"
assert_eq "$id1" "$id3" "cluster.id is the same on node 1 and node 3"
assert_match "cluster.id=$id1" "$(cat "$T/d2/meta")" "node 2 keeps the cluster id in its meta file"

# Bad input on node 2's port: garbage, a header announcing a 2 GiB body, a
# HELLO-sized frame with a bad checksum.  Each closes its own connection.
$PY - "$PORT" <<'EOF' || fail "sending garbage to the cluster port"
import os, socket, struct, sys
port = int(sys.argv[1])
frames = [os.urandom(4096),
          b"MKP1\x01\x06\x00\x00" + struct.pack("<I", 0x7fffffff) + b"\0" * 8,
          b"MKP1\x01\x01\x00\x00" + struct.pack("<I", 17) + b"\0" * 8 + b"\0" * 17]
for f in frames:
    s = socket.create_connection(("127.0.0.2", port), timeout=5)
    s.sendall(f)
    s.settimeout(8)
    try:
        while s.recv(4096):
            pass
    except ConnectionResetError:
        pass
    s.close()
EOF
bad=$(field 2 port= bad.frames)
assert_eq 3 "$bad" "bad frames counted on node 2's port"
alive "${PID[2]}" || fail "node 2 died of garbage on its port"
all_connected || fail "garbage on node 2's port disturbed the peer connections: $(grep ^peer "$T/m2/.cluster")"
grep -q "cluster port: connection from an unidentified node" "$T/d2/minikafka.log" ||
    fail "node 2 did not log the bad connections"
# once per reason (the three frames fail three ways: at most three lines)
n=$(grep -c "unidentified node" "$T/d2/minikafka.log")
((n >= 1 && n <= 3)) || fail "bad connections logged $n times for 3 events"
((n == $(grep "unidentified node" "$T/d2/minikafka.log" | sed 's/ (.*such events.*//; s/.*unidentified node: //' | sort -u | wc -l))) ||
    fail "a reason was logged twice: $(grep "unidentified node" "$T/d2/minikafka.log")"

# A node of another cluster (its peer list differs) is refused by node 3: it
# calls itself node 1 and dials node 3 from 127.0.0.9 (lower ids dial).
mkdir -p "$T/d9" "$T/m9"
OTHER="peer=1@127.0.0.9:$PORT,peer=3@127.0.0.3:$PORT"
MOUNTS+=("$T/m9")
"$MK" -f -o "node.id=1,$OTHER" "$T/d9" "$T/m9" >"$T/d9.out" 2>&1 &
P9=$!
DAEMON_PIDS+=("$P9")
DAEMON_LOGS+=("$T/d9.out")
refused() { (($(field 3 port= refused) >= 1)); }
wait_until 10 "node 3 refuses the node of another cluster" refused
grep -q "cluster" "$T/d3/minikafka.log" || fail "node 3 did not log the refusal"
grep -q "it refused us: refused node 1: cluster" "$T/d9/minikafka.log" ||
    fail "the foreign node did not log why it was refused: $(tail -3 "$T/d9/minikafka.log")"
kill -TERM "$P9"
wait_exit "$P9" 10 || fail "the foreign node did not stop"
all_connected || fail "the stranger disturbed the cluster"

# kill -9 of node 3 and a restart on its stale mount: connected again.
kill -KILL "${PID[3]}"
wait_exit "${PID[3]}" 10 || fail "node 3 survived kill -9"
down() { grep -qE "^peer=3 .*state=(down|connecting)" "$T/m1/.cluster"; }
wait_until 10 "node 1 sees node 3 down" down
start_node 3
wait_until 15 "all connected again after node 3 restarted" all_connected
assert_match "connects=2" "$(grep ^peer=3 "$T/m1/.cluster")" "node 1 connected to node 3 twice"

# Refused at start, in one line: a node.id that is not a peer; a port in use.
out=$("$MK" -f -o "node.id=4,$PEERS" "$T/d4" "$T/m4" 2>&1)
st=$?
[[ $st != 0 ]] || fail "node.id=4 with peers 1-3 started"
assert_eq 1 "$(wc -l <<<"$out")" "lines printed for node.id not among the peers"
assert_match "node.id must be one of the peers" "$out" "message for node.id not among the peers"
mkdir -p "$T/d1b" "$T/m1b"
out=$(timeout 10 "$MK" -f -o "node.id=1,$PEERS" "$T/d1b" "$T/m1b" 2>&1)
st=$?
[[ $st != 0 && $st != 124 ]] || fail "a second node 1 on the same port started (exit $st)"
assert_match "cluster port .*in use" "$out" "message for a cluster port in use"
is_mounted "$T/m1b" && fail "a refused node mounted"

for i in 1 2 3; do MK_PID=${PID[$i]} MNT=$T/m$i mk_stop; done
log ok
