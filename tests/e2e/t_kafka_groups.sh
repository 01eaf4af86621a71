#!/bin/bash
# Consumer groups through the Kafka protocol, with each client: kcat -G
# (librdkafka), confluent-kafka, kafka-python and kafkajs.  Per client: three
# members of a group share a topic of six partitions (each partition read by
# exactly one member: a marker record on each is delivered once in all); one
# member leaves and the other two take its partitions; then, after a restart
# of the daemon, a new member resumes from the committed offsets: it gets
# what came since and nothing consumed before.  Committed offsets show as
# lines of __consumer_offsets/0, and the group's state in .cluster.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1

KPY=/usr/bin/python3
KD=$ROOT/tests/kafka
NODE_MODULES=${E2E_NODE_MODULES:-$ROOT/build/npm/node_modules}
[[ $NODE_MODULES == /* ]] || NODE_MODULES=$ROOT/$NODE_MODULES
command -v kcat >/dev/null || fail "kcat is missing (apt-get install kcat): refusing to skip"
command -v node >/dev/null || fail "node is missing: refusing to skip"
$KPY -c 'import confluent_kafka, kafka' 2>/dev/null || fail "$KPY lacks confluent_kafka or kafka: refusing to skip"
[[ -f $NODE_MODULES/kafkajs/package.json ]] || fail "kafkajs is not installed in $NODE_MODULES (make e2e installs it): refusing to skip"
export NODE_PATH=$NODE_MODULES PYTHONDONTWRITEBYTECODE=1

port_free() { $KPY -c 'import socket, sys; socket.socket().bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null; }
KPORT=""
for ((i = 0; i < 50; i++)); do
    p=$((20000 + RANDOM % 1000))
    port_free "$p" && { KPORT=$p; break; }
done
[[ -n $KPORT ]] || fail "no free port in 20000-20999"
B=127.0.0.1:$KPORT
CLIENTS="kcat confluent kafka-python kafkajs"

# member CLIENT GROUP TOPIC OUT: one group member in the background; its pid
# in MEMBER.
member() {
    case $1 in
    kcat)
        kcat -b "$B" -G "$2" "$3" -q -u -f '%p %o %s\n' -X auto.offset.reset=earliest \
            -X session.timeout.ms=6000 -X heartbeat.interval.ms=500 \
            -X auto.commit.interval.ms=100 >>"$4" 2>>"$T/clients.log" &
        ;;
    kafkajs) node "$KD/member.js" "$B" "$2" "$3" "$4" 2>>"$T/clients.log" & ;;
    *) $KPY "$KD/member.py" "$1" "$B" "$2" "$3" "$4" 2>>"$T/clients.log" & ;;
    esac
    MEMBER=$!
    HELPER_PIDS+=($MEMBER)
}
stop_member() {
    kill -TERM "$1" 2>/dev/null
    wait_exit "$1" 20 || fail "a group member ($1) did not stop within 20 s of SIGTERM"
}
# gstat GROUP FIELD: the group's FIELD in .cluster ("" when not listed).
gstat() { grep "^group=$1 " "$MNT/.cluster" | tr ' ' '\n' | sed -n "s/^group\.$2=//p"; }
group_is() { [[ $(gstat "$1" state) == Stable && $(gstat "$1" members) == "$2" ]]; }
# seen_all FILE... : every line of $T/want is in the union of FILEs.
seen_all() {
    cat "$@" 2>/dev/null | cut -d' ' -f3 | sort -u >"$T/seen"
    comm -23 "$T/want" "$T/seen" | grep -q . && return 1
    return 0
}
# markers TOPIC TAG: one marker record per partition, through the mount.
markers() {
    local p
    : >"$T/want"
    for p in 0 1 2 3 4 5; do
        echo "$2-$p" >>"$MNT/$1/$p" || fail "append marker $2-$p"
        echo "$2-$p" >>"$T/want"
    done
    sort -o "$T/want" "$T/want"
}
# once TAG FILE...: each marker TAG-p appears exactly once in all of FILEs.
once() {
    local tag=$1 p n
    shift
    for p in 0 1 2 3 4 5; do
        n=$(cat "$@" | cut -d' ' -f3 | grep -cx "$tag-$p")
        assert_eq 1 "$n" "deliveries of marker $tag-$p to the group's members (one owner per partition)"
    done
}

mk_start -o "kafka.listen=$B"

for c in $CLIENTS; do
    topic=g-$c group=grp-$c
    mkdir "$MNT/$topic" || fail "mkdir $topic"
    setfattr -n user.partitions -v 6 "$MNT/$topic" || fail "setfattr partitions 6"
    : >"$T/want"
    for p in 0 1 2 3 4 5; do
        seq -f "$c-$p-%g" 1 20 >>"$MNT/$topic/$p" || fail "fill $topic/$p"
        seq -f "$c-$p-%g" 1 20 >>"$T/want"
    done
    sort -o "$T/want" "$T/want"
    declare -a M=()
    for i in 1 2 3; do
        member "$c" "$group" "$topic" "$T/$c.m$i"
        M[$i]=$MEMBER
    done
    wait_until 60 "$c: three members of $group, stable" group_is "$group" 3
    wait_until 30 "$c: the 120 records consumed by the group" seen_all "$T/$c.m1" "$T/$c.m2" "$T/$c.m3"
    markers "$topic" "$c-mark1"
    wait_until 30 "$c: the markers consumed" seen_all "$T/$c.m1" "$T/$c.m2" "$T/$c.m3"
    once "$c-mark1" "$T/$c.m1" "$T/$c.m2" "$T/$c.m3"
    busy=0
    for i in 1 2 3; do [[ -s $T/$c.m$i ]] && busy=$((busy + 1)); done
    assert_eq 3 "$busy" "$c: members that were given partitions"
    log "$c: 3 members split 6 partitions"

    stop_member "${M[3]}"
    wait_until 60 "$c: two members left in $group, stable" group_is "$group" 2
    cp "$T/$c.m3" "$T/$c.m3.final"
    markers "$topic" "$c-mark2"
    wait_until 30 "$c: the markers consumed by the two left" seen_all "$T/$c.m1" "$T/$c.m2"
    once "$c-mark2" "$T/$c.m1" "$T/$c.m2"
    assert_file_eq "$T/$c.m3.final" "$T/$c.m3" "$c: what the member that left got after it left (nothing)"
    log "$c: one member left, the two others took its partitions"
    stop_member "${M[1]}"
    stop_member "${M[2]}"
    wait_until 30 "$c: $group empty" bash -c "grep -q '^group=$group group.state=Empty ' '$MNT/.cluster'"
    grep -q "^commit group=$group topic=$topic partition=5 offset=" "$MNT/__consumer_offsets/0" ||
        fail "$c: no commit of $group for $topic/5 in __consumer_offsets/0"
done

# A restart; then each group's new member gets only what came since.
mk_stop
mk_start -o "kafka.listen=$B"
for c in $CLIENTS; do
    topic=g-$c group=grp-$c
    markers "$topic" "$c-mark3"
    member "$c" "$group" "$topic" "$T/$c.after"
    wait_until 60 "$c: the new member's markers" seen_all "$T/$c.after"
    sleep 1 # anything older would have come first (offsets are in order)
    stop_member "$MEMBER"
    cut -d' ' -f3 "$T/$c.after" | sort >"$T/$c.after.values"
    assert_file_eq "$T/want" "$T/$c.after.values" "$c: what a new member of $group gets after the restart (only what came since the commits)"
    log "$c: resumed from the committed offsets after a restart"
done
log "PASS"
