#!/bin/bash
# cluster.sh — three (or N) minikafka nodes on this machine, for trying the
# cluster out (`make cluster`).  Node i listens on 127.0.0.i:PORT, keeps its
# data in DATA/di and is mounted on MNT/mki.  The nodes run in the
# foreground of this script; Ctrl-C (or SIGTERM) unmounts and stops them all.
#
#   tests/cluster.sh [-n NODES] [-p PORT] [-k KPORT] [-d DATA] [-m MNT] [-o OPTS]
#
# Node i serves the Kafka protocol on 127.0.0.i:KPORT (default 9092; -k off
# for none).  Defaults: 3 nodes, port 7001, DATA=$HOME/.local/share/minikafka-cluster,
# MNT=/tmp/minikafka-cluster-$USER; -o adds options for every node (e.g.
# -o default.replication.factor=2).  Stopped and started again with the same
# DATA, the cluster comes back with its topics.
set -u
BIN=${MK_BIN:-$(dirname "$0")/../build/minikafka}
NODES=3 PORT=7001 KPORT=9092 OPTS=""
DATA=${HOME:-/root}/.local/share/minikafka-cluster
MNT=/tmp/minikafka-cluster-$(id -un)
while getopts "n:p:k:d:m:o:" opt; do
    case $opt in
    n) NODES=$OPTARG ;;
    p) PORT=$OPTARG ;;
    k) KPORT=$OPTARG ;;
    d) DATA=$OPTARG ;;
    m) MNT=$OPTARG ;;
    o) OPTS=",$OPTARG" ;;
    *) echo "usage: $0 [-n NODES] [-p PORT] [-k KPORT|off] [-d DATA] [-m MNT] [-o OPTS]" >&2; exit 2 ;;
    esac
done
if ! [[ $NODES =~ ^[0-9]+$ ]] || ((NODES < 1 || NODES > 16)); then
    echo "cluster.sh: -n must be 1 to 16" >&2
    exit 2
fi
PEERS=""
for ((i = 1; i <= NODES; i++)); do PEERS+="${PEERS:+,}peer=$i@127.0.0.$i:$PORT"; done

declare -a PIDS
stop() {
    trap '' INT TERM
    echo
    echo "cluster.sh: stopping ${#PIDS[@]} nodes"
    for ((i = 1; i <= NODES; i++)); do
        # Unmounting ends a foreground node cleanly (it flushes and exits).
        fusermount3 -u "$MNT/mk$i" 2>/dev/null || kill -TERM "${PIDS[$i]:-0}" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    echo "cluster.sh: stopped; data kept in $DATA"
    exit 0
}
trap stop INT TERM

for ((i = 1; i <= NODES; i++)); do
    mkdir -p "$DATA/d$i" "$MNT/mk$i" || exit 1
    kafka="kafka.listen=off"
    [[ $KPORT == off ]] || kafka="kafka.listen=127.0.0.$i:$KPORT"
    "$BIN" -f -o "node.id=$i,$PEERS,$kafka$OPTS" "$DATA/d$i" "$MNT/mk$i" &
    PIDS[$i]=$!
done
# Mounted once each root answers as a minikafka mount.
for ((t = 0; t < 100; t++)); do
    up=0
    for ((i = 1; i <= NODES; i++)); do [[ -e $MNT/mk$i/.cluster ]] && ((up++)); done
    ((up == NODES)) && break
    for ((i = 1; i <= NODES; i++)); do
        if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
            echo "cluster.sh: node $i did not start (see above and $DATA/d$i/minikafka.log)" >&2
            stop
        fi
    done
    sleep 0.1
done
echo "cluster.sh: $NODES nodes up (port $PORT); Ctrl-C stops them"
for ((i = 1; i <= NODES; i++)); do
    echo "  node $i  127.0.0.$i:$PORT  data $DATA/d$i  mount $MNT/mk$i"
done
echo "try:  mkdir $MNT/mk1/orders && echo 'paid 17' >> $MNT/mk2/orders/0 && cat $MNT/mk3/orders/0"
while :; do
    for ((i = 1; i <= NODES; i++)); do
        if [[ -n ${PIDS[$i]:-} ]] && ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
            echo "cluster.sh: node $i exited (see $DATA/d$i/minikafka.log)" >&2
            unset "PIDS[$i]"
        fi
    done
    ((${#PIDS[@]} == 0)) && exit 1
    sleep 1
done
