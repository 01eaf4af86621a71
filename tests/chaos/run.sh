#!/bin/bash
# run.sh — the chaos driver: a Jepsen-style run against a real minikafka
# cluster on this machine.  It starts NODES daemons on 127.0.0.1..N, runs
# writers (cwriter) and readers (creader) on every partition from several
# mounts, injects faults from a schedule that is a pure function of the seed,
# heals, waits for convergence, copies every partition file from every mount
# and hands the run dir to check.py.  See tests/chaos/README.md, "Driver".
#
#   tests/chaos/run.sh [-n 3|5] [-s SEED] [-d SECS] [-o OUTDIR] [-f FAULTS]
#                      [-t TOPICSxPARTITIONS] [-e ERRNOS] [-k]
#
# Exit 0 iff check.py and the driver's own checks all passed.  Needs root,
# /dev/fuse, fusermount3, iptables: a missing one fails the run, never skips.
# MK=build/asan/minikafka runs the ASan build.
set -uo pipefail
# The whole script is one brace group: bash parses it before it runs any of
# it, so editing this file during a run (or a git checkout) cannot change it.
{
CHAOS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$CHAOS_DIR/../.." && pwd)
ALL_FAULTS=kill,kill2,powercut,pause,partition-majority,isolate,bridge,oneway,disk-full,wipe,corrupt,leader-transfer,topic-create
DEFAULT_FAULTS=$ALL_FAULTS

usage() {
    cat >&2 <<EOF
usage: $0 [-n 3|5] [-s SEED] [-d SECS] [-o OUTDIR] [-f FAULTS] [-t TxP] [-e ERRNOS] [-k]
  -n NODES   3 or 5 (default 3)
  -s SEED    schedule seed (default: random; printed, replays the same schedule)
  -d SECS    seconds of faults (default 60)
  -o OUTDIR  run dir (default build/chaos/run-SEED-NODESn)
  -f FAULTS  comma list from: ${ALL_FAULTS//,/ }
             (default: all)
  -t TxP     topics x partitions (default 2x3)
  -e ERRNOS  passed to check.py as --definite-errnos
  -k         keep the data dirs and final copies on success too
EOF
    exit 2
}
pre_fail() { echo "chaos: FAIL: $*" >&2; exit 1; }

NODES=3 SEED="" SECS=60 OUT="" FAULTS=$DEFAULT_FAULTS TOPICS=2x3 KEEP=0 DEFINITE=""
while getopts "n:s:d:o:f:t:e:kh" opt; do
    case $opt in
    n) NODES=$OPTARG ;;
    s) SEED=$OPTARG ;;
    d) SECS=$OPTARG ;;
    o) OUT=$OPTARG ;;
    f) FAULTS=$OPTARG ;;
    t) TOPICS=$OPTARG ;;
    e) DEFINITE=$OPTARG ;;
    k) KEEP=1 ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
(($# == 0)) || usage
[[ $NODES == 3 || $NODES == 5 ]] || pre_fail "-n must be 3 or 5"
[[ -z $SEED || $SEED =~ ^[0-9]{1,9}$ ]] || pre_fail "-s must be a number below 10^9"
[[ $SECS =~ ^[0-9]+$ ]] && ((SECS >= 1 && SECS <= 86400)) || pre_fail "-d must be 1 to 86400 seconds"
[[ $TOPICS =~ ^([1-9][0-9]?)x([1-9][0-9]?)$ ]] || pre_fail "-t must be TOPICSxPARTITIONS, e.g. 2x3"
NTOPICS=${BASH_REMATCH[1]} NPARTS=${BASH_REMATCH[2]}
for f in ${FAULTS//,/ }; do
    [[ ,$ALL_FAULTS, == *",$f,"* ]] || pre_fail "unknown fault '$f' (known: $ALL_FAULTS)"
done
[[ -n ${FAULTS//,/} ]] || pre_fail "-f names no fault"
[[ -n $SEED ]] || SEED=$((SRANDOM % 1000000000))

# The whole run is bounded: the fault phase plus generous room for setup and
# the end (heal, recovery, convergence, copies, check.py).  --foreground keeps
# Ctrl-C working; on expiry the driver gets SIGTERM and cleans up.
if [[ -z ${CHAOS_UNDER_TIMEOUT:-} ]]; then
    export CHAOS_UNDER_TIMEOUT=1
    exec timeout --foreground -k 30 $((SECS + 1200)) bash "$0" -n "$NODES" -s "$SEED" -d "$SECS" \
        ${OUT:+-o "$OUT"} -f "$FAULTS" -t "$TOPICS" ${DEFINITE:+-e "$DEFINITE"} \
        $( ((KEEP)) && echo -k)
fi

# --- preconditions: fail loudly, never skip -----------------------------------------
PY=${PYTHON:-python3}
MK=${MK:-build/minikafka}
[[ $MK == /* ]] || MK=$ROOT/$MK
CHAOS_BIN=${CHAOS_BIN:-build/chaos}
[[ $CHAOS_BIN == /* ]] || CHAOS_BIN=$ROOT/$CHAOS_BIN
CWRITER=$CHAOS_BIN/cwriter CREADER=$CHAOS_BIN/creader
CHECK=${CHAOS_CHECK:-$CHAOS_DIR/check.py}
[[ $(id -u) == 0 ]] || pre_fail "needs root (iptables, tmpfs mounts): refusing to skip"
[[ -c /dev/fuse ]] || pre_fail "/dev/fuse is missing: FUSE is required, refusing to skip"
for c in fusermount3 iptables setfattr getfattr fallocate timeout ss "$PY"; do
    command -v "$c" >/dev/null || pre_fail "$c is missing (make deps): refusing to skip"
done
iptables -L INPUT -n >/dev/null 2>&1 || pre_fail "iptables cannot be used here (root and nf_tables needed)"
[[ -x $MK ]] || pre_fail "daemon binary $MK does not exist (make, or make build/asan/minikafka)"
[[ -x $CWRITER && -x $CREADER ]] || pre_fail "$CWRITER or $CREADER missing (make build/chaos/cwriter build/chaos/creader)"
[[ -f $CHECK ]] || pre_fail "$CHECK is missing"

[[ -n $OUT ]] || OUT=$ROOT/build/chaos/run-$SEED-${NODES}n
[[ $OUT == /* ]] || OUT=$PWD/$OUT
OUT=${OUT%/}
mounted_under() { awk -v p="$1/" 'index($5, p) == 1 { f = 1 } END { exit !f }' /proc/self/mountinfo; }
if [[ -e $OUT ]]; then
    mounted_under "$OUT" && pre_fail "something is still mounted under $OUT"
    [[ -f $OUT/driver.log || -z $(ls -A "$OUT") ]] || pre_fail "$OUT exists and is not a chaos run dir"
    rm -rf --one-file-system "$OUT" || pre_fail "cannot remove the old $OUT"
fi
mkdir -p "$OUT"/{writers,readers,daemons,final} || pre_fail "mkdir $OUT"
WORK=$OUT/work
mkdir -p "$WORK" || pre_fail "mkdir $WORK"

source "$CHAOS_DIR/lib.sh" || pre_fail "cannot source $CHAOS_DIR/lib.sh"
CHAIN=MKCHAOS$$
HELPER_SECS=$((SECS + 1200))
READER_POLL_MS=100
DIED=0

# --- cleanup: always, whatever happened -------------------------------------------------
cleanup() {
    local rc=$? n p m
    trap - EXIT TERM INT
    ((DIED)) && rc=1
    net_teardown
    for n in "${!PID[@]}"; do signal CONT "${PID[$n]}"; done
    for p in "${!HPID[@]}"; do signal TERM "$p"; done
    for n in "${!PID[@]}"; do signal TERM "${PID[$n]}"; done
    for ((m = 0; m < 100; m++)); do
        local any=0
        for n in "${!PID[@]}"; do alive "${PID[$n]}" && any=1; done
        for p in "${!HPID[@]}"; do alive "$p" && any=1; done
        ((any)) || break
        sleep 0.1
    done
    for n in "${!PID[@]}"; do signal KILL "${PID[$n]}"; done
    for p in "${!HPID[@]}"; do signal KILL "$p"; done
    for ((n = 1; n <= NODES; n++)); do
        m=$WORK/m$n
        if is_mounted "$m"; then fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null; fi
    done
    for m in "${TMPFS[@]}"; do is_mounted "$m" && { umount "$m" 2>/dev/null || umount -l "$m"; }; done
    if [[ $rc != 0 ]]; then
        echo "chaos: FAILED (seed $SEED, $NODES nodes): everything kept in $OUT" >&2
        echo "chaos: replay: bash tests/chaos/run.sh -n $NODES -s $SEED -d $SECS -f $FAULTS -t $TOPICS" >&2
    elif ((KEEP == 0)); then
        if mounted_under "$WORK"; then
            echo "chaos: something is still mounted under $WORK: kept" >&2
        else
            rm -rf --one-file-system "$WORK" "$OUT/final"
            echo "chaos: passed; logs in $OUT (data dirs and final copies removed; -k keeps them)"
        fi
    fi
    exit "$rc"
}
TMPFS=()
trap cleanup EXIT
trap 'dlog "interrupted (SIGTERM/SIGINT, or the run limit of $((SECS + 1200)) s)"; DIED=1; exit 124' TERM INT

# --- the schedule ----------------------------------------------------------------------------
dlog "chaos: seed=$SEED nodes=$NODES duration=${SECS}s topics=${NTOPICS}x$NPARTS faults=$FAULTS"
dlog "chaos: replay with: bash tests/chaos/run.sh -n $NODES -s $SEED -d $SECS -f $FAULTS -t $TOPICS"
dlog "chaos: run dir $OUT"
gen_schedule "$SEED" "$NODES" "$SECS" "$FAULTS" >"$OUT/schedule.txt" || die "the schedule generator failed"
DISK_NODE=0
declare -A F_PHASE F_AT F_DUR F_KIND F_ARG F_NODE F_STATE PH_GAP PH_FAULTS FCOUNT
NF=0 NPH=0
while read -r a b c d e f; do
    case $a in
    disk) DISK_NODE=$b ;;
    phase) NPH=$b PH_GAP[$b]=${c#gap=} ;;
    fault)
        NF=$((NF + 1))
        F_PHASE[$NF]=$b F_AT[$NF]=${c#at=} F_DUR[$NF]=${d#dur=} F_KIND[$NF]=$e F_ARG[$NF]=$f
        PH_FAULTS[$b]+="$NF "
        ;;
    esac
done <"$OUT/schedule.txt"
((NPH > 0)) || die "empty schedule"

# --- the cluster ---------------------------------------------------------------------------------
cp "$MK" "$WORK/minikafka" || die "cp $MK"
MKBIN=$WORK/minikafka # a rebuild during the run does not change what restarts run
qlog "daemon: $MK (md5 $(md5sum <"$MK" | cut -c1-32)); tree $(git -C "$ROOT" describe --always --dirty 2>/dev/null)"
PORT=""
for ((i = 0; i < 50; i++)); do
    p=$((27000 + SRANDOM % 5000))
    if [[ -z $(ss -Htan "( sport = :$p or dport = :$p )") ]]; then PORT=$p; break; fi
done
[[ -n $PORT ]] || die "no free port in 27000-31999"
for ((n = 1; n <= NODES; n++)); do PEERS+="${PEERS:+,}peer=$n@127.0.0.$n:$PORT"; done
SEGBYTES=262144
# The power-cut hook is on only when power cuts are among the faults.
[[ ,$FAULTS, == *,powercut,* ]] && export MINIKAFKA_POWERCUT=1
MK_OPTS="request.timeout.ms=5000,default.replication.factor=3,num.partitions=$NPARTS,log.segment.bytes=$SEGBYTES"
dlog "cluster: $NODES nodes on 127.0.0.1-$NODES:$PORT, $MK_OPTS"
net_setup
if ((DISK_NODE)); then
    mkdir -p "$WORK/tmpfs$DISK_NODE"
    mount -t tmpfs -o size=64m tmpfs "$WORK/tmpfs$DISK_NODE" || die "mount -t tmpfs on $WORK/tmpfs$DISK_NODE"
    TMPFS+=("$WORK/tmpfs$DISK_NODE")
    dlog "cluster: node $DISK_NODE keeps its data dir on a 64 MiB tmpfs (disk-full faults)"
fi
for ((n = 1; n <= NODES; n++)); do node_start "$n" || die "node $n did not start"; done

TOPIC_LIST=()
for ((k = 0; k < NTOPICS; k++)); do TOPIC_LIST+=("c$k"); done
declare -A REPLICAS LEADER
PARTS=()
for t in "${TOPIC_LIST[@]}"; do
    mt 20 mkdir "$(mnt 1)/$t" || die "mkdir $(mnt 1)/$t failed"
    for ((p = 0; p < NPARTS; p++)); do PARTS+=("$t/$p"); done
done
# ready PARTS...: every node names the same metadata leader, and for each
# partition the same leader, which says role=leader itself; sets LEADER and
# REPLICAS.  READY_WHY says what is missing.
READY_WHY=""
ready() {
    local n txt l x ml="" part
    declare -A T
    for n in $(up_nodes); do
        T[$n]=$(ctext "$n")
        x=$(field "$(mline "${T[$n]}")" leader)
        [[ -n $x && $x != 0 ]] || { READY_WHY="node $n: no metadata leader"; return 1; }
        [[ -z $ml ]] && ml=$x
        [[ $x == "$ml" ]] || { READY_WHY="metadata leader: node $n says $x, another $ml"; return 1; }
    done
    for part in "$@"; do
        l=""
        for n in $(up_nodes); do
            x=$(field "$(pline "${T[$n]}" "$part")" leader)
            [[ -n $x && $x != 0 ]] || { READY_WHY="$part: node $n knows no leader"; return 1; }
            [[ -z $l ]] && l=$x
            [[ $x == "$l" ]] || { READY_WHY="$part: node $n says leader $x, another $l"; return 1; }
        done
        [[ -n ${T[$l]:-} && $(field "$(pline "${T[$l]}" "$part")" role) == leader ]] ||
            { READY_WHY="$part: node $l is named leader but does not lead"; return 1; }
        LEADER[$part]=$l
        REPLICAS[$part]=$(field "$(pline "${T[$l]}" "$part")" replicas)
        ((PREFER)) && [[ ${REPLICAS[$part]%%,*} != "$l" ]] &&
            { READY_WHY="$part: led by $l, not yet by its preferred replica"; return 1; }
    done
    return 0
}
# The preferred replica takes the lead within ~2 s of being in sync: wait
# for that (20 s) so that "the leader's writer" stays on the leader.
for ((i = 0; i < 60; i++)); do PREFER=$((i < 20)); ready "${PARTS[@]}" && break; sleep 1; done
((i < 60)) || die "no agreed leaders within 60 s: $READY_WHY"
for part in "${PARTS[@]}"; do qlog "$part: leader ${LEADER[$part]} replicas ${REPLICAS[$part]}"; done
dlog "cluster: ready after $(rel) s: one metadata leader, every partition led (${#PARTS[@]} partitions, RF3)"

# --- the workload ------------------------------------------------------------------------------------
# Per partition: a writer on its leader's mount, one on another replica's and,
# with 5 nodes, one on each node without a replica (3 nodes: on the third).
# Batches alternate 1 and 5.  The gap keeps a partition near 1.5 MB in all.
WPERPART=$((NODES == 3 ? 3 : 4))
GAP_US=$((WPERPART * (SECS + 40) * 96))
((GAP_US < 20000)) && GAP_US=20000
WRITERS=()
k=0
for part in "${PARTS[@]}"; do
    t=${part%/*} p=${part#*/} l=${LEADER[$part]}
    nodes=("$l")
    for x in ${REPLICAS[$part]//,/ }; do [[ $x != "$l" ]] && { nodes+=("$x"); break; }; done
    for ((n = 1; n <= NODES; n++)); do
        [[ ,${REPLICAS[$part]}, == *",$n,"* ]] || nodes+=("$n")
    done
    ((NODES == 3)) && for x in ${REPLICAS[$part]//,/ }; do [[ " ${nodes[*]} " == *" $x "* ]] || nodes+=("$x"); done
    j=0
    for n in "${nodes[@]}"; do
        b=$(((j + k) % 2 == 0 ? 1 : 5))
        spawn_writer "$t" "$p" "$n" "$b" -g "$GAP_US" -d "$HELPER_SECS"
        WRITERS+=("$LAST_WID")
        j=$((j + 1))
    done
    for ((n = 1; n <= NODES; n++)); do spawn_reader "$t" "$p" "$n"; done
    k=$((k + 1))
done
dlog "workload: ${#WRITERS[@]} writers (gap ${GAP_US} us, batches 1 and 5), $((NEXT_RID - 1)) readers (every partition on every mount)"

# --- faults -------------------------------------------------------------------------------------------
# A fault's start and heal: f_start IDX / f_heal IDX.  F_STATE: on (applied),
# skip (not applied: no target), done (healed).
BUSY=" "        # nodes a fault of this phase holds
LAST_HEAL_US=0
NEW_TOPICS=()
NWIPE=0

# leaders_now: the nodes (up, not stopped) that lead some partition by their own word.
leaders_now() {
    local n
    for n in $(up_nodes); do
        grep -q '^partition=.* role=leader' <<<"$(ctext "$n")" && echo "$n"
    done
}
# pick_node R [leader]: a node not held by another fault, from R; "leader"
# prefers partition leaders.  Empty if none.
pick_node() {
    local r=$1 c=() n
    if [[ ${2:-} == leader ]]; then
        for n in $(leaders_now); do [[ $BUSY == *" $n "* ]] || c+=("$n"); done
    fi
    if ((${#c[@]} == 0)); then
        [[ ${2:-} == leader ]] && qlog "pick_node: no free leader (up: $(up_nodes | tr '\n' ' ')busy:$BUSY)"
        for n in $(up_nodes); do [[ $BUSY == *" $n "* ]] || c+=("$n"); done
    fi
    ((${#c[@]})) && echo "${c[r % ${#c[@]}]}"
}
what_leads() { # NODE: the partitions it leads, for the log
    ctext "$1" | awk '/^partition=/ && / role=leader/ { sub("partition=", "", $1); printf "%s%s", s, $1; s = "," }'
}
# rebuilding: the nodes whose data dir still says rebuild.
rebuilding() {
    local n
    for ((n = 1; n <= NODES; n++)); do [[ -e $(datadir "$n")/rebuild ]] && echo "$n"; done
}
argr() { local a=$1; a=${a#r=}; echo "${a%% *}"; }

f_start() {
    local i=$1 kind=${F_KIND[$1]} arg=${F_ARG[$1]} r n x sets part out
    r=$(argr "$arg")
    F_STATE[$i]=on
    case $kind in
    kill2)
        # A partition's leader and another of its replicas at once: the two
        # restart together and must not lose what was committed.
        n=$(pick_node "$r" leader)
        [[ -n $n ]] || { f_skip "$i" "no node to kill"; return; }
        local m="" reps
        part=$(what_leads "$n")
        part=${part%%,*}
        reps=${REPLICAS[$part]:-}
        for x in ${reps//,/ }; do
            [[ $x != "$n" && $BUSY != *" $x "* && ${UP[$x]} == 1 ]] && { m=$x; break; }
        done
        [[ -n $m ]] || m=$(BUSY="$BUSY$n " pick_node $((r >> 8)))
        [[ -n $m ]] || { f_skip "$i" "no second node to kill"; return; }
        F_NODE[$i]="$n $m" BUSY+="$n $m "
        if [[ ,$reps, == *",$m,"* ]]; then x="its replica $m"; else x="node $m"; fi
        dlog "fault=$kind nodes=$n,$m (node $n leads ${part:-nothing}; with $x) for ${F_DUR[$i]}s"
        node_kill9 "$n"
        node_kill9 "$m"
        ;;
    powercut)
        # one node (a leader), a majority (a leader and others) or all of them
        local mode=${arg##*mode=} want c=()
        n=$(pick_node "$r" leader)
        [[ -n $n ]] || { f_skip "$i" "no node"; return; }
        c=("$n")
        case $mode in one) want=1 ;; majority) want=$((NODES / 2 + 1)) ;; *) want=$NODES ;; esac
        for x in $(up_nodes); do
            ((${#c[@]} < want)) || break
            [[ $x != "$n" && $BUSY != *" $x "* ]] && c+=("$x")
        done
        F_NODE[$i]=${c[*]} BUSY+="${c[*]} "
        x=$(what_leads "$n")
        dlog "fault=$kind mode=$mode nodes=$(IFS=,; echo "${c[*]}") (node $n leads ${x:-nothing}) for ${F_DUR[$i]}s"
        node_powercut "${c[@]}"
        ;;
    kill | pause)
        n=$(pick_node "$r" leader)
        [[ -n $n ]] || { f_skip "$i" "no node to $kind"; return; }
        F_NODE[$i]=$n BUSY+="$n "
        x=$(what_leads "$n")
        dlog "fault=$kind node=$n (leads ${x:-nothing}) for ${F_DUR[$i]}s"
        if [[ $kind == kill ]]; then node_kill9 "$n"; else node_stopsig "$n"; fi
        ;;
    partition-majority)
        sets=${arg#sets=}
        dlog "fault=$kind nodes=$sets for ${F_DUR[$i]}s"
        cut_sets "$sets"
        ;;
    isolate)
        n=$(pick_node "$r" leader)
        [[ -n $n ]] || { f_skip "$i" "no node to isolate"; return; }
        F_NODE[$i]=$n BUSY+="$n "
        sets=$n"|"
        for ((x = 1; x <= NODES; x++)); do [[ $x != "$n" ]] && sets+="$x,"; done
        sets=${sets%,}
        dlog "fault=$kind nodes=$sets (node $n leads $(what_leads "$n")) for ${F_DUR[$i]}s"
        cut_sets "$sets"
        ;;
    bridge)
        sets=${arg#sets=}
        local -a h
        IFS='|' read -r -a h <<<"$sets"
        dlog "fault=$kind nodes=$sets (only node ${h[1]} sees both sides) for ${F_DUR[$i]}s"
        cut_sets "${h[0]}|${h[2]}"
        ;;
    oneway)
        n=$(pick_node "$r" leader)
        [[ -n $n ]] || { f_skip "$i" "no node"; return; }
        local o=()
        for ((x = 1; x <= NODES; x++)); do [[ $x != "$n" ]] && o+=("$x"); done
        x=${o[(r >> 8) % ${#o[@]}]}
        dlog "fault=$kind nodes=$n>$x (packets from $n to $x dropped, $x to $n pass; $n leads $(what_leads "$n")) for ${F_DUR[$i]}s"
        drop "$n" "$x"
        ;;
    disk-full)
        n=$DISK_NODE
        local fs=$WORK/tmpfs$n avail
        avail=$(df -B1 --output=avail "$fs" | tail -1 | tr -d ' ')
        fallocate -l "$avail" "$fs/filler" 2>/dev/null || head -c "$avail" /dev/zero >"$fs/filler" 2>/dev/null
        dd if=/dev/zero of="$fs/filler2" bs=4k 2>/dev/null
        dlog "fault=$kind node=$n (its tmpfs filled: $avail bytes; $(df -B1 --output=avail "$fs" | tail -1 | tr -d ' ') left) for ${F_DUR[$i]}s"
        ;;
    wipe | corrupt)
        x=$(rebuilding)
        [[ -z $x ]] || { f_skip "$i" "node(s) $(echo $x) still rebuilding after an earlier wipe"; return; }
        n=$(pick_node "$r")
        [[ -n $n ]] || { f_skip "$i" "no node"; return; }
        F_NODE[$i]=$n BUSY+="$n "
        local d
        d=$(datadir "$n")
        if [[ $kind == wipe ]]; then
            NWIPE=$((NWIPE + 1))
            dlog "fault=$kind node=$n (stopped, data dir removed, started again after ${F_DUR[$i]}s)"
            node_stop "$n"
            cp "$d/minikafka.log" "$OUT/daemons/n$n.before-wipe-$NWIPE.minikafka.log" 2>/dev/null
            rm -rf --one-file-system "$d"
        else
            node_stop "$n"
            out=$(corrupt_one "$d" "$r" "${arg##*mode=}")
            dlog "fault=$kind node=$n ${arg##*mode=}: $out (started again after ${F_DUR[$i]}s)"
        fi
        ;;
    leader-transfer)
        part=${ALL_PARTS[r % ${#ALL_PARTS[@]}]}
        local reps
        reps=${REPLICAS[$part]:-}
        x=$(cut -d, -f$(((r >> 8) % 3 + 1)) <<<"$reps")
        n=$(pick_node $((r >> 16)))
        [[ -n $x && -n $n ]] || { f_skip "$i" "no target for $part"; return; }
        out=$(mt 15 setfattr -n user.leader -v "$x" "$(mnt "$n")/$part" 2>&1) && out=OK
        dlog "fault=$kind part=$part to=$x on=$n result=${out//$'\n'/ }"
        ;;
    topic-create)
        x=n$((${#NEW_TOPICS[@]} + 1))
        n=$(pick_node "$r")
        [[ -n $n ]] || { f_skip "$i" "no node"; return; }
        NEW_TOPICS+=("$x")
        if out=$(mt 15 mkdir "$(mnt "$n")/$x" 2>&1); then
            local m p
            m=$(pick_node $((r >> 8)))
            p=$(((r >> 16) % NPARTS))
            spawn_writer "$x" "$p" "$m" 1 -n 20 -g 50000 -d 60
            dlog "fault=$kind topic=$x on=$n result=OK; writer $LAST_WID: 20 writes to $x/$p on node $m, a reader on every mount"
            for ((m = 1; m <= NODES; m++)); do spawn_reader "$x" "$p" "$m"; done
        else
            dlog "fault=$kind topic=$x on=$n result=${out//$'\n'/ } (checked again after the heal)"
        fi
        ;;
    esac
    FCOUNT[$kind]=$((${FCOUNT[$kind]:-0} + 1))
}
f_skip() { F_STATE[$1]=skip; dlog "fault=${F_KIND[$1]} skipped: $2"; }

f_heal() {
    local i=$1 kind=${F_KIND[$1]} n=${F_NODE[$1]:-}
    [[ ${F_STATE[$i]} == on ]] || return 0
    F_STATE[$i]=done
    case $kind in
    kill | kill2 | powercut | wipe | corrupt)
        local x
        for x in $n; do
            if node_start "$x"; then dlog "heal=$kind node=$x started again"; else dlog "heal=$kind node=$x did NOT start"; fi
        done
        ;;
    pause) node_cont "$n"; dlog "heal=$kind node=$n SIGCONT" ;;
    partition-majority | isolate | bridge | oneway) net_heal; dlog "heal=$kind network whole again" ;;
    disk-full) rm -f "$WORK/tmpfs$DISK_NODE/filler" "$WORK/tmpfs$DISK_NODE/filler2"; dlog "heal=$kind node=$DISK_NODE tmpfs freed" ;;
    *) return 0 ;;
    esac
    LAST_HEAL_US=$(now_us)
}

# corrupt_one DATADIR R MODE: damage one segment .log of a stopped node;
# prints what it did.
corrupt_one() {
    local d=$1 r=$2 mode=$3 dirs=() dir segs=() f size off cut
    for dir in "$d"/topics/*/*/; do
        compgen -G "$dir*.log" >/dev/null && dirs+=("$dir")
    done
    ((${#dirs[@]})) || { echo "no segment to damage"; return; }
    dir=${dirs[r % ${#dirs[@]}]}
    mapfile -t segs < <(ls "$dir"*.log | sort)
    if [[ $mode == flip-sealed && ${#segs[@]} -gt 1 ]]; then
        f=${segs[(r >> 8) % (${#segs[@]} - 1)]}
    else
        f=${segs[-1]}
        [[ $mode == flip-sealed ]] && mode=flip-active
    fi
    size=$(stat -c %s "$f")
    ((size > 0)) || { echo "$f is empty: nothing damaged"; return; }
    if [[ $mode == cut-tail ]]; then
        cut=$(((r >> 12) % 200 + 1))
        ((cut > size)) && cut=$size
        truncate -s $((size - cut)) "$f"
        echo "cut the last $cut of $size bytes of ${f#"$d"/}"
    else
        off=$((size / 2))
        "$PY" -c 'import sys
f, off = sys.argv[1], int(sys.argv[2])
with open(f, "r+b") as h:
    h.seek(off); b = h.read(8); h.seek(off); h.write(bytes(x ^ 0x5a for x in b))' "$f" "$off"
        echo "flipped 8 bytes at $off of $size bytes of ${f#"$d"/}"
    fi
}

# probe_recovery LABEL: one probe writer per partition (rotating over the
# nodes), each stopped at its first acknowledged write; the time from the
# last heal to the slowest partition's first ack is the recovery time.
declare -A PROBE_AT
ROT=0 SLOWEST_MS=0 SLOWEST_AT=""
probe_recovery() {
    local label=$1 heal=$LAST_HEAL_US part n w line pend=() pids=() ms max=0 maxp="" i
    local deadline=$((LAST_HEAL_US + 60000000))
    declare -A PW
    for part in "${PARTS[@]}"; do
        n=$((ROT % NODES + 1)) ROT=$((ROT + 1))
        spawn_writer "${part%/*}" "${part#*/}" "$n" 1 -g 100000 -d 70
        PW[$part]=$LAST_WID
        pids+=("${WPID[$LAST_WID]}")
        pend+=("$part")
    done
    while ((${#pend[@]})) && (($(now_us) < deadline)); do
        local still=()
        for part in "${pend[@]}"; do
            w=${PW[$part]}
            line=$(grep -m1 ' ok 0$' "$OUT/writers/$w.log" 2>/dev/null)
            if [[ -n $line ]]; then
                read -r _ ms _ <<<"$line"
                ms=$(((ms / 1000 - heal) / 1000))
                ((ms < 0)) && ms=0
                ((ms >= max)) && max=$ms maxp=$part
                signal TERM "${WPID[$w]}"
            else
                still+=("$part")
            fi
        done
        pend=("${still[@]}")
        ((${#pend[@]})) && sleep 0.1
        watch_daemons
    done
    stop_pids 10 "${pids[@]}"
    for part in "${pend[@]}"; do
        check_fail recovered "$label: no write acknowledged on $part within 60 s of the heal"
        max=60000 maxp=$part
    done
    if ((${#pend[@]})); then
        dlog "recovery $label: NOT recovered: no write acknowledged within 60 s on ${pend[*]}"
    else
        dlog "recovery $label: every partition took a write $(fmt_ms "$max") s after the heal (slowest $maxp)"
    fi
    if ((max > SLOWEST_MS)); then SLOWEST_MS=$max SLOWEST_AT="$label, $maxp"; fi
}

# sleep_until US: sleep in short steps, watching the daemons.
sleep_until() {
    local left
    while :; do
        left=$(($1 - $(now_us)))
        ((left <= 0)) && return
        ((left > 250000)) && left=250000
        sleep "$(printf '0.%06d' "$left")"
        watch_daemons
    done
}

check_reg daemons-alive
check_reg daemons-clean
check_reg recovered
ALL_PARTS=("${PARTS[@]}")
FAULT_END=$(($(now_us) + SECS * 1000000))
dlog "faults: $SECS s of faults from now (schedule in $OUT/schedule.txt)"
for ((ph = 1; ph <= NPH; ph++)); do
    (($(now_us) < FAULT_END)) || break
    BUSY=" "
    t0=$(now_us)
    LAST_HEAL_US=$t0 # a phase of instant faults recovers from its start
    while read -r -u 9 at act i; do
        sleep_until $((t0 + at))
        "f_$act" "$i"
    done 9< <(for i in ${PH_FAULTS[$ph]}; do
        a=$(awk -v a="${F_AT[$i]}" 'BEGIN { printf "%d", a * 1000000 }')
        e=$(awk -v a="${F_AT[$i]}" -v d="${F_DUR[$i]}" 'BEGIN { printf "%d", (a + d) * 1000000 }')
        echo "$a start $i"
        echo "$e heal $i"
    done | sort -n -k1,1 -s)
    probe_recovery "after phase $ph"
    sleep_until $(($(now_us) + $(awk -v g="${PH_GAP[$ph]}" 'BEGIN { printf "%d", g * 1000000 }')))
done
dlog "faults: done after $((ph - 1)) phases"

# --- the end: heal, recover, stop, converge, copy, check ----------------------------------------------
for ((i = 1; i <= NF; i++)); do [[ ${F_STATE[$i]:-} == on ]] && f_heal "$i"; done
net_heal
rm -f "$WORK/tmpfs$DISK_NODE/filler" "$WORK/tmpfs$DISK_NODE/filler2" 2>/dev/null
for ((n = 1; n <= NODES; n++)); do
    [[ ${PAUSED[$n]} == 1 ]] && node_cont "$n"
    [[ ${UP[$n]} == 1 ]] || node_start "$n"
done
LAST_HEAL_US=$(now_us)
dlog "heal: everything healed (network, stopped and dead nodes, disk)"
probe_recovery "after the final heal"

wpids=()
for p in "${!HPID[@]}"; do [[ ${HPID[$p]} == writer* ]] && wpids+=("$p"); done
stop_pids 30 "${wpids[@]}"
check_reg writers-stopped
((STOP_KILLED == 0)) || check_fail writers-stopped "$STOP_KILLED writer(s) still in a write 30 s after SIGTERM (SIGKILLed; their last attempt stays unknown)"
dlog "workload: writers stopped ($STOP_KILLED needed SIGKILL)"

# The topics made during the faults: those that exist now count.
check_reg topics-agree
for x in "${NEW_TOPICS[@]}"; do
    seen="" missing=""
    for ((n = 1; n <= NODES; n++)); do
        if mt 10 test -d "$(mnt "$n")/$x"; then seen+="$n "; else missing+="$n "; fi
    done
    if [[ -n $seen ]]; then
        TOPIC_LIST+=("$x")
        for ((p = 0; p < NPARTS; p++)); do ALL_PARTS+=("$x/$p"); done
        [[ -z $missing ]] || check_fail topics-agree "topic $x is on nodes $seen but not on $missing"
    fi
done
qlog "topics now: ${TOPIC_LIST[*]}"

# converged: for every partition one leader; on it commit == offset.next; on
# every replica the same offset.next and commit; every mount the same size,
# the leader's position.end; no node still rebuilding.
CONV_WHY=""
declare -A FINAL_SIZE STALE
converged() {
    local n part l ln x sz
    declare -A T
    STALE=()
    for ((n = 1; n <= NODES; n++)); do T[$n]=$(ctext "$n"); done
    x=$(rebuilding)
    [[ -z $x ]] || { CONV_WHY="node(s) $(echo $x) still rebuilding"; return 1; }
    for part in "${ALL_PARTS[@]}"; do
        l=$(field "$(pline "${T[1]}" "$part")" leader)
        [[ -n $l && $l != 0 ]] || { CONV_WHY="$part: node 1 knows no leader"; return 1; }
        ln=$(pline "${T[$l]:-}" "$part")
        [[ $(field "$ln" role) == leader ]] || { CONV_WHY="$part: node $l named leader, does not lead"; return 1; }
        local next commit endp
        next=$(field "$ln" offset.next) commit=$(field "$ln" commit) endp=$(field "$ln" position.end)
        [[ $commit == "$next" ]] || { CONV_WHY="$part: leader $l commit=$commit offset.next=$next"; return 1; }
        for ((n = 1; n <= NODES; n++)); do
            x=$(pline "${T[$n]}" "$part")
            if [[ $(field "$x" leader) != "$l" ]]; then
                # A node without a replica may show a stale leader (0 when it
                # was down as the topic was made) until a request goes through
                # it: a note, not a failure; its size below still counts.
                if [[ ,$(field "$ln" replicas), == *",$n,"* ]]; then
                    CONV_WHY="$part: node $n names leader $(field "$x" leader), not $l"
                    return 1
                fi
                STALE[$part/$n]="$part: node $n (no replica) names leader $(field "$x" leader), not $l"
            fi
            if [[ ,$(field "$ln" replicas), == *",$n,"* ]]; then
                [[ $(field "$x" offset.next) == "$next" && $(field "$x" commit) == "$next" ]] ||
                    { CONV_WHY="$part: replica $n offset.next=$(field "$x" offset.next) commit=$(field "$x" commit), leader $next"; return 1; }
            fi
            sz=$(mt 5 stat -c %s "$(mnt "$n")/$part" 2>/dev/null)
            [[ $sz == "$endp" ]] || { CONV_WHY="$part: size ${sz:-?} on node $n, leader's position.end $endp"; return 1; }
        done
        FINAL_SIZE[$part]=$endp
    done
    return 0
}
check_reg converged
t_conv=$(now_us)
# A deadline, not a count: a converged() over hung mounts takes seconds.
conv_ok=0
while :; do
    converged && { conv_ok=1; break; }
    (($(now_us) - t_conv >= 120000000)) && break
    watch_daemons
    sleep 1
done
for x in "${STALE[@]}"; do dlog "note: stale leader view: $x"; done
if ((conv_ok)); then
    dlog "converged: $(fmt_ms $((($(now_us) - t_conv) / 1000))) s after the writers stopped"
else
    check_fail converged "not converged within 120 s: $CONV_WHY"
fi

# The readers catch up to the final size (60 s), then stop.
check_reg readers-caught-up
reader_pos() { # RID: where the last R line ends
    local l
    l=$(tac "$OUT/readers/$1.log" 2>/dev/null | grep -m1 '^R ')
    [[ -n $l ]] || { echo 0; return; }
    read -r _ _ a b _ <<<"$l"
    echo $((a + b))
}
lagging=()
for ((i = 0; i < 120; i++)); do
    lagging=()
    for line in "${RMAP[@]}"; do
        read -r r t p n <<<"$line"
        want=${FINAL_SIZE[$t/$p]:-}
        [[ -n $want ]] || continue
        pos=$(reader_pos "$r")
        ((pos >= want)) || lagging+=("reader $r ($t/$p on node $n) at $pos of $want")
    done
    ((${#lagging[@]} == 0)) && break
    sleep 0.5
done
((${#lagging[@]} == 0)) || check_fail readers-caught-up "${#lagging[@]} reader(s) behind after 60 s, e.g. ${lagging[0]}"
rpids=()
for p in "${!HPID[@]}"; do [[ ${HPID[$p]} == reader* ]] && rpids+=("$p"); done
stop_pids 10 "${rpids[@]}"
dlog "workload: readers stopped"

# Every partition file from every mount.
check_reg copied
for ((n = 1; n <= NODES; n++)); do
    for part in "${ALL_PARTS[@]}"; do
        # A partition a node does not show failed topics-agree already.
        mt 10 test -e "$(mnt "$n")/$part" || { qlog "final: node $n has no $part"; continue; }
        mkdir -p "$OUT/final/$n/${part%/*}"
        mt 60 cp "$(mnt "$n")/$part" "$OUT/final/$n/$part" 2>>"$OUT/driver.log" ||
            check_fail copied "cp of $part from node $n failed"
    done
done
dlog "final: $(du -sh "$OUT/final" | cut -f1) copied from $NODES mounts (${#ALL_PARTS[@]} partitions)"

for ((n = 1; n <= NODES; n++)); do
    node_stop "$n"
    cp "$(datadir "$n")/minikafka.log" "$OUT/daemons/n$n.minikafka.log" 2>/dev/null
done
check_reg sanitizer
for f in "$OUT"/daemons/*.log; do
    if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error|==[0-9]+==ERROR' "$f"; then
        check_fail sanitizer "sanitizer report in $f: $(grep -m1 -E 'ERROR: |runtime error' "$f")"
    fi
done
dlog "cluster: stopped"

# --- check.py and the summary -----------------------------------------------------------------------------
dlog "check: $PY $CHECK $OUT ${DEFINITE:+--definite-errnos $DEFINITE}"
"$PY" "$CHECK" "$OUT" ${DEFINITE:+--definite-errnos "$DEFINITE"} >"$OUT/check.txt" 2>&1
CHECK_RC=$?
sed 's/^/  check.py: /' "$OUT/check.txt" | tail -n 60
qlog "check.py exit status $CHECK_RC"
cp_pass=0 cp_fail=0
if last=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$OUT/check.txt" | tail -1) && [[ -n $last ]]; then
    read -r cp_pass _ cp_fail _ <<<"$last"
else
    cp_fail=1
    dlog "check.py printed no 'N passed, N failed' line (exit status $CHECK_RC)"
fi
((CHECK_RC == 0 || cp_fail > 0)) || cp_fail=1
# acknowledged/failed/unknown as check.py counts them ("acknowledged=N failed=N unknown=N ...").
totals=$(grep -E '^acknowledged=[0-9]+ ' "$OUT/check.txt" | tail -1)
ACKED=$(field "$totals" acknowledged) FAILEDW=$(field "$totals" failed) UNKNOWN=$(field "$totals" unknown)

dr_pass=0 dr_fail=0
for c in "${CHECK_ORDER[@]}"; do
    if [[ ${CHECK[$c]} == pass ]]; then dr_pass=$((dr_pass + 1)); else dr_fail=$((dr_fail + 1)); fi
    qlog "driver check $c: ${CHECK[$c]}"
done
fl="" total=0
for k in ${ALL_FAULTS//,/ }; do
    [[ -n ${FCOUNT[$k]:-} ]] && fl+="${fl:+,}$k:${FCOUNT[$k]}" total=$((total + FCOUNT[$k]))
done
PASS=$((cp_pass + dr_pass)) FAIL=$((cp_fail + dr_fail))
{
    echo "driver checks:"
    for c in "${CHECK_ORDER[@]}"; do printf '  %-18s %s\n' "$c" "${CHECK[$c]}"; done
    echo "summary: seed=$SEED nodes=$NODES duration=${SECS}s phases=$((ph - 1)) faults=$total (${fl:-none})" \
        "acked=${ACKED:-?} failed=${FAILEDW:-?} unknown=${UNKNOWN:-?}" \
        "slowest-recovery=$(fmt_ms "$SLOWEST_MS")s (${SLOWEST_AT:-none})" \
        "check.py: $cp_pass passed, $cp_fail failed; driver: $dr_pass passed, $dr_fail failed"
    echo "$PASS passed, $FAIL failed"
} | tee "$OUT/summary.txt"
cat "$OUT/summary.txt" >>"$OUT/driver.log"
((FAIL == 0))
exit
}
