# shellcheck shell=bash
# lib.sh — the chaos driver's helpers (sourced by tests/chaos/run.sh only).
#
# Borrowed from tests/e2e/lib.sh (timeouts everywhere, kill only our own pids,
# unmount whatever we mounted, an iptables chain of our own) but shaped for a
# long run that must not stop at the first surprise: a problem is recorded as
# a failed driver check (check_fail) and the run goes on to heal, converge and
# hand everything to check.py.
#
# Globals the caller sets before use: OUT (the run dir), WORK (data dirs and
# mounts), NODES, PORT, MKBIN (the daemon binary, copied into WORK), MK_OPTS
# (options after node.id and peers), CHAIN (iptables chain name).
#
# Every access to a mount goes through `mt SECS CMD...` (timeout -s KILL): a
# SIGSTOPped daemon leaves its mount's callers waiting, and SIGKILL is the
# one signal a process waiting on FUSE always takes.

# --- time and logging ------------------------------------------------------------
T0=${EPOCHREALTIME/./}
now_us() { echo "${EPOCHREALTIME/./}"; }
# rel: seconds since the start of the run, one decimal.
rel() {
    local d=$(($(now_us) - T0))
    printf '%d.%d' $((d / 1000000)) $((d % 1000000 / 100000))
}
# dlog MSG: "[t+12.3s] MSG" on stdout; the driver log gets the CLOCK_REALTIME
# time (UTC, microseconds) in front of the same line.
dlog() {
    local line
    line="[t+$(rel)s] $*"
    printf '%s\n' "$line"
    printf '%s %s\n' "$(date -u +%FT%T.%6NZ)" "$line" >>"$OUT/driver.log"
}
# qlog MSG: the driver log only.
qlog() { printf '%s [t+%ss] %s\n' "$(date -u +%FT%T.%6NZ)" "$(rel)" "$*" >>"$OUT/driver.log"; }

# Driver checks: name -> "pass" or the first failure's text; in order.
declare -A CHECK
CHECK_ORDER=()
check_reg() { [[ -n ${CHECK[$1]:-} ]] || { CHECK[$1]=pass; CHECK_ORDER+=("$1"); }; }
check_fail() { # NAME TEXT: the check fails (the first text is kept), the run goes on
    check_reg "$1"
    dlog "CHECK FAILED $1: $2"
    [[ ${CHECK[$1]} == pass ]] && CHECK[$1]=$2
    return 0
}
# die TEXT: the driver cannot go on (a setup step failed); the EXIT trap cleans up.
die() {
    dlog "FATAL: $*"
    DIED=1
    exit 1
}

mt() { local s=$1; shift; timeout -s KILL "$s" "$@"; }
is_mounted() { awk -v m="$1" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo; }
# Processes are known by pid and start time (field 22 of /proc/PID/stat):
# bash reaps a child that ended at once, and its pid may then go to another
# process; a pid whose start time changed is not ours and is never signalled.
ptag() { # PID: its start time ("" if gone)
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    st=${st##*) }
    set -- $st
    echo "${20}"
}
declare -A TAG # pid -> start time, for every process this driver started
tag() { TAG[$1]=$(ptag "$1"); }
# alive PID: ours (same start time as when started), not a zombie.
alive() {
    local st
    [[ -n ${TAG[$1]:-} ]] || return 1
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $st && ${st##*) } != Z* && $(ptag "$1") == "${TAG[$1]}" ]]
}
# signal SIG PID: only if it is still ours.
signal() { alive "$2" && kill -"$1" "$2" 2>/dev/null; }
fmt_ms() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }

# --- the seeded schedule -----------------------------------------------------------
# gen_schedule SEED NODES SECS KINDS: print the whole schedule (a pure function
# of its arguments: same seed, same schedule).  Lines:
#   disk NODE                 the node whose data dir is a tmpfs (disk-full only)
#   phase N gap=S             a phase; S seconds of calm after its recovery
#   fault N at=S dur=S KIND [sets=A|B...] [r=INT] [mode=M]
# at/dur are seconds from the phase's start.  Which node "a leader" is gets
# decided at run time from r (leadership is not a function of the seed).
gen_schedule() {
    "$PY" - "$@" <<'EOF'
import random, sys
seed, nodes, secs, kinds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4].split(",")
rng = random.Random(seed)
NET = {"partition-majority", "isolate", "bridge", "oneway"}
STOPS = {"wipe", "corrupt"}          # stop a node and touch its data dir: one at a time
WEIGHT = {"kill": 3, "kill2": 1, "powercut": 2, "pause": 2, "partition-majority": 2,
          "isolate": 2, "bridge": 1, "oneway": 1, "disk-full": 1, "wipe": 1, "corrupt": 1,
          "leader-transfer": 1, "topic-create": 1}
DUR = {"kill": (2, 6), "kill2": (2, 5), "powercut": (2, 5), "pause": (2, 4),
       "partition-majority": (3, 8), "isolate": (3, 7), "bridge": (3, 7), "oneway": (3, 6),
       "disk-full": (4, 8), "wipe": (2, 4), "corrupt": (2, 3), "leader-transfer": (0, 0),
       "topic-create": (0, 0)}
if "disk-full" in kinds:
    print("disk %d" % rng.randint(1, nodes))
def pick(allowed):
    pool = [k for k in kinds if k in allowed]
    return rng.choices(pool, [WEIGHT[k] for k in pool])[0] if pool else None
def args(kind):
    ids = list(range(1, nodes + 1))
    rng.shuffle(ids)
    if kind == "partition-majority":
        m = nodes // 2 + 1
        return "sets=%s|%s" % (",".join(map(str, sorted(ids[:m]))), ",".join(map(str, sorted(ids[m:]))))
    if kind == "bridge":
        h = (nodes - 1) // 2
        return "sets=%s|%d|%s" % (",".join(map(str, sorted(ids[:h]))), ids[h],
                                  ",".join(map(str, sorted(ids[h + 1:]))))
    extra = ""
    if kind == "corrupt":
        extra = " mode=%s" % rng.choice(["flip-sealed", "flip-active", "cut-tail"])
    elif kind == "powercut":
        extra = " mode=%s" % rng.choice(["one", "majority", "all"])
    return "r=%d%s" % (rng.randrange(1 << 30), extra)
t, n = 0.0, 0
while t < secs * 1.5 + 60:
    n += 1
    k1 = pick(set(kinds))
    d1 = round(rng.uniform(*DUR[k1]), 1)
    gap = round(rng.uniform(1, 4), 1)
    print("phase %d gap=%s" % (n, gap))
    print("fault %d at=0.0 dur=%s %s %s" % (n, d1, k1, args(k1)))
    if rng.random() < 0.35:
        allowed = set(WEIGHT) - ({k1} if k1 in ("disk-full",) else set())
        if k1 in NET: allowed -= NET
        if k1 in STOPS: allowed -= STOPS
        k2 = pick(allowed)
        if k2:
            at = round(rng.uniform(0.5, max(0.6, d1 * 0.7)), 1)
            d2 = round(rng.uniform(*DUR[k2]), 1)
            print("fault %d at=%s dur=%s %s %s" % (n, at, d2, k2, args(k2)))
            d1 = max(d1, at + d2)
    t += d1 + gap + 2
EOF
}

# --- nodes -------------------------------------------------------------------------
declare -A PID UP PAUSED NSTART
PEERS=""
mnt() { echo "$WORK/m$1"; }
datadir() { # NODE: the disk-full node's data dir lives on its tmpfs
    if [[ ${DISK_NODE:-0} == "$1" ]]; then echo "$WORK/tmpfs$1/data"; else echo "$WORK/d$1"; fi
}
# node_start NODE: start the daemon (stderr to OUT/daemons/nN.K.log), wait
# until mounted (20 s); 1 if it does not come up.
node_start() {
    local n=$1 m d log i
    m=$(mnt "$n") d=$(datadir "$n")
    mkdir -p "$m" "$d"
    NSTART[$n]=$((${NSTART[$n]:-0} + 1))
    log=$OUT/daemons/n$n.${NSTART[$n]}.log
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
        UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
        env --default-signal=INT,QUIT "$MKBIN" -f \
        -o "node.id=$n,$PEERS,$MK_OPTS" "$d" "$m" >>"$log" 2>&1 &
    PID[$n]=$! UP[$n]=1 PAUSED[$n]=0
    tag "$!"
    qlog "node $n: started pid ${PID[$n]} (start ${NSTART[$n]}, log $log)"
    for ((i = 0; i < 200; i++)); do
        if is_mounted "$m" && mt 2 stat "$m/.cluster" >/dev/null 2>&1; then return 0; fi
        if ! alive "${PID[$n]}"; then
            UP[$n]=0
            check_fail daemons-clean "node $n exited before mounting (see $log)"
            return 1
        fi
        sleep 0.1
    done
    check_fail daemons-clean "node $n did not mount $m within 20 s"
    return 1
}
# reap NODE: collect the exit status of a daemon that is gone; sets ST.
ST=""
reap() {
    ST=0
    wait "${PID[$1]}" 2>/dev/null || ST=$?
}
# wait_dead PID SECS
wait_dead() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do alive "$1" || return 0; sleep 0.1; done
    return 1
}
umount_dead() { # NODE: unmount a mount whose daemon is gone (lazily if busy)
    local m i
    m=$(mnt "$1")
    for ((i = 0; i < 50; i++)); do
        is_mounted "$m" || return 0
        fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null
        sleep 0.1
    done
    check_fail daemons-clean "could not unmount $m after node $1 died"
    return 1
}
# node_kill9 NODE
node_kill9() {
    local n=$1
    [[ ${PAUSED[$n]} == 1 ]] && node_cont "$n"
    # wait at once: bash then keeps quiet about the job it reaps ("Killed").
    # A process that survives SIGKILL is stuck in the kernel: the run's limit
    # ends the driver then.
    signal KILL "${PID[$n]}"
    reap "$n"
    UP[$n]=0
    umount_dead "$n"
}
# node_powercut NODES...: SIGUSR2 to each at once (MINIKAFKA_POWERCUT=1: every
# file cut to what was synced, _exit 137); each must die of it within 10 s.
node_powercut() {
    local n
    for n in "$@"; do
        [[ ${PAUSED[$n]} == 1 ]] && node_cont "$n"
        signal USR2 "${PID[$n]}"
    done
    for n in "$@"; do
        if ! wait_dead "${PID[$n]}" 10; then
            check_fail daemons-clean "node $n survived its power cut (SIGUSR2) for 10 s: killed"
            signal KILL "${PID[$n]}"
        fi
        reap "$n"
        UP[$n]=0
        [[ $ST == 137 ]] || check_fail daemons-clean "node $n exited with status $ST after its power cut, not 137"
        umount_dead "$n"
    done
}
# node_stop NODE: SIGTERM; it must exit 0 within 30 s and leave no mount.
node_stop() {
    local n=$1
    [[ ${PAUSED[$n]} == 1 ]] && node_cont "$n"
    signal TERM "${PID[$n]}"
    if ! wait_dead "${PID[$n]}" 30; then
        check_fail daemons-clean "node $n (pid ${PID[$n]}) did not exit within 30 s of SIGTERM; killed"
        signal KILL "${PID[$n]}"
        wait_dead "${PID[$n]}" 10
    fi
    reap "$n"
    UP[$n]=0
    [[ $ST == 0 ]] || check_fail daemons-clean "node $n exited with status $ST after SIGTERM"
    if is_mounted "$(mnt "$n")"; then
        check_fail daemons-clean "node $n left $(mnt "$n") mounted after SIGTERM"
        umount_dead "$n"
    fi
}
node_stopsig() { signal STOP "${PID[$1]}" && PAUSED[$1]=1; }
node_cont() { signal CONT "${PID[$1]}"; PAUSED[$1]=0; }
# watch_daemons: a daemon we did not stop that is gone is a crash: record it,
# unmount and start it again so that the run goes on.
watch_daemons() {
    local n
    for ((n = 1; n <= NODES; n++)); do
        [[ ${UP[$n]} == 1 ]] || continue
        alive "${PID[$n]}" && continue
        reap "$n"
        UP[$n]=0
        check_fail daemons-alive "node $n (pid ${PID[$n]}) died on its own with status $ST (see $OUT/daemons/n$n.${NSTART[$n]}.log)"
        umount_dead "$n"
        node_start "$n" && dlog "node $n: restarted after its crash"
    done
}
up_nodes() { # the nodes that run and are not stopped
    local n
    for ((n = 1; n <= NODES; n++)); do [[ ${UP[$n]} == 1 && ${PAUSED[$n]} == 0 ]] && echo "$n"; done
}

# --- reading .cluster ---------------------------------------------------------------
# ctext NODE: NODE's .cluster (empty when it does not answer within 2 s).
ctext() { mt 2 cat "$(mnt "$1")/.cluster" 2>/dev/null; }
# field LINE NAME: the value of NAME=... in a .cluster line
field() { local l=" $1 " k=" $2="; [[ $l == *"$k"* ]] || return 0; l=${l#*"$k"}; echo "${l%% *}"; }
pline() { grep -m1 "^partition=$2 " <<<"$1"; } # TEXT PART
mline() { grep -m1 '^metadata ' <<<"$1"; }

# --- the network: one chain of our own, only our port ----------------------------------
net_setup() {
    iptables -N "$CHAIN" || die "iptables -N $CHAIN"
    NET_HOOKED=1
    iptables -I INPUT -j "$CHAIN" || die "iptables -I INPUT -j $CHAIN"
    iptables -I OUTPUT -j "$CHAIN" || die "iptables -I OUTPUT -j $CHAIN"
}
net_teardown() {
    [[ ${NET_HOOKED:-0} == 1 ]] || return 0
    iptables -D INPUT -j "$CHAIN" 2>/dev/null
    iptables -D OUTPUT -j "$CHAIN" 2>/dev/null
    iptables -F "$CHAIN" 2>/dev/null
    iptables -X "$CHAIN" 2>/dev/null
    NET_HOOKED=0
}
# drop A B: packets from 127.0.0.A to 127.0.0.B on the cluster port (either
# end: a connection to B's listener or an answer from A's) are dropped.
drop() {
    iptables -A "$CHAIN" -s "127.0.0.$1" -d "127.0.0.$2" -p tcp -m multiport --ports "$PORT" -j DROP ||
        check_fail harness "iptables -A $CHAIN -s 127.0.0.$1 -d 127.0.0.$2 failed"
}
cut_pair() { drop "$1" "$2"; drop "$2" "$1"; }
# cut_sets "1,2|3": no traffic between nodes of different sets.
cut_sets() {
    local -a sets
    local i j a b
    IFS='|' read -r -a sets <<<"$1"
    for ((i = 0; i < ${#sets[@]}; i++)); do
        for ((j = i + 1; j < ${#sets[@]}; j++)); do
            for a in ${sets[$i]//,/ }; do for b in ${sets[$j]//,/ }; do cut_pair "$a" "$b"; done; done
        done
    done
}
net_heal() { iptables -F "$CHAIN" 2>/dev/null; }

# --- the workload's helpers -------------------------------------------------------------
declare -A HPID     # helper pid -> "writer ID" / "reader ID"
WMAP=() RMAP=()     # lines of writers-map.txt / readers-map.txt
NEXT_WID=1 NEXT_RID=1
# spawn_writer TOPIC PART NODE BATCH [cwriter args...]: a cwriter in the
# background, in the writers map; its id in LAST_WID.  Call it directly (not
# in $(...)): it updates this shell's tables.
spawn_writer() {
    local t=$1 p=$2 n=$3 b=$4 w=$NEXT_WID
    shift 4
    NEXT_WID=$((NEXT_WID + 1))
    "$CWRITER" -w "$w" -f "$(mnt "$n")/$t/$p" -l "$OUT/writers/$w.log" -b "$b" "$@" \
        2>>"$OUT/writers/$w.err" &
    HPID[$!]="writer $w"
    WPID[$w]=$!
    tag "$!"
    WMAP+=("$w $t $p $n")
    printf '%s\n' "${WMAP[@]}" >"$OUT/writers-map.txt"
    LAST_WID=$w
}
spawn_reader() { # TOPIC PART NODE
    local t=$1 p=$2 n=$3 r=$NEXT_RID
    NEXT_RID=$((NEXT_RID + 1))
    "$CREADER" -r "$r" -f "$(mnt "$n")/$t/$p" -l "$OUT/readers/$r.log" -p "$READER_POLL_MS" \
        -d "$HELPER_SECS" 2>>"$OUT/readers/$r.err" &
    HPID[$!]="reader $r"
    RPID[$r]=$!
    tag "$!"
    RMAP+=("$r $t $p $n")
    printf '%s\n' "${RMAP[@]}" >"$OUT/readers-map.txt"
}
declare -A WPID RPID
# stop_pids SECS PID...: SIGTERM, wait SECS, then SIGKILL; STOP_KILLED is
# how many needed SIGKILL.
STOP_KILLED=0
stop_pids() {
    local secs=$1 p i left killed=0
    shift
    for p in "$@"; do signal TERM "$p"; done
    for ((i = 0; i < secs * 10; i++)); do
        left=0
        for p in "$@"; do alive "$p" && left=1; done
        ((left)) || break
        sleep 0.1
    done
    for p in "$@"; do
        if alive "$p"; then
            qlog "${HPID[$p]:-pid $p} did not stop within ${secs}s of SIGTERM: SIGKILL"
            signal KILL "$p" && wait "$p" 2>/dev/null
            killed=$((killed + 1))
        fi
    done
    for p in "$@"; do wait "$p" 2>/dev/null; unset "HPID[$p]" "TAG[$p]"; done
    STOP_KILLED=$killed
}
