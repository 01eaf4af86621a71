#!/bin/bash
# Five nodes, replication factor 3 (the default: min(3, nodes)): each
# partition lives on three nodes, the other two hold no replica and serve
# it from its leader.  Checks: replicas spread over all five nodes; a node
# without a replica appends, reads (cat, stat, tail -f) and sees the same
# bytes as every other mount; a replica's node restarted with an empty data
# dir is rebuilt from the others (without a vote until it caught up) and
# shows the same bytes again.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1

PORT=$((23000 + RANDOM % 2000))
PEERS=""
for i in 1 2 3 4 5; do PEERS+="${PEERS:+,}peer=$i@127.0.0.$i:$PORT"; done
OPTS="$PEERS,num.partitions=5,request.timeout.ms=10000"
declare -A PID
start_node() {
    mk_start -o "node.id=$1,$OPTS" "$T/d$1" "$T/m$1"
    PID[$1]=$MK_PID
}
for i in 1 2 3 4 5; do start_node "$i"; done
xval() { getfattr --absolute-names --only-values -n "$1" "$2" 2>/dev/null; }
has_leader() { # PART: every node names the same nonzero leader
    local n l="" x
    for n in 1 2 3 4 5; do
        x=$(xval user.leader "$T/m$n/five/$1")
        [[ -n $x && $x != 0 ]] || return 1
        [[ -z $l ]] && l=$x
        [[ $x == "$l" ]] || return 1
    done
}
same_on_all() { # PART
    local n ref
    ref=$(md5sum <"$T/m1/five/$1")
    for n in 2 3 4 5; do [[ $(md5sum <"$T/m$n/five/$1") == "$ref" ]] || return 1; done
}

mkdir "$T/m3/five" || fail "mkdir five"
declare -A HOLDS # node -> partitions it holds a replica of
for p in 0 1 2 3 4; do
    wait_until 15 "a leader of five/$p" has_leader "$p"
    reps=$(xval user.replicas "$T/m1/five/$p")
    [[ $reps =~ ^[1-5],[1-5],[1-5]$ ]] || fail "five/$p: user.replicas is [$reps], want three node ids"
    for i in 1 2 3 4 5; do
        [[ $(xval user.replicas "$T/m$i/five/$p") == "$reps" ]] || fail "five/$p: node $i shows other replicas"
        [[ ,$reps, == *",$i,"* ]] && HOLDS[$i]+="$p "
    done
done
for i in 1 2 3 4 5; do
    n=$(wc -w <<<"${HOLDS[$i]:-}")
    assert_eq 3 "$n" "replicas held by node $i (5 partitions x 3 over 5 nodes)"
done

# Every node appends to every partition; the two without a replica too.
for p in 0 1 2 3 4; do
    for i in 1 2 3 4 5; do
        echo "p$p from node $i" >>"$T/m$i/five/$p" || fail "append to five/$p on node $i"
    done
done
for p in 0 1 2 3 4; do
    wait_until 10 "five/$p the same on all five mounts" same_on_all "$p"
    for i in 1 2 3 4 5; do
        assert_eq 5 "$(wc -l <"$T/m$i/five/$p")" "records of five/$p on node $i"
        assert_eq "$(fsize "$T/m1/five/$p")" "$(fsize "$T/m$i/five/$p")" "st_size of five/$p on node $i"
    done
done

# tail -f on a node without a replica sees a record written on another node.
p=0
reps=$(xval user.replicas "$T/m1/five/$p")
for i in 1 2 3 4 5; do [[ ,$reps, == *",$i,"* ]] || away=$i; done
log "node $away holds no replica of five/$p ($reps)"
spawn tail -n 0 -f -s 0.2 "$T/m$away/five/$p" >"$T/tail.out"
sleep 1
echo "seen by tail" >>"$T/m${reps%%,*}/five/$p" || fail "append on the preferred leader"
wait_until 10 "tail -f on node $away shows the record" grep -qx "seen by tail" "$T/tail.out"
kill_helpers

# A replica's node loses its data dir and is rebuilt from the others.
victim=${reps##*,}
log "node $victim: stopped, data dir removed, started again"
MK_PID=${PID[$victim]} MNT=$T/m$victim mk_stop
rm -rf "$T/d$victim"
echo "while node $victim was away" >>"$T/m$away/five/$p" || fail "append while node $victim is down"
start_node "$victim"
wait_until 15 "node $victim knows topic five again" test -e "$T/m$victim/five/$p"
for q in 0 1 2 3 4; do
    wait_until 15 "five/$q rebuilt on node $victim" same_on_all "$q"
done
grep -qx "while node $victim was away" "$T/d$victim/topics/five/$p/"*.log ||
    fail "node $victim's rebuilt replica of five/$p lacks the record written while it was away"
# It knew it was rebuilt (its peers remembered its old data dir), voted in no
# group before catching up, and is an ordinary node again.
grep -q "knew this node with another data dir" "$T/d$victim/minikafka.log" ||
    fail "node $victim did not notice that its data dir is new"
wait_until 15 "node $victim done rebuilding" grep -q "rebuilt: every group of this node caught up" "$T/d$victim/minikafka.log"
[[ -e $T/d$victim/rebuild ]] && fail "node $victim still has its rebuild flag"
for i in 1 2 3 4 5; do
    [[ $i == "$victim" ]] && continue
    grep -q "peer $victim has a new data dir" "$T/d$i/minikafka.log" ||
        fail "node $i did not log that node $victim has a new data dir"
done
for i in 1 2 3 4 5; do MK_PID=${PID[$i]} MNT=$T/m$i mk_stop; done
log ok
