#!/bin/bash
# A network partition cuts one node off (iptables DROP between its 127.0.0.N
# address and the two others), twice: first a follower of the partition,
# then its leader.  On the cut-off node a write fails with ETIMEDOUT once
# request.timeout.ms has passed and leaves nothing behind; on the two
# others writes go on (after a new leader when the old one was cut off);
# after healing every mount shows the same bytes, and the refused records
# appear nowhere.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1

command -v iptables >/dev/null || fail "iptables is missing (the Makefile installs it: make deps)"
iptables -L INPUT -n >/dev/null 2>&1 || fail "iptables cannot be used here (root and nf_tables needed)"

PORT=$((21000 + RANDOM % 2000))
TIMEOUT_MS=3000
PEERS="peer=1@127.0.0.1:$PORT,peer=2@127.0.0.2:$PORT,peer=3@127.0.0.3:$PORT"
CHAIN="MKE2E$$"
iptables -N "$CHAIN" || fail "iptables -N $CHAIN"
iptables -I INPUT -j "$CHAIN" || fail "iptables -I INPUT -j $CHAIN"
CLEANUP_HOOKS+=("iptables -D INPUT -j $CHAIN; iptables -F $CHAIN; iptables -X $CHAIN")

declare -A PID
for i in 1 2 3; do
    mk_start -o "node.id=$i,$PEERS,request.timeout.ms=$TIMEOUT_MS" "$T/d$i" "$T/m$i"
    PID[$i]=$MK_PID
done
field() { # NODE PARTITION FIELD: a field of the partition's .cluster line
    grep "^partition=$2 " "$T/m$1/.cluster" | tr ' ' '\n' | sed -n "s/^$3=//p"
}
# led_by NODES...: every listed node names the same leader, one of them.
led_by() {
    local n l="" x
    for n in "$@"; do
        x=$(field "$n" part/0 leader)
        [[ -n $x && $x != 0 ]] || return 1
        [[ -z $l ]] && l=$x
        [[ $x == "$l" ]] || return 1
    done
    [[ " $* " == *" $l "* ]] || return 1
    LEADER=$l
}
cut_off() { # NODE: drop everything between it and the two others
    local o
    for o in 1 2 3; do
        [[ $o == "$1" ]] && continue
        iptables -A "$CHAIN" -s "127.0.0.$1" -d "127.0.0.$o" -j DROP
        iptables -A "$CHAIN" -s "127.0.0.$o" -d "127.0.0.$1" -j DROP
    done
}
heal() { iptables -F "$CHAIN"; }
same_everywhere() {
    local a b c
    a=$(md5sum <"$T/m1/part/0") b=$(md5sum <"$T/m2/part/0") c=$(md5sum <"$T/m3/part/0")
    [[ $a == "$b" && $b == "$c" ]]
}

mkdir "$T/m1/part" || fail "mkdir"
wait_until 10 "a leader of part/0 on every node" led_by 1 2 3
echo "before" >>"$T/m1/part/0" || fail "first write"

for round in follower leader; do
    led_by 1 2 3 || wait_until 10 "one leader before the $round round" led_by 1 2 3
    if [[ $round == leader ]]; then
        cut=$LEADER
    else
        cut=$((LEADER % 3 + 1))
    fi
    rest=()
    for i in 1 2 3; do [[ $i != "$cut" ]] && rest+=("$i"); done
    log "round $round: leader $LEADER, cutting node $cut off"
    size_before=$(fsize "$T/m$cut/part/0")
    cut_off "$cut"

    # The cut-off node: ETIMEDOUT after request.timeout.ms, nothing stored.
    t0=$(date +%s%N)
    expect_errno ETIMEDOUT append "$T/m$cut/part/0" "refused-$round\n"
    ms=$((($(date +%s%N) - t0) / 1000000))
    log "write on the cut-off node $cut: ETIMEDOUT after $ms ms"
    ((ms >= TIMEOUT_MS - 100)) || fail "ETIMEDOUT after $ms ms, before request.timeout.ms=$TIMEOUT_MS"
    ((ms <= TIMEOUT_MS + 5000)) || fail "ETIMEDOUT only after $ms ms (request.timeout.ms=$TIMEOUT_MS)"
    assert_eq "$size_before" "$(fsize "$T/m$cut/part/0")" "size of part/0 on the cut-off node"

    # The majority goes on, with a new leader if the old one was cut off.
    wait_until 20 "a leader among nodes ${rest[*]}" led_by "${rest[@]}"
    log "nodes ${rest[*]} follow leader $LEADER"
    for i in "${rest[@]}"; do
        echo "majority-$round-$i" >>"$T/m$i/part/0" || fail "write on node $i of the majority"
    done
    for i in "${rest[@]}"; do
        grep -qx "majority-$round-${rest[0]}" "$T/m$i/part/0" ||
            fail "node $i does not show the majority's record"
    done

    heal
    wait_until 20 "the same bytes on every mount after healing" same_everywhere
    for i in 1 2 3; do
        grep -q "refused-" "$T/m$i/part/0" && fail "a refused record shows on node $i"
        grep -qx "majority-$round-${rest[1]}" "$T/m$i/part/0" ||
            fail "node $i lacks the majority's record after healing"
    done
    log "round $round: healed, the same $(fsize "$T/m1/part/0") bytes everywhere"
done

# A write on the node that was cut off works again.
echo "after" >>"$T/m$cut/part/0" || fail "write on node $cut after healing"
wait_until 10 "the last record everywhere" same_everywhere
assert_eq "after" "$(tail -n 1 "$T/m1/part/0")" "last record on node 1"
for i in 1 2 3; do MK_PID=${PID[$i]} MNT=$T/m$i mk_stop; done
log ok
