#!/usr/bin/env bash
# make bench — minikafka side by side with the machine's own limits.
#
# Systems (each workload runs on all of them in one run, interleaved per
# repetition, order rotated each repetition, so slow drifts of a shared
# machine hit every column alike):
#   mk-always  build/minikafka, fsync=always (default): write() returns once durable
#   mk-never   build/minikafka, fsync=never: page cache only
#   pt         libfuse's passthrough_ll example (Debian's copy, compiled into
#              build/bench/) mounted over a scratch directory: the cost of FUSE
#              itself. Plain write(), no fsync (like mk-never).
#   raw        a directory on the same disk, no FUSE. For small records its
#              main figure is write()+fdatasync() per record: the physical
#              limit of serial durable appends.
#
# Workloads: bulk append (cat of BULK_MB of 100-byte lines with >>), sequential
# read with cat (cold: after sync + drop_caches; warm: second read), small
# 100-byte records one write() each (1 writer; 8 writers on one file; 8 writers
# on 8 files) with per-write latency percentiles, and minikafka start-up time
# with 1 GB and 10 GB already on disk, after a clean stop and after kill -9.
# Then a second table, CLUSTER: three daemons on 127.0.0.1-3 (RF3) against a
# single node run alongside them (see "6: a 3-node cluster" below): 1 writer
# on the leader's and on a follower's mount, 8 writers on 8 partitions, bulk
# append, failover after kill -9 of a leader, idle CPU with 1,000 and 10,000
# partitions and the start-up of a node holding them. Then a third table,
# KAFKA (see "7: the Kafka protocol" below): the Kafka port driven by
# tests/bench/kload.c (librdkafka) on a single node (fsync=always and
# =never) and on three nodes RF3, against Redis Streams with appendfsync
# always: produce, consume and produce-to-consume latency.
#
# Everything written is read back and checked (size + cmp for bulk data,
# every record's framing and per-writer sequence for small records). Timings
# are only printed; the exit status is non-zero only when something broke
# (a mount failed, a command failed or hung, data read back was wrong).
#
# Environment: BENCH_BIN (tools, default build/bench), MK (default
# build/minikafka; columns are n/a if it is missing), BENCH_QUICK=1 (smoke
# run), BENCH_REPS, BENCH_SECS, BENCH_BULK_MB, BENCH_STARTUP_GB (e.g. "1 10")
# to override sizes, BENCH_WORK (scratch dir, default build/bench/run),
# BENCH_RT=1 (SCHED_FIFO for measured processes, see below), BENCH_CLUSTER=0
# (no cluster section) or =only (nothing else), BENCH_CL_* (see section 6),
# BENCH_KAFKA=0 (no Kafka section) or =only (nothing else), BENCH_KF_* (see
# section 7).
set -uo pipefail

BENCH_BIN=$(realpath -m "${BENCH_BIN:-build/bench}")
MK=$(realpath -m "${MK:-build/minikafka}")
QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
	REPS=${BENCH_REPS:-1}; SECS=${BENCH_SECS:-1}; BULK_MB=${BENCH_BULK_MB:-50}
	STARTUP_GB=${BENCH_STARTUP_GB:-1}; STARTUP_REPS=${BENCH_STARTUP_REPS:-1}
else
	REPS=${BENCH_REPS:-5}; SECS=${BENCH_SECS:-3}; BULK_MB=${BENCH_BULK_MB:-500}
	STARTUP_GB=${BENCH_STARTUP_GB:-1 10}; STARTUP_REPS=${BENCH_STARTUP_REPS:-3}
fi
RECSIZE=100
WORK=$(realpath -m "${BENCH_WORK:-$BENCH_BIN/run}")
RESULTS=$BENCH_BIN/results.txt
SRC=$WORK/src.log            # BULK_MB of numbered 100-byte lines
SRC_BYTES=$((BULK_MB * 1000000))
T_CMD=180                    # no single command may take longer (hang guard)
# BENCH_RT=1 (root only): every measured process (daemons, load generators,
# cat, dd) runs under SCHED_FIFO priority 1. Off by default: it is not how the
# system is used and it starves other users of the machine while CPU-bound
# phases run. On a shared, busy machine, though, a CPU-bound neighbour delays
# each wake-up after a disk interrupt by up to a scheduler slice (4 ms here):
# raw write+fdatasync fell from ~8000/s to ~280/s while wake-ups from a FUSE
# daemon were barely hit, which makes the durable baseline meaningless. RT
# costs FUSE round trips a cross-CPU wake-up (p50 ~10 -> ~30 us) in return.
RT=()
if [ "${BENCH_RT:-0}" = 1 ]; then
	if [ "$(id -u)" = 0 ] && chrt -f 1 true 2>/dev/null; then RT=(chrt -f 1)
	else echo "BENCH_RT=1 needs root and chrt: running with normal scheduling" >&2; fi
fi

declare -A PID=() MNT=() VALS=() RES=()
SYSTEMS=()                   # systems mounted and usable, in column order
T_START=$EPOCHREALTIME
# How busy the (shared) machine is: load average and pressure stall info.
busy() {
	printf 'load %s' "$(cut -d' ' -f1-3 /proc/loadavg)"
	local r
	for r in cpu io; do
		[ -r /proc/pressure/$r ] && awk -v r=$r '/^some/ { sub("avg60=", "", $3); printf ", %s pressure %s%%", r, $3 }' /proc/pressure/$r
	done
}
LOAD0=$(busy)

log() { printf '%s\n' "$*" >&2; }
# Failures go to a file: fail is also called inside $(...) subshells.
fail() { printf '%s\n' "$*" >>"$WORK/failures.txt"; log "FAIL: $*"; }
fsub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", b - a }'; }
mbps() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.1f", n / s / 1e6 }'; }
add() { VALS[$1]="${VALS[$1]:-} $2"; }
# Median of the collected repetitions ("ERR" values are failed repetitions).
median() {
	printf '%s\n' ${VALS[$1]:-} | grep -v -e ERR -e '^$' | sort -g | awk '
		{ a[NR] = $1 }
		END { if (NR == 0) print "n/a"; else if (NR % 2) print a[(NR + 1) / 2];
		      else printf "%.6g\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
drop_caches() {
	sync
	if [ -w /proc/sys/vm/drop_caches ]; then echo 3 >/proc/sys/vm/drop_caches; return 0; fi
	return 1
}
# guard SYSTEM SECONDS CMD...: run CMD with a time limit; a system on which a
# command hangs is marked broken (a file: guard also runs inside $(...)) and
# skipped from then on, so one hung daemon cannot stall the whole run.
guard() {
	local sys=$1 secs=$2 rc
	shift 2
	timeout -k 5 "$secs" "${RT[@]}" "$@"
	rc=$?
	if [ $rc = 124 ] || [ $rc = 137 ]; then
		fail "$sys: hung (killed after $secs s): $*"
		touch "$WORK/broken-$sys"
	fi
	return $rc
}
live() { [ ! -e "$WORK/broken-$1" ]; }
# Rotate the system list by $1 so no system always runs first.
rotated() {
	local r=$1; shift
	local a=("$@") n=$# i
	for ((i = 0; i < n; i++)); do printf '%s ' "${a[$(((i + r) % n))]}"; done
}

# --- mounts: every pid we start is recorded and stopped by the trap ----------
is_mounted() { grep -qs " $1 fuse" /proc/mounts; }

wait_mounted() { # NAME: until the mount is up (or its process died)
	local name=$1 i
	for ((i = 0; i < 1500; i++)); do
		is_mounted "${MNT[$name]}" && return 0
		kill -0 "${PID[$name]}" 2>/dev/null || break
		sleep 0.01
	done
	fail "$name: mount on ${MNT[$name]} did not come up; log tail:"
	tail -5 "$WORK/log-$name.txt" >&2
	return 1
}

start_mk() { # NAME OPTS DATADIR: minikafka in the foreground, in the background
	local name=$1 opts=$2 data=$3
	MNT[$name]=$WORK/mnt-$name
	mkdir -p "$data" "${MNT[$name]}"
	"${RT[@]}" "$MK" -f ${opts:+-o "$opts"} "$data" "${MNT[$name]}" >>"$WORK/log-$name.txt" 2>&1 &
	PID[$name]=$!
}

start_pt() {
	MNT[pt]=$WORK/mnt-pt
	mkdir -p "$WORK/pt-src" "${MNT[pt]}"
	"${RT[@]}" "$BENCH_BIN/passthrough_ll" -f -o "source=$WORK/pt-src" "${MNT[pt]}" \
		>>"$WORK/log-pt.txt" 2>&1 &
	PID[pt]=$!
}

# Stop NAME: unmount (the daemon then exits), SIGTERM, finally SIGKILL. Only
# the pid recorded for NAME is ever signalled.
stop() {
	local name=$1 pid=${PID[$1]:-} m=${MNT[$1]:-} i
	[ -n "$pid" ] || return 0
	if [ -n "$m" ] && is_mounted "$m"; then
		fusermount3 -u "$m" 2>/dev/null || { sleep 0.5; fusermount3 -u "$m" 2>/dev/null; } ||
			fusermount3 -u -z "$m" 2>/dev/null
	fi
	for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
	if kill -0 "$pid" 2>/dev/null; then
		log "$name: still running 5 s after unmount; SIGTERM"
		kill -TERM "$pid" 2>/dev/null
		for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
		kill -0 "$pid" 2>/dev/null && { log "$name: SIGKILL"; kill -KILL "$pid" 2>/dev/null; }
	fi
	wait "$pid" 2>/dev/null
	local rc=$?
	[ -n "$m" ] && is_mounted "$m" && fusermount3 -u -z "$m" 2>/dev/null
	unset "PID[$name]"
	return $rc
}

cleanup() {
	local name
	trap - EXIT INT TERM
	for name in ${HELPERS[@]+"${!HELPERS[@]}"}; do kill -TERM "$name" 2>/dev/null; done
	for name in "${!PID[@]}"; do stop "$name"; done
	rm -rf "$WORK"/data-* "$WORK"/raw "$WORK"/pt-src "$SRC"
}
trap cleanup EXIT
trap 'log "interrupted"; cleanup; exit 130' INT TERM

# --- targets: a fresh topic / directory per run ------------------------------
root_of() { # SYSTEM -> directory where targets are made
	case $1 in raw) echo "$WORK/raw" ;; *) echo "${MNT[$1]}" ;; esac
}
# new_target SYSTEM NAME: prints the directory; partition files 0..7 exist for
# minikafka (a topic), are created by the writers elsewhere.
new_target() {
	local dir
	dir=$(root_of "$1")/$2
	guard "$1" 60 mkdir "$dir" || { fail "$1: mkdir $dir failed"; return 1; }
	case $1 in mk-*)
		[ -e "$dir/0" ] || { fail "$1: mkdir $dir made no partition file 0"; return 1; } ;;
	esac
	echo "$dir"
}
drop_target() { # plain dirs are removed; minikafka topics stay until the end
	case $1 in raw | pt) rm -rf "$2" ;; esac
}
fsize() { stat -c %s "$1" 2>/dev/null || echo -1; }

# --- 1+2: bulk append, sequential read ---------------------------------------
declare -A LAST=()           # last bulk file per system, for the read tests
# Variants: every system with cat (plain 128 KiB writes), plus pt-sync and
# raw-sync: dd with O_DSYNC 128 KiB writes, the durable bulk baseline (each
# write() returns once its data is on disk, as with minikafka fsync=always).
bench_bulk() {
	local r v s dir t0 t1 size variants cmd
	variants=($(for s in "${SYSTEMS[@]}"; do
		case $s in pt | raw) echo "$s $s-sync" ;; *) echo "$s" ;; esac
	done))
	for ((r = 1; r <= REPS; r++)); do
		for v in $(rotated "$r" "${variants[@]}"); do
			s=${v%-sync}
			live "$s" || continue
			cat "$SRC" >/dev/null   # source warm: measure the destination only
			sync
			dir=$(new_target "$s" "bulk-$v-$r") || { add "bulk.$v" ERR; continue; }
			cmd=(cat "$SRC")
			[ "$v" != "$s" ] && cmd=(dd "if=$SRC" "of=$dir/0" bs=128k oflag=append,dsync conv=notrunc status=none)
			t0=$EPOCHREALTIME
			if ! guard "$s" $T_CMD "${cmd[@]}" >>"$dir/0"; then
				fail "$v: ${cmd[*]} >> $dir/0 failed or hung"; add "bulk.$v" ERR; continue
			fi
			t1=$EPOCHREALTIME
			size=$(fsize "$dir/0")
			if [ "$size" != "$SRC_BYTES" ]; then
				fail "$v: after ${cmd[*]} >> $dir/0 size is $size, expected $SRC_BYTES"
				add "bulk.$v" ERR; continue
			fi
			add "bulk.$v" "$(mbps "$SRC_BYTES" "$(fsub "$t0" "$t1")")"
			log "bulk append r$r $v: $(mbps "$SRC_BYTES" "$(fsub "$t0" "$t1")") MB/s"
			if [ "$v" != "$s" ]; then drop_target "$s" "$dir"; continue; fi
			[ -n "${LAST[$s]:-}" ] && drop_target "$s" "${LAST[$s]%/0}"
			LAST[$s]=$dir/0
		done
	done
}

bench_read() {
	local r s f t0 t1 cold=1
	for s in "${SYSTEMS[@]}"; do   # correctness first, untimed
		f=${LAST[$s]:-}
		[ -n "$f" ] && live "$s" || continue
		if ! guard "$s" $T_CMD cmp "$SRC" "$f"; then
			fail "$s: $f read back differs from what was appended (cmp)"; unset "LAST[$s]"
		fi
	done
	drop_caches || { cold=0; log "cannot drop caches (not root?): cold reads skipped"; }
	for ((r = 1; r <= REPS; r++)); do
		for s in $(rotated "$r" "${SYSTEMS[@]}"); do
			f=${LAST[$s]:-}
			[ -n "$f" ] && live "$s" || continue
			if [ $cold = 1 ]; then
				drop_caches
				t0=$EPOCHREALTIME
				guard "$s" $T_CMD cat "$f" >/dev/null || { fail "$s: cat $f failed"; continue; }
				t1=$EPOCHREALTIME
				add "rcold.$s" "$(mbps "$SRC_BYTES" "$(fsub "$t0" "$t1")")"
				log "read cold r$r $s: $(mbps "$SRC_BYTES" "$(fsub "$t0" "$t1")") MB/s"
			fi
			guard "$s" $T_CMD cat "$f" >/dev/null || continue   # warm it
			t0=$EPOCHREALTIME
			guard "$s" $T_CMD cat "$f" >/dev/null || { fail "$s: cat $f failed"; continue; }
			t1=$EPOCHREALTIME
			add "rwarm.$s" "$(mbps "$SRC_BYTES" "$(fsub "$t0" "$t1")")"
			log "read warm r$r $s: $(mbps "$SRC_BYTES" "$(fsub "$t0" "$t1")") MB/s"
		done
	done
}

# --- 3+4: small records ------------------------------------------------------
# Variants: the mounted systems with plain write(), plus pt+fdatasync and
# raw+fdatasync (-S). raw-sync is the durable baseline, raw/pt without sync
# the page-cache ones.
small_variants() {
	local s
	for s in "${SYSTEMS[@]}"; do
		case $s in
		pt) echo pt pt-sync ;;
		raw) echo raw-sync raw ;;
		*) echo "$s" ;;
		esac
	done
}

# small_run VARIANT WORKLOAD REP; WORKLOAD is w1 (1 writer), w8p1 (8 writers,
# one file), w8p8 (8 writers, 8 files).
small_run() {
	local v=$1 wl=$2 rep=$3 sys=${1%-sync} threads=8 nfiles=1 flags=() dir out rc i
	local files=() recs got size
	[ "$v" != "$sys" ] && flags+=(-S)
	case $sys in pt | raw) flags+=(-c) ;; esac
	case $wl in w1) threads=1 ;; w8p8) nfiles=8 ;; esac
	sync
	dir=$(new_target "$sys" "$wl-$v-$rep") || return 1
	for ((i = 0; i < nfiles; i++)); do files+=("$dir/$i"); done
	out=$(guard "$sys" $((SECS + 120)) "$BENCH_BIN/writer" -t $threads -d "$SECS" \
		-s $RECSIZE "${flags[@]}" "${files[@]}")
	rc=$?
	if [ $rc != 0 ]; then
		fail "$v: writer -t $threads ${flags[*]} ${files[*]} exited $rc: $out"
		return 1
	fi
	recs=$(sed -n 's/.*records=\([0-9]*\).*/\1/p' <<<"$out")
	got=$(guard "$sys" $T_CMD "$BENCH_BIN/checklog" -s $RECSIZE "${files[@]}")
	rc=$?
	got=${got#records=}
	if [ $rc != 0 ] || [ "$got" != "$recs" ]; then
		fail "$v: $wl read back $got records (checklog rc $rc), writer acknowledged $recs"
		return 1
	fi
	size=0
	for f in "${files[@]}"; do size=$((size + $(fsize "$f"))); done
	if [ "$size" != $((recs * RECSIZE)) ]; then
		fail "$v: $wl file sizes add up to $size, expected $((recs * RECSIZE))"
		return 1
	fi
	drop_target "$sys" "$dir"
	local k
	for k in rec_per_s p50_us p99_us p999_us; do
		add "$wl.$k.$v" "$(sed -n "s/.*[ ^]$k=\([0-9.]*\).*/\1/p" <<<" $out")"
	done
	log "$wl r$rep $v: $out"
}

bench_small() {
	local wl r v variants
	variants=($(small_variants))
	for wl in w1 w8p1 w8p8; do
		for ((r = 1; r <= REPS; r++)); do
			for v in $(rotated "$r" "${variants[@]}"); do
				live "${v%-sync}" || continue
				small_run "$v" "$wl" "$r" || add "$wl.rec_per_s.$v" ERR
			done
		done
	done
}

# --- 5: start-up -------------------------------------------------------------
# One minikafka data dir grows to each size in STARTUP_GB (built through the
# mount with fsync=never: page cache speed, then synced once). Each timed start
# runs with default options after sync + drop_caches (cold: the log is on disk,
# not in memory) and lasts from just before exec until `stat MNT/t/0` answers
# with the expected size.
SU_SIZE=0
su_start() { # OPTS -> starts "su", waits for the mount
	start_mk su "$1" "$WORK/data-startup"
	wait_mounted su
}
su_timed_start() { # KEY: time a default start, add it under KEY
	local t0 t1
	drop_caches
	t0=$EPOCHREALTIME
	start_mk su "" "$WORK/data-startup"
	if ! t1=$("${RT[@]}" "$BENCH_BIN/waitsize" "${MNT[su]}/t/0" "$SU_SIZE" 120); then
		fail "startup: ${MNT[su]}/t/0 never showed size $SU_SIZE (see $WORK/log-su.txt)"
		add "$1" ERR
		return 1
	fi
	add "$1" "$(fsub "$t0" "$t1")"
	log "$1: $(fsub "$t0" "$t1") s"
}

bench_startup() {
	local gb r want chunk=1000000
	for gb in $STARTUP_GB; do
		want=$((gb * 1000000000))
		su_start fsync=never || return 1
		[ -d "${MNT[su]}/t" ] || new_target su t >/dev/null || { stop su; return 1; }
		log "startup: growing the log to $gb GB through the mount (fsync=never)"
		while [ $((SU_SIZE + SRC_BYTES)) -le "$want" ]; do
			guard su $T_CMD cat "$SRC" >>"${MNT[su]}/t/0" ||
				{ fail "startup: cat >> ${MNT[su]}/t/0 failed"; stop su; return 1; }
			SU_SIZE=$((SU_SIZE + SRC_BYTES))
		done
		[ "$(fsize "${MNT[su]}/t/0")" = "$SU_SIZE" ] ||
			{ fail "startup: log is $(fsize "${MNT[su]}/t/0") bytes, expected $SU_SIZE"; stop su; return 1; }
		stop su || fail "startup: clean stop (fusermount3 -u) returned non-zero"
		for ((r = 1; r <= STARTUP_REPS; r++)); do
			su_timed_start "start.clean.$gb" || { stop su; return 1; }
			stop su || fail "startup: clean stop after timed start returned non-zero"
		done
		for ((r = 1; r <= STARTUP_REPS; r++)); do
			# an acknowledged, unsynced tail, then kill -9 without warning
			su_start fsync=never || return 1
			head -c $chunk "$SRC" >>"${MNT[su]}/t/0" ||
				{ fail "startup: append before kill -9 failed"; stop su; return 1; }
			SU_SIZE=$((SU_SIZE + chunk))
			kill -KILL "${PID[su]}"
			wait "${PID[su]}" 2>/dev/null
			unset "PID[su]"
			fusermount3 -u "${MNT[su]}" 2>/dev/null || fusermount3 -u -z "${MNT[su]}"
			su_timed_start "start.kill9.$gb" || { stop su; return 1; }
			if ! tail -c $chunk "${MNT[su]}/t/0" | cmp -s - <(head -c $chunk "$SRC"); then
				fail "startup: after kill -9 the last acknowledged $chunk bytes differ"
			fi
			stop su || fail "startup: clean stop after kill -9 restart returned non-zero"
		done
	done
}

# --- 6: a 3-node cluster, against one node -------------------------------------
# Three daemons (systems c1 c2 c3) on 127.0.0.1, .2 and .3, one random free
# port, each with its own data dir and mount, num.partitions=8, the default
# replication factor (3: every partition on every node), fsync=always; next to
# them one single-node daemon (system cs, fsync=always, no peers) started at
# the same time. The throughput workloads alternate between the cluster and cs
# within each repetition (order rotated), so every ratio compares figures
# taken a few seconds apart on the same machine and disk:
#   cw1    1 writer, 100-byte records one write() each, on partition 0's
#          leader's mount; again on a follower's mount (the daemon forwards
#          to the leader); and on cs
#   cw8    8 writers on the 8 partitions of one topic, writer i on the mount
#          of partition i's leader (placement spreads the leaders)
#   cbulk  cat of BULK_MB >> partition 0 on its leader's mount; and on cs
#   cfail  kill -9 of a partition's leader while ackloop appends to it through
#          a survivor's mount: time from the kill to the end of the first write
#          issued after it; the node is restarted and must be back in sync
#          (its offset.next = the leader's, in the leader's isr) before the
#          next kill; each kill hits the leader of the next partition
#   cidle  a topic grown to 1,000 (full: 10,000) partitions: once every
#          partition's leader says quiet=1, each node's CPU (utime+stime of
#          /proc/PID/stat) over CL_IDLE_SECS; then node 3 is stopped cleanly and
#          started again: time until its mount answers, and until its .cluster
#          names a leader for every partition
# Every throughput run gets a fresh topic (rmdir'ed afterwards, so the idle
# figures count only the idle topic); before a run each partition it uses
# must be led by its preferred replica on every node (the daemon hands the
# lead back to it, which would otherwise land inside a run). Checks: sizes on
# all three mounts once they caught up, every record read back through a
# node other than the writer's (checklog; bulk: cmp), the failover partitions
# identical on the three mounts and holding every acknowledged record once,
# in order.
# Environment: BENCH_CLUSTER=0 skips the section, =only runs nothing else
# (no single-node table); BENCH_CL_REPS (repetitions of the throughput
# workloads: 3, quick 1; BENCH_REPS if smaller), BENCH_CL_KILLS (10, quick 3),
# BENCH_CL_PARTS ("1000 10000", quick "1000"), BENCH_CL_IDLE_SECS (10).
# A node keeps ~3 open files per partition: counts the open-file limit cannot
# hold are lowered to what fits (said in the table).
if [ "$QUICK" = 1 ]; then
	CL_KILLS=${BENCH_CL_KILLS:-3}; CL_PARTS=${BENCH_CL_PARTS:-1000}; CL_REPS=${BENCH_CL_REPS:-$REPS}
else
	CL_KILLS=${BENCH_CL_KILLS:-10}; CL_PARTS=${BENCH_CL_PARTS:-1000 10000}
	CL_REPS=${BENCH_CL_REPS:-$((REPS < 3 ? REPS : 3))}
fi
CL_IDLE_SECS=${BENCH_CL_IDLE_SECS:-10}
CL_ONLY=0; [ "${BENCH_CLUSTER:-1}" = only ] && CL_ONLY=1
CL_T0=$EPOCHREALTIME CL_T1=$EPOCHREALTIME
CL_RAN=0                     # the section ran (the table prints it)
CL_PORT="" CL_PEERS="" CL_PARTS_NOTE="" CL_L="" CL_REPL="" CL_T="" CL_QUIET=""
CL_POLL=0.05                 # until_ok's poll interval (callers may localise it)
CL_WFAIL=0                   # writes through survivors that failed during failovers
declare -A CL_UP=() CL_LEAD=() CL_RSET=()
declare -A HELPERS=()        # ackloop pids: stopped by the trap too

# until_ok SECONDS CMD...: run CMD every CL_POLL s until it succeeds (0) or
# SECONDS (an integer) have passed (1).
until_ok() {
	local end=$((${EPOCHREALTIME/./} + $1 * 1000000))
	shift
	while :; do
		"$@" && return 0
		((${EPOCHREALTIME/./} < end)) || return 1
		sleep "$CL_POLL"
	done
}
cl_field() { # LINE KEY: the value of KEY= in a .cluster line (empty if absent)
	local s=" $1"
	case $s in *" $2="*) s=${s#*" $2="}; printf '%s' "${s%% *}" ;; esac
}
cl_pline() { # NODE PARTITION: that partition's line in NODE's .cluster
	grep -m1 "^partition=$2 " "${MNT[c$1]}/.cluster" 2>/dev/null
}
cl_any_up() { local n; for n in 1 2 3; do [ "${CL_UP[$n]:-0}" = 1 ] && { echo $n; return; }; done; echo 1; }
cl_meta_agreed() { # every node names the same metadata leader
	local n x l=""
	for n in 1 2 3; do
		x=$(cl_field "$(grep -m1 '^metadata ' "${MNT[c$n]}/.cluster" 2>/dev/null)" leader)
		[[ $x =~ ^[1-9][0-9]*$ ]] || return 1
		[ -z "$l" ] && l=$x
		[ "$x" = "$l" ] || return 1
	done
}
# cl_agreed PARTITION [NOT]: every node up names the same leader (not 0, not
# NOT), which is up and says role=leader; sets CL_L and CL_REPL (replicas).
cl_agreed() {
	local n x l="" line
	for n in 1 2 3; do
		[ "${CL_UP[$n]:-0}" = 1 ] || continue
		x=$(cl_field "$(cl_pline $n "$1")" leader)
		[[ $x =~ ^[1-9][0-9]*$ ]] && [ "$x" != "${2:-}" ] || return 1
		[ -z "$l" ] && l=$x
		[ "$x" = "$l" ] || return 1
	done
	[ -n "$l" ] && [ "${CL_UP[$l]:-0}" = 1 ] || return 1
	line=$(cl_pline "$l" "$1")
	[ "$(cl_field "$line" role)" = leader ] || return 1
	CL_L=$l
	CL_REPL=$(cl_field "$line" replicas)
}
cl_settled() { cl_agreed "$1" && [ "${CL_REPL%%,*}" = "$CL_L" ]; } # led by its preferred replica
cl_says() { # PARTITION: what each node says of it, for failure messages
	local n line
	for n in 1 2 3; do
		line=$(cl_pline $n "$1")
		printf 'node %s: leader=%s term=%s replicas=%s isr=%s role=%s; ' $n "$(cl_field "$line" leader)" \
			"$(cl_field "$line" term)" "$(cl_field "$line" replicas)" "$(cl_field "$line" isr)" "$(cl_field "$line" role)"
	done
}
# cl_insync PARTITION NODE: NODE holds the leader's offset.next, and the
# leader lists NODE in its isr.
cl_insync() {
	cl_agreed "$1" || return 1
	local ll nl
	ll=$(cl_pline "$CL_L" "$1")
	nl=$(cl_pline "$2" "$1")
	[ -n "$(cl_field "$ll" offset.next)" ] && [ "$(cl_field "$ll" offset.next)" = "$(cl_field "$nl" offset.next)" ] &&
		[[ ",$(cl_field "$ll" isr)," == *",$2,"* ]]
}

# cl_start NODE [meta]: start cluster node NODE, wait until its mount and
# .cluster answer (with "meta": and until it names the metadata leader)
cl_start() {
	local i=$1
	start_mk "c$i" "node.id=$i,$CL_PEERS,num.partitions=8${KF_CPORT:+,kafka.listen=127.0.0.$i:$KF_CPORT}" "$WORK/data-c$i"
	wait_mounted "c$i" || return 1
	until_ok 10 test -e "${MNT[c$i]}/.cluster" || { fail "c$i: ${MNT[c$i]}/.cluster does not answer"; return 1; }
	CL_UP[$i]=1
	[ "${2:-}" = meta ] || return 0
	until_ok 20 cl_meta_known "$i" || { fail "c$i: names no metadata leader 20 s after its start"; return 1; }
}
cl_meta_known() { [[ $(cl_field "$(grep -m1 '^metadata ' "${MNT[c$1]}/.cluster" 2>/dev/null)" leader) =~ ^[1-9] ]]; }
cl_reap() { # NODE: after kill -9: reap it, clear its dead mount
	local i=$1
	wait "${PID[c$i]}" 2>/dev/null
	unset "PID[c$i]"
	CL_UP[$i]=0
	fusermount3 -u "${MNT[c$i]}" 2>/dev/null || fusermount3 -u -z "${MNT[c$i]}" 2>/dev/null
}
cl_pick_port() { # a port nothing on this machine uses
	local p i
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + RANDOM % 40000))
		if command -v ss >/dev/null; then
			[ -z "$(ss -Htan "( sport = :$p or dport = :$p )" 2>/dev/null)" ] || continue
		fi
		echo "$p"
		return 0
	done
	return 1
}

# cl_topic NAME NPARTS: a fresh topic (mkdir on a node that is up; 8
# partitions), partitions 0..NPARTS-1 led by their preferred replicas; sets
# CL_LEAD[i] (leader) and CL_RSET[i] (replicas, preferred first).
# A failed mkdir is reported and tried again (10 times, 0.3 s apart) so that
# one refusal does not end the section.
cl_topic() {
	local t=$1 np=$2 n i err
	n=$(cl_any_up)
	for ((i = 0; i < 10; i++)); do
		err=$(guard cluster 60 mkdir "${MNT[c$n]}/$t" 2>&1) && break
		fail "cluster: mkdir ${MNT[c$n]}/$t (node $n, try $((i + 1))): $err"
		[ -d "${MNT[c$n]}/$t" ] && break
		sleep 0.3
	done
	[ -d "${MNT[c$n]}/$t" ] || return 1
	for ((i = 0; i < np; i++)); do
		if ! until_ok 20 cl_settled "$t/$i"; then
			fail "cluster: $t/$i not led by its preferred replica on every node within 20 s: $(cl_says "$t/$i")"
			return 1
		fi
		CL_LEAD[$i]=$CL_L
		CL_RSET[$i]=$CL_REPL
	done
}
# cl_drop SYSTEM TOPIC: rmdir; a cluster topic must then be gone from every
# node within 5 s (else reported, and rmdir tried once more on another node).
cl_gone() { local n; for n in 1 2 3; do [ "${CL_UP[$n]:-0}" = 1 ] && [ -e "${MNT[c$n]}/$1" ] && return 1; done; return 0; }
cl_drop() {
	local n err left k
	if [ "$1" = cs ]; then guard cs 60 rmdir "${MNT[cs]}/$2" || fail "cs: rmdir ${MNT[cs]}/$2 failed"; return; fi
	n=$(cl_any_up)
	for k in 1 2; do
		err=$(guard cluster 60 rmdir "${MNT[c$n]}/$2" 2>&1) || fail "cluster: rmdir ${MNT[c$n]}/$2 (node $n): $err"
		until_ok 5 cl_gone "$2" && return 0
		left=$(for i in 1 2 3; do [ -e "${MNT[c$i]}/$2" ] && printf '%s ' $i; done)
		fail "cluster: rmdir ${MNT[c$n]}/$2 (node $n) returned ${err:-0}, but 5 s later the topic is still there on node(s) $left"
		n=$((n % 3 + 1))
	done
}
# cl_caught_up TOPIC NPARTS FILES...: every up node's copy of each partition
# reaches the size the leader's mount shows (FILES: one per partition, on the
# leader's mount). Prints the total size.
cl_caught_up() {
	local t=$1 np=$2 i n want total=0
	shift 2
	for ((i = 0; i < np; i++)); do
		want=$(fsize "${MNT[c${CL_LEAD[$i]}]}/$t/$i")
		for n in 1 2 3; do
			[ "${CL_UP[$n]:-0}" = 1 ] || continue
			"$BENCH_BIN/waitsize" "${MNT[c$n]}/$t/$i" "$want" 60 >/dev/null ||
				{ fail "cluster: node $n's $t/$i never reached the leader's size $want"; return 1; }
		done
		total=$((total + want))
	done
	echo $total
}

# cl_small WL VARIANT REP: WL cw1 (VARIANT leader, follower or single) or cw8
# (cluster or single).
cl_small() {
	local wl=$1 v=$2 r=$3 t="$1-$2-$3" sys=cluster np=1 i wn rn dir out rc recs got size where=""
	local files=() vfiles=()
	[ "$wl" = cw8 ] && np=8
	if [ "$v" = single ]; then
		sys=cs
		dir=$(new_target cs "$t") || return 1
		for ((i = 0; i < np; i++)); do files+=("$dir/$i"); vfiles+=("$dir/$i"); done
	else
		cl_topic "$t" $np || return 1
		for ((i = 0; i < np; i++)); do
			wn=${CL_LEAD[$i]}
			if [ "$v" = follower ]; then wn=${CL_RSET[$i]#*,}; wn=${wn%%,*}; fi
			rn=$((wn % 3 + 1))  # read back through the next node
			files+=("${MNT[c$wn]}/$t/$i")
			vfiles+=("${MNT[c$rn]}/$t/$i")
			where+=" $i:n$wn"
		done
	fi
	sync
	out=$(guard "$sys" $((SECS + 120)) "$BENCH_BIN/writer" -t $np -d "$SECS" -s $RECSIZE "${files[@]}")
	rc=$?
	if [ $rc != 0 ]; then
		fail "$wl $v: writer -t $np ${files[*]} exited $rc: $out"
		return 1
	fi
	recs=$(sed -n 's/.*records=\([0-9]*\).*/\1/p' <<<"$out")
	if [ "$sys" = cluster ]; then
		size=$(cl_caught_up "$t" $np) || return 1
	else
		size=0
		for i in "${files[@]}"; do size=$((size + $(fsize "$i"))); done
	fi
	if [ "$size" != $((recs * RECSIZE)) ]; then
		fail "$wl $v: partitions hold $size bytes, the writer had $recs records acknowledged ($((recs * RECSIZE)) bytes)"
		return 1
	fi
	got=$(guard "$sys" $T_CMD "$BENCH_BIN/checklog" -s $RECSIZE "${vfiles[@]}")
	rc=$?
	got=${got#records=}
	if [ $rc != 0 ] || [ "$got" != "$recs" ]; then
		fail "$wl $v: read back $got records through ${vfiles[*]} (checklog rc $rc), writer acknowledged $recs"
		return 1
	fi
	cl_drop "$sys" "$t"
	local k
	for k in rec_per_s p50_us p99_us; do
		add "$wl.$k.$v" "$(sed -n "s/.*[ ^]$k=\([0-9.]*\).*/\1/p" <<<" $out")"
	done
	log "$wl r$r $v${where:+ (partition:node of its writer$where)}: $out"
}

cl_bulk() { # VARIANT REP: cluster or single
	local v=$1 r=$2 t="cbulk-$1-$2" sys=cluster f vf dir t0 t1 size rn
	cat "$SRC" >/dev/null   # source warm: measure the destination only
	if [ "$v" = single ]; then
		sys=cs
		dir=$(new_target cs "$t") || return 1
		f=$dir/0 vf=$dir/0
	else
		cl_topic "$t" 1 || return 1
		rn=$((CL_LEAD[0] % 3 + 1))
		f=${MNT[c${CL_LEAD[0]}]}/$t/0 vf=${MNT[c$rn]}/$t/0
	fi
	sync
	t0=$EPOCHREALTIME
	if ! guard "$sys" $T_CMD cat "$SRC" >>"$f"; then
		fail "cbulk $v: cat >> $f failed or hung"
		return 1
	fi
	t1=$EPOCHREALTIME
	size=$(fsize "$f")
	[ "$sys" = cluster ] && size=$(cl_caught_up "$t" 1)
	if [ "$size" != "$SRC_BYTES" ]; then
		fail "cbulk $v: after cat >> $f size is $size, expected $SRC_BYTES"
		return 1
	fi
	if ! guard "$sys" $T_CMD cmp "$SRC" "$vf"; then
		fail "cbulk $v: $vf read back differs from what was appended through $f (cmp)"
		return 1
	fi
	cl_drop "$sys" "$t"
	add "cbulk.$v" "$(mbps "$SRC_BYTES" "$(fsub "$t0" "$t1")")"
	log "cbulk r$r $v: $(mbps "$SRC_BYTES" "$(fsub "$t0" "$t1")") MB/s (through $f)"
}

# ackloop's log: "SEQ START END" per acknowledged write, "... FAIL ERRNO"
# per failed one.
cl_acks() { awk 'NF == 3 { n++ } END { print n + 0 }' "$1" 2>/dev/null || echo 0; }
cl_acks_ge() { [ "$(cl_acks "$1")" -ge "$2" ]; } # ACKLOG N
# cl_ack_after ACKLOG T PID: CL_T = end of the first acknowledged write started
# at or after T; also succeeds (CL_T empty) once PID has exited.
cl_ack_after() {
	CL_T=$(awk -v t="$2" 'NF == 3 && $2 >= t { print $3; exit }' "$1" 2>/dev/null)
	[ -n "$CL_T" ] || ! kill -0 "$3" 2>/dev/null
}
# cl_check_fail NODE: NODE's cfail partitions hold every acknowledged record
# once, each writer's in order, and nothing else but records of failed
# writes (whose fate the writer cannot know). Prints a summary.
cl_check_fail() {
	local k
	for ((k = 0; k < 100; k++)); do
		[ -f "$WORK/cfail-$k.ack" ] || continue
		awk -v id=$k '{ print id, $1, (NF == 3 ? "A" : "F") }' "$WORK/cfail-$k.ack"
	done >"$WORK/cfail-expect.txt"
	guard cluster $T_CMD "$BENCH_BIN/checklog" -p -s $RECSIZE "${MNT[c$1]}"/cfail/{0..7} >"$WORK/cfail-read-$1.txt" ||
		{ echo "checklog -p failed (malformed record?)"; return 1; }
	awk 'NR == FNR { st[$1 " " $2] = $3; if ($3 == "A") want++; next }
		{ key = $1 " " $2
		  if (!(key in st)) { printf "writer %s record %s was never written\n", $1, $2; bad = 1; exit }
		  if (seen[key]++) { printf "writer %s record %s appears twice\n", $1, $2; bad = 1; exit }
		  if (($1 in last) && $2 + 0 < last[$1]) { printf "writer %s record %s after %s\n", $1, $2, last[$1]; bad = 1; exit }
		  last[$1] = $2 + 0; if (st[key] == "A") got++; else extra++ }
		END { if (bad) exit 1
		      if (got != want) { printf "%d of %d acknowledged records missing\n", want - got, want; exit 1 }
		      printf "%d acknowledged records once and in order, %d of failed writes also stored\n", got, extra }' \
		"$WORK/cfail-expect.txt" "$WORK/cfail-read-$1.txt"
}
cl_exited() { ! kill -0 "$1" 2>/dev/null; }

cl_failover() {
	local k p L S surv ack stopf err apid tk ms rc tr nf n used=() f m0
	cl_topic cfail 8 || return 1
	for ((k = 0; k < CL_KILLS && k < 100; k++)); do
		live cluster || return 1
		p=$((k % 8))
		if ! until_ok 30 cl_settled "cfail/$p"; then
			fail "cfail: cfail/$p not led by its preferred replica within 30 s: $(cl_says "cfail/$p")"
			return 1
		fi
		L=$CL_L
		surv=($(tr ',' '\n' <<<"$CL_REPL" | grep -vx "$L"))
		S=${surv[$((k % ${#surv[@]}))]}
		ack=$WORK/cfail-$k.ack stopf=$WORK/cfail-$k.stop err=$WORK/cfail-$k.err
		rm -f "$stopf"
		"${RT[@]}" "$BENCH_BIN/ackloop" -i $k -d 120 -s $RECSIZE "${MNT[c$S]}/cfail/$p" "$ack" "$stopf" 2>"$err" &
		apid=$!
		HELPERS[$apid]=1
		used+=("$p")
		if ! until_ok 10 cl_acks_ge "$ack" 20; then
			fail "cfail: ackloop on node $S's cfail/$p had $(cl_acks "$ack") writes acknowledged in 10 s: $(cat "$err")"
			touch "$stopf"; until_ok 30 cl_exited $apid; kill $apid 2>/dev/null; wait $apid; unset "HELPERS[$apid]"
			return 1
		fi
		tk=$EPOCHREALTIME
		kill -KILL "${PID[c$L]}"
		CL_UP[$L]=0
		until_ok 60 cl_ack_after "$ack" "$tk" $apid
		touch "$stopf"
		until_ok 30 cl_exited $apid || { log "cfail: ackloop still running 30 s after its stop file: SIGTERM"; kill $apid 2>/dev/null; }
		wait $apid
		rc=$?
		unset "HELPERS[$apid]"
		cl_reap "$L"
		nf=$(grep -c ' FAIL ' "$ack")
		CL_WFAIL=$((CL_WFAIL + nf))
		[ "$nf" = 0 ] || fail "cfail: kill -9 of node $L (leader of cfail/$p): $nf write(s) through survivor node $S failed: $(tr '\n' ' ' <"$err")"
		if [ -z "$CL_T" ] || [ $rc != 0 ]; then
			fail "cfail: kill -9 of node $L (leader of cfail/$p): no write through node $S acknowledged after it (ackloop rc $rc: $(tr '\n' ' ' <"$err"))"
			add cfail.ms ERR
		else
			ms=$(awk -v a="$tk" -v b="$CL_T" 'BEGIN { printf "%.1f", (b - a) * 1000 }')
			add cfail.ms "$ms"
			log "cfail kill $((k + 1))/$CL_KILLS: node $L (leader of cfail/$p) killed; first write through node $S acknowledged $ms ms later ($(cl_acks "$ack") acknowledged, $nf failed)"
		fi
		tr=$EPOCHREALTIME
		cl_start "$L" meta || return 1
		if ! until_ok 60 cl_insync "cfail/$p" "$L"; then
			fail "cfail: restarted node $L not back in sync on cfail/$p within 60 s: $(cl_says "cfail/$p")"
			return 1
		fi
		add cfail.resync_s "$(fsub "$tr" "$EPOCHREALTIME")"
	done
	# Every node holds every acknowledged record once, in order, and the same bytes.
	for p in $(printf '%s\n' "${used[@]}" | sort -u); do
		until_ok 30 cl_settled "cfail/$p"
		CL_LEAD[$p]=$CL_L
	done
	for n in 1 2 3; do
		for p in $(printf '%s\n' "${used[@]}" | sort -u); do
			f=${MNT[c${CL_LEAD[$p]}]}/cfail/$p
			"$BENCH_BIN/waitsize" "${MNT[c$n]}/cfail/$p" "$(fsize "$f")" 60 >/dev/null ||
				{ fail "cfail: node $n's cfail/$p never reached the leader's size $(fsize "$f")"; return 1; }
			m0=$(md5sum <"$f")
			[ "$(md5sum <"${MNT[c$n]}/cfail/$p")" = "$m0" ] || fail "cfail: cfail/$p on node $n differs from the leader's copy"
		done
		if rc=$(cl_check_fail $n); then log "cfail: node $n: $rc"
		else fail "cfail: node $n's cfail partitions, read back: $rc"; fi
	done
	cl_drop cluster cfail
}

cl_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# cl_all_quiet: every partition (node 1's lines) has exactly one leader among
# the nodes up, and every leader says quiet=1; CL_QUIET = "quiet leaders total".
cl_all_quiet() {
	local n
	CL_QUIET=$(for n in 1 2 3; do
		[ "${CL_UP[$n]:-0}" = 1 ] || continue
		echo "node $n"
		cat "${MNT[c$n]}/.cluster" 2>/dev/null
	done | awk '/^node / { node = $2; next }
		/^partition=/ { if (node == 1) total++; if (/ role=leader /) { l++; if (/ quiet=1 /) q++ } }
		END { printf "%d %d %d", q, l, total }')
	set -- $CL_QUIET
	[ "$3" -gt 0 ] && [ "$1" = "$3" ] && [ "$2" = "$3" ]
}
# cl_led NODE N: NODE's .cluster lists at least N partitions, each with a leader.
cl_led() {
	awk -v n="$2" '/^partition=/ { t++; if (/ leader=0 /) z++ } END { exit !(t >= n && z == 0) }' \
		"${MNT[c$1]}/.cluster" 2>/dev/null
}
cl_parts_everywhere() { # TOPIC N: every node's user.partitions of TOPIC is N
	local n
	for n in 1 2 3; do
		[ "$(getfattr --only-values -n user.partitions "${MNT[c$n]}/$1" 2>/dev/null)" = "$2" ] || return 1
	done
}

cl_idle() {
	local N n t0 t1 ta=() tb=() hz CL_POLL=0.5 last=""
	hz=$(getconf CLK_TCK)
	cl_topic cidle 1 || return 1
	for N in $CL_PARTS; do
		live cluster || return 1
		t0=$EPOCHREALTIME
		if ! guard cluster 600 setfattr -n user.partitions -v "$N" "${MNT[c1]}/cidle"; then
			fail "cidle: setfattr user.partitions=$N on node 1 failed"
			return 1
		fi
		until_ok 120 cl_parts_everywhere cidle "$N" ||
			{ fail "cidle: user.partitions of cidle is not $N on every node 120 s after the grow"; return 1; }
		log "cidle: grown to $N partitions in $(fsub "$t0" "$EPOCHREALTIME") s; waiting until every partition is quiet"
		t0=$EPOCHREALTIME
		if until_ok 300 cl_all_quiet; then
			add "cidle.$N.quiet_s" "$(fsub "$t0" "$EPOCHREALTIME")"
		else
			fail "cidle: $N partitions not all quiet 300 s after the grow (quiet leaders, leaders, partitions: $CL_QUIET)"
		fi
		log "cidle: $N partitions: quiet after $(fsub "$t0" "$EPOCHREALTIME") s ($CL_QUIET); CPU over $CL_IDLE_SECS s"
		t0=$EPOCHREALTIME
		for n in 1 2 3; do ta[n]=$(cl_ticks "${PID[c$n]}"); done
		sleep "$CL_IDLE_SECS"
		t1=$EPOCHREALTIME
		for n in 1 2 3; do tb[n]=$(cl_ticks "${PID[c$n]}"); done
		for n in 1 2 3; do
			add "cidle.$N.cpu.n$n" "$(awk -v a="${ta[n]}" -v b="${tb[n]}" -v hz="$hz" -v s="$(fsub "$t0" "$t1")" \
				'BEGIN { printf "%.3f", (b - a) / hz / s * 100 }')"
		done
		log "cidle: $N partitions: CPU % of a core: node1 $(m cidle.$N.cpu.n1), node2 $(m cidle.$N.cpu.n2), node3 $(m cidle.$N.cpu.n3)"
		last=$N
	done
	# Start-up of node 3 holding the most partitions: a clean stop, caches dropped.
	[ -n "$last" ] || return 0
	stop c3 || fail "cidle: node 3 exited non-zero after fusermount3 -u"
	CL_UP[3]=0
	drop_caches
	t0=$EPOCHREALTIME
	start_mk c3 "node.id=3,$CL_PEERS,num.partitions=8" "$WORK/data-c3"
	if ! t1=$("${RT[@]}" "$BENCH_BIN/waitsize" "${MNT[c3]}/.cluster" -1 120); then
		fail "cidle: node 3's mount did not answer within 120 s of its start (see $WORK/log-c3.txt)"
		return 1
	fi
	CL_UP[3]=1
	add "cstart.$last.mount_s" "$(fsub "$t0" "$t1")"
	local CL_POLL=0.1
	if until_ok 300 cl_led 3 "$last"; then
		add "cstart.$last.led_s" "$(fsub "$t0" "$EPOCHREALTIME")"
	else
		fail "cidle: 300 s after its start node 3 still lists partitions without a leader (or fewer than $last)"
	fi
	log "cidle: node 3 restarted with $last partitions: mount answered after $(m cstart.$last.mount_s) s, every partition had a leader after $(m cstart.$last.led_s) s"
}

bench_cluster() {
	local i r v wl hard fit N parts=""
	CL_RAN=1
	# ~3 open files per partition on every node: raise the soft limit to the
	# hard one, lower partition counts that cannot fit.
	# As root the hard limit itself is raised to what the largest count needs
	# (up to fs.nr_open), so 10,000 partitions are measured, not skipped.
	hard=$(ulimit -H -n)
	[ "$hard" = unlimited ] && hard=1048576
	N=0
	for i in $CL_PARTS; do [ "$i" -gt "$N" ] && N=$i; done
	if [ "$hard" -lt $((3 * N + 2000)) ] && [ "$(id -u)" = 0 ]; then
		i=$(cat /proc/sys/fs/nr_open 2>/dev/null || echo "$hard")
		[ "$i" -gt $((3 * N + 2000)) ] && i=$((3 * N + 2000))
		ulimit -H -n "$i" 2>/dev/null && ulimit -S -n "$i" 2>/dev/null && hard=$i
	fi
	ulimit -S -n "$hard" 2>/dev/null
	fit=$(((hard - 2000) / 3 / 1000 * 1000))
	for N in $CL_PARTS; do
		if [ "$N" -gt "$fit" ]; then
			CL_PARTS_NOTE+="${CL_PARTS_NOTE:+; }$N partitions need ~$((3 * N)) open files per node, the limit here is $hard: measured $fit instead"
			N=$fit
		fi
		[ "$N" -ge 1 ] && [[ " $parts " != *" $N "* ]] && parts+=" $N"
	done
	CL_PARTS=$parts
	[ -n "$CL_PARTS_NOTE" ] && log "cluster: $CL_PARTS_NOTE"
	CL_PORT=$(cl_pick_port) || { fail "cluster: no free port found"; return 1; }
	CL_PEERS="peer=1@127.0.0.1:$CL_PORT,peer=2@127.0.0.2:$CL_PORT,peer=3@127.0.0.3:$CL_PORT"
	start_mk cs "num.partitions=8" "$WORK/data-cs"
	for i in 1 2 3; do cl_start $i || { fail "cluster: node $i did not start (see $WORK/log-c$i.txt)"; return 1; }; done
	wait_mounted cs || return 1
	until_ok 20 cl_meta_agreed || { fail "cluster: the three nodes agree on no metadata leader within 20 s"; return 1; }
	log "cluster: 3 nodes up on port $CL_PORT; single node cs up"
	for ((r = 1; r <= CL_REPS; r++)); do
		for v in $(rotated "$r" leader follower single); do
			live cluster && live cs || return 1
			cl_small cw1 "$v" "$r" || add "cw1.rec_per_s.$v" ERR
		done
	done
	for ((r = 1; r <= CL_REPS; r++)); do
		for v in $(rotated "$r" cluster single); do
			live cluster && live cs || return 1
			cl_small cw8 "$v" "$r" || add "cw8.rec_per_s.$v" ERR
		done
	done
	for ((r = 1; r <= CL_REPS; r++)); do
		for v in $(rotated "$r" cluster single); do
			live cluster && live cs || return 1
			cl_bulk "$v" "$r" || add "cbulk.$v" ERR
		done
	done
	stop cs || fail "cs: exited non-zero after fusermount3 -u"
	cl_failover || log "cluster: failover phase ended early (see FAILURES)"
	live cluster && { cl_idle || log "cluster: idle phase ended early (see FAILURES)"; }
}

cl_stop_all() { # stop the ackloops and every node still running; count silences
	local p i
	for p in "${!HELPERS[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; unset "HELPERS[$p]"; done
	for i in c1 c2 c3 cs; do
		[ -n "${PID[$i]:-}" ] && { stop "$i" || fail "$i: exited non-zero after fusermount3 -u"; }
	done
	for i in 1 2 3; do cp "$WORK/data-c$i/minikafka.log" "$WORK/log-c$i.daemon.txt" 2>/dev/null; done
	CL_SILENT=$(cat "$WORK"/log-c[123].daemon.txt 2>/dev/null | grep -c 'silent for 5 s')
	rm -rf "$WORK"/data-c[123] "$WORK"/data-cs
}

# --- 7: the Kafka protocol, against Redis Streams ------------------------------
# The Kafka port (-o kafka.listen) driven by tests/bench/kload.c (librdkafka),
# next to Debian's redis-server as the baseline, all in one run and
# interleaved per repetition (order rotated). Systems:
#   ka     single node, fsync=always (default), kafka.listen=127.0.0.1:KF_PA
#   kn     single node, fsync=never: the same work without the disk, which
#          separates what fsync costs from what the CPU costs
#   kc     three nodes c1-c3 on 127.0.0.1-3 (cluster port and Kafka port picked
#          free), every partition RF3, fsync=always; bootstrap all three
#   redis  redis-server on 127.0.0.1 with a private dir, appendonly yes,
#          appendfsync always (an XADD is answered once it is fsynced; Redis
#          fsyncs once per event-loop pass, i.e. per batch of pipelined
#          commands of all its clients)
# Workloads (KF_N records of 100 bytes, acks=-1):
#   kp1    kload produce to partition 0 of a fresh 8-partition topic
#          (linger.ms=5, batch.num.messages=10000); redis: redis-benchmark
#          -P 100 XADD with its default 50 clients (its best durable figure;
#          "ref:" row: 1 client, -P 100, like kload's one connection)
#   kp8    kload produce round robin over the 8 partitions
#   kcon   kload consume of those KF_N records from offset 0 of kp1's
#          partition (page cache warm: they were just written); redis:
#          XRANGE s - + COUNT 10000 from 1 client (redis-benchmark cannot
#          iterate, so it reads the first 10000 entries KF_N/10000 times:
#          the same serialisation work)
#   klat   kload latency: 10,000 records/s to partition 0 for KF_LAT_SECS (after
#          1 s of warm-up), linger.ms=0, a consumer in the same process reading
#          them; end-to-end p50/p99/p99.9 and the producer's ack p50/p99
# Around each run the CPU time (utime+stime of /proc/PID/stat) of the
# daemon(s) (cluster: the three summed) and the client's own (kload's
# getrusage; redis-benchmark's is not measured) are taken, as % of one core
# over the run, and the daemons' Kafka request counters (.cluster's kafka
# line) give records per request. Checks: every delivery report must be a
# success; the partitions' sizes through the mount are KF_N x 101 bytes (the
# value and its '\n'; in the cluster on all three nodes once caught up);
# kload consume checks every value's layout and order; XLEN = KF_N.
# Environment: BENCH_KAFKA=0 skips the section, =only runs nothing else;
# BENCH_KF_RECORDS (KF_N: 2000000, quick 300000), BENCH_KF_REPS (5, quick 1),
# BENCH_KF_LAT_SECS (10, quick 3), BENCH_KF_RATE (10000).
if [ "$QUICK" = 1 ]; then
	KF_N=${BENCH_KF_RECORDS:-300000}; KF_REPS=${BENCH_KF_REPS:-1}; KF_LAT_SECS=${BENCH_KF_LAT_SECS:-3}
else
	KF_N=${BENCH_KF_RECORDS:-2000000}; KF_REPS=${BENCH_KF_REPS:-5}; KF_LAT_SECS=${BENCH_KF_LAT_SECS:-10}
fi
KF_RATE=${BENCH_KF_RATE:-10000}
KF_SIZE=100
KF_ONLY=0; [ "${BENCH_KAFKA:-1}" = only ] && KF_ONLY=1
KF_RAN=0 KF_T0=$EPOCHREALTIME KF_T1=$EPOCHREALTIME
KF_CPORT=""                  # the cluster's Kafka port (cl_start adds kafka.listen when set)
KF_PA="" KF_PN="" KF_RPORT="" KF_RPID="" KF_NOTE=""
KF_HZ=$(getconf CLK_TCK)

kf_ticks() { local p t=0; for p in "$@"; do t=$((t + $(cl_ticks "$p"))); done; echo $t; }
kf_pids() { # SYSTEM -> the pids of its server process(es)
	case $1 in
	ka | kn) echo "${PID[$1]}" ;;
	kc) echo "${PID[c1]} ${PID[c2]} ${PID[c3]}" ;;
	redis) echo "$KF_RPID" ;;
	esac
}
kf_mounts() { case $1 in kc) echo "${MNT[c1]} ${MNT[c2]} ${MNT[c3]}" ;; *) echo "${MNT[$1]}" ;; esac; }
kf_requests() { # SYSTEM: Kafka requests served so far (the nodes summed)
	local m
	# .cluster says "kafka ... requests=N" or "... kafka.requests=N"
	for m in $(kf_mounts "$1"); do cat "$m/.cluster" 2>/dev/null; done | awk '
		{ for (i = 1; i <= NF; i++)
			if ($i ~ /^kafka\.requests=/ || ($1 == "kafka" && $i ~ /^requests=/)) { sub(/.*=/, "", $i); t += $i } }
		END { print t + 0 }'
}
kf_bootstrap() {
	case $1 in
	ka) echo "127.0.0.1:$KF_PA" ;; kn) echo "127.0.0.1:$KF_PN" ;;
	kc) echo "127.0.0.1:$KF_CPORT,127.0.0.2:$KF_CPORT,127.0.0.3:$KF_CPORT" ;;
	esac
}
kf_live() { case $1 in kc) live cluster ;; redis) [ -n "$KF_RPID" ] && live redis ;; *) live "$1" ;; esac; }
kf_pct() { awk -v a="$1" -v b="$2" -v hz="$KF_HZ" -v s="$3" 'BEGIN { printf "%.0f", (b - a) / hz / s * 100 }'; }
kf_kv() { sed -n "s/.*[ ^]$1=\([0-9.]*\).*/\1/p" <<<" $2"; } # KEY LINE

# kf_topic SYSTEM NAME: a fresh 8-partition topic (cluster: every partition led
# by its preferred replica, CL_LEAD set); prints nothing
kf_topic() {
	case $1 in
	kc) cl_topic "$2" 8 ;;
	*) new_target "$1" "$2" >/dev/null ;;
	esac
}
kf_drop() { case $1 in kc) cl_drop cluster "$2" ;; *) guard "$1" 60 rmdir "${MNT[$1]}/$2" || fail "$1: rmdir ${MNT[$1]}/$2 failed" ;; esac; }
# kf_size SYSTEM TOPIC NPARTS: bytes in partitions 0..NPARTS-1 through the
# mount (cluster: once every node caught up with the leader)
kf_size() {
	local i t=0
	if [ "$1" = kc ]; then cl_caught_up "$2" "$3"; return; fi
	for ((i = 0; i < $3; i++)); do t=$((t + $(fsize "${MNT[$1]}/$2/$i"))); done
	echo $t
}

# kf_run SYSTEM KEY CMD...: run a kload CMD against SYSTEM, timed, with the
# server CPU and request counters around it; records rec_per_s etc under KEY.
# Prints kload's output line (empty on failure).
KF_OUT=""
kf_run() {
	local sys=$1 key=$2 t0 t1 c0 c1 q0 q1 out rc secs gsys=$1
	shift 2
	[ "$sys" = kc ] && gsys=cluster
	local pids=($(kf_pids "$sys")) pa=() pb=() i nodes=""
	for i in "${!pids[@]}"; do pa[i]=$(cl_ticks "${pids[i]}"); done
	c0=$(kf_ticks "${pids[@]}"); q0=$(kf_requests "$sys"); t0=$EPOCHREALTIME
	out=$(guard "$gsys" 300 "$BENCH_BIN/kload" "$@" -T 240 2>"$WORK/kload.err")
	rc=$?
	t1=$EPOCHREALTIME; c1=$(kf_ticks "${pids[@]}"); q1=$(kf_requests "$sys")
	for i in "${!pids[@]}"; do pb[i]=$(cl_ticks "${pids[i]}"); done
	if [ $rc != 0 ]; then
		fail "$sys: kload $* exited $rc: $(tail -3 "$WORK/kload.err" | tr '\n' ' ')"
		KF_OUT=""
		return 1
	fi
	secs=$(fsub "$t0" "$t1")
	for i in "${!pids[@]}"; do nodes+="${nodes:+/}$(kf_pct "${pa[i]}" "${pb[i]}" "$secs")"; done
	KF_OUT="$out srv_cpu_pct=$(kf_pct "$c0" "$c1" "$secs")${pids[1]:+ srv_cpu_per_node=$nodes} requests=$((q1 - q0))"
	local k
	for k in rec_per_s cpu_pct srv_cpu_pct p50_us p99_us p999_us ack_p50_us ack_p99_us; do
		[ -n "$(kf_kv $k "$KF_OUT")" ] && add "$key.$k.$sys" "$(kf_kv $k "$KF_OUT")"
	done
	local recs
	recs=$(kf_kv records "$out")
	[ $((q1 - q0)) -gt 0 ] && [ -n "$recs" ] && add "$key.rec_per_req.$sys" "$((recs / (q1 - q0)))"
	return 0
}

# kf_produce WL SYSTEM REP: WL kp1 (partition 0) or kp8 (all 8); for kp1 the
# topic is kept for kcon (returned in KF_KEEP; KF_DUP=-R when the run stored
# some records twice), else dropped.
KF_KEEP="" KF_DUP=""
KF_DUPREAD=0                 # kcon runs over a partition holding records twice
kf_terms() { # TOPIC NPARTS: the partitions' terms added up, as node 1 sees them
	local i t=0 x
	for ((i = 0; i < $2; i++)); do
		x=$(cl_field "$(cl_pline 1 "$1/$i")" term)
		t=$((t + ${x:-0}))
	done
	echo $t
}
KF_ELECT=0                   # cluster produce runs during which a leader changed
kf_produce() {
	local wl=$1 sys=$2 r=$3 t="$1-$2-$3" p=0 np=1 size want e0=0 e1=0 un
	[ "$wl" = kp8 ] && p=-1 np=8
	kf_topic "$sys" "$t" || return 1
	[ "$sys" = kc ] && e0=$(kf_terms "$t" $np)
	sync
	kf_run "$sys" "$wl" produce -b "$(kf_bootstrap "$sys")" -t "$t" -p $p -n "$KF_N" -s $KF_SIZE -a -1 || return 1
	size=$(kf_size "$sys" "$t" $np) || return 1
	[ "$sys" = kc ] && e1=$(kf_terms "$t" $np)
	want=$((KF_N * (KF_SIZE + 1)))
	un=$(kf_kv unordered "$KF_OUT")
	if [ "$e1" != "$e0" ]; then
		KF_ELECT=$((KF_ELECT + 1))
		fail "$wl $sys r$r: leaders changed during the run (terms of $t/0..$((np - 1)) added up: $e0 -> $e1), $((size / (KF_SIZE + 1) - KF_N)) records stored twice (retries of a non-idempotent producer), ${un:-?} reports out of order: $KF_OUT (daemon logs $WORK/log-kc[123].daemon.txt)"
	elif [ "$size" != "$want" ] || [ "${un:-0}" != 0 ]; then
		fail "$wl $sys r$r: after $KF_N acknowledged records the partitions hold $size bytes through the mount, expected $want; ${un:-?} reports out of order"
		return 1
	fi
	log "$wl r$r $sys: $KF_OUT"
	# kcon reads kp1's records back (with -R after a run that stored some twice)
	KF_DUP=""
	[ "$e1" != "$e0" ] && KF_DUP=-R
	if [ "$wl" = kp1 ]; then KF_KEEP=$t; else kf_drop "$sys" "$t"; fi
}

kf_consume() { # SYSTEM REP TOPIC [-R]: read kp1's records back
	kf_run "$1" kcon consume -b "$(kf_bootstrap "$1")" -t "$3" -p 0 -n "$KF_N" -s $KF_SIZE ${4:-} || return 1
	log "kcon r$2 $1: $KF_OUT"
	[ -n "${4:-}" ] && KF_DUPREAD=$((KF_DUPREAD + 1))
	return 0
}

kf_latency() { # SYSTEM REP
	local t="klat-$1-$2"
	kf_topic "$1" "$t" || return 1
	kf_run "$1" klat latency -b "$(kf_bootstrap "$1")" -t "$t" -p 0 -r "$KF_RATE" -d "$KF_LAT_SECS" -w 1 -s $KF_SIZE -a -1 || return 1
	log "klat r$2 $1: $KF_OUT"
	kf_drop "$1" "$t"
}

# The disk's own durable-append latency, for the latency rows: writer.c,
# 1 thread, write()+fdatasync() of 101-byte records on a plain file of the
# same file system, for 2 s.
kf_rawsync() { # REP
	local out k
	mkdir -p "$WORK/kraw"
	rm -f "$WORK/kraw/0"
	out=$(guard raw 60 "$BENCH_BIN/writer" -t 1 -d 2 -s $((KF_SIZE + 1)) -S -c "$WORK/kraw/0") ||
		{ fail "raw: writer -S on $WORK/kraw/0 failed: $out"; return 1; }
	for k in p50_us p99_us p999_us; do add "klat.$k.raw" "$(kf_kv $k "$out")"; done
	log "klat r$1 raw write+fdatasync: $out"
	rm -rf "$WORK/kraw"
}

# Where the daemon's time goes, by system call: untimed runs (KF_N/4 records)
# with strace -c -f attached to the daemon (ka; for the cluster, partition 0's
# leader), then calls per record of every system call made at least once
# per 1000 records, and of fdatasync, fsync and clone3 (threads) however rare.
# Skipped without strace.
declare -A KF_SYS=()
kf_strace() { # NAME PID CMD...: run kload CMD under strace on PID; KF_SYS[NAME] = summary
	local name=$1 pid=$2 spid f=$WORK/strace-$1.txt recs
	shift 2
	command -v strace >/dev/null || return 0
	strace -c -f -q -p "$pid" -o "$f" 2>/dev/null &
	spid=$!
	HELPERS[$spid]=1
	sleep 0.5                    # attached to every thread
	local g=${name%%-*}
	[ "$g" = kc ] && g=cluster
	if ! guard "$g" 300 "$BENCH_BIN/kload" "$@" -T 240 >"$f.out" 2>"$WORK/kload.err"; then
		fail "strace run $name: kload $* failed: $(tail -2 "$WORK/kload.err" | tr '\n' ' ')"
	fi
	kill -INT "$spid" 2>/dev/null
	until_ok 10 cl_exited "$spid" || kill -KILL "$spid" 2>/dev/null
	wait "$spid" 2>/dev/null
	unset "HELPERS[$spid]"
	recs=$(kf_kv records "$(cat "$f.out")")
	[ -n "$recs" ] && [ -s "$f" ] || return 0
	# strace -c: "% time, seconds, usecs/call, calls, [errors], syscall"
	KF_SYS[$name]=$(awk -v n="$recs" '$1 ~ /^[0-9.]+$/ && $NF != "total" &&
			($4 / n >= 0.001 || $NF ~ /^(fdatasync|fsync|clone3)$/) { print $NF, $4 / n }' "$f" |
		sort -k2 -gr | awk '{ printf "%s%s %.2g", (NR > 1 ? ", " : ""), $1, $2 }')
	log "strace $name ($recs records): ${KF_SYS[$name]} per record"
}
kf_syscalls() {
	local t=ksys-ka n=$((KF_N / 4)) L
	kf_topic ka "$t" || return 1
	kf_strace ka-produce "${PID[ka]}" produce -b "$(kf_bootstrap ka)" -t "$t" -p 0 -n $n -s $KF_SIZE -a -1
	kf_strace ka-consume "${PID[ka]}" consume -b "$(kf_bootstrap ka)" -t "$t" -p 0 -n $n -s $KF_SIZE
	kf_drop ka "$t"
	live cluster || return 0
	t=ksys-kc
	kf_topic kc "$t" || return 1
	L=${CL_LEAD[0]}
	kf_strace kc-produce-leader "${PID[c$L]}" produce -b "$(kf_bootstrap kc)" -t "$t" -p 0 -n $n -s $KF_SIZE -a -1
	kf_drop kc "$t"
}

# --- Redis Streams ---
kf_rcli() { timeout 60 redis-cli -h 127.0.0.1 -p "$KF_RPORT" "$@"; }
kf_redis_start() {
	command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null && command -v redis-cli >/dev/null ||
		{ KF_NOTE+="${KF_NOTE:+; }redis-server/redis-benchmark/redis-cli missing (tests/install-deps.sh): Redis column n/a"; return 1; }
	KF_RPORT=$(cl_pick_port) || return 1
	mkdir -p "$WORK/redis"
	"${RT[@]}" redis-server --port "$KF_RPORT" --bind 127.0.0.1 --dir "$WORK/redis" --appendonly yes \
		--appendfsync always --save '' --daemonize no --protected-mode yes \
		--logfile "$WORK/log-redis.txt" >/dev/null 2>&1 &
	KF_RPID=$!
	HELPERS[$KF_RPID]=1
	until_ok 10 kf_rcli ping >/dev/null 2>&1 || { fail "redis: no PONG from 127.0.0.1:$KF_RPORT within 10 s (see $WORK/log-redis.txt)"; KF_RPID=""; return 1; }
	[ "$(kf_rcli config get appendfsync | tail -1)" = always ] || { fail "redis: appendfsync is not always"; return 1; }
}
kf_redis_stop() {
	[ -n "$KF_RPID" ] || return 0
	kf_rcli shutdown nosave >/dev/null 2>&1
	until_ok 10 cl_exited "$KF_RPID" || kill -TERM "$KF_RPID" 2>/dev/null
	wait "$KF_RPID" 2>/dev/null
	unset "HELPERS[$KF_RPID]"
	KF_RPID=""
	rm -rf "$WORK/redis"
}
# kf_redis_bench KEY MULT ARGS...: redis-benchmark --csv ARGS; records
# requests/s x MULT under KEY, with redis-server's CPU
kf_redis_bench() {
	local key=$1 mult=$2 t0 t1 c0 c1 out rps v
	shift 2
	c0=$(kf_ticks "$KF_RPID"); t0=$EPOCHREALTIME
	out=$(guard redis 300 redis-benchmark -h 127.0.0.1 -p "$KF_RPORT" --csv "$@" 2>"$WORK/redis-bench.err") ||
		{ fail "redis: redis-benchmark $* failed: $(tail -2 "$WORK/redis-bench.err" | tr '\n' ' ')"; return 1; }
	t1=$EPOCHREALTIME; c1=$(kf_ticks "$KF_RPID")
	rps=$(tail -1 <<<"$out" | awk -F'","' '{ print $2 }')
	[[ $rps =~ ^[0-9.]+$ ]] || { fail "redis: no requests/s in redis-benchmark's output: $out"; return 1; }
	v=$(awk -v a="$rps" -v m="$mult" 'BEGIN { printf "%.0f", a * m }')
	add "$key.rec_per_s.redis" "$v"
	add "$key.srv_cpu_pct.redis" "$(kf_pct "$c0" "$c1" "$(fsub "$t0" "$t1")")"
	KF_OUT="rec_per_s=$v srv_cpu_pct=$(kf_pct "$c0" "$c1" "$(fsub "$t0" "$t1")")"
}
kf_redis_produce() { # KEY CLIENTS REP
	local n
	kf_rcli del s >/dev/null || { fail "redis: DEL s failed"; return 1; }
	kf_redis_bench "$1" 1 -c "$2" -P 100 -n "$KF_N" XADD s '*' f "$KF_VALUE" || return 1
	n=$(kf_rcli xlen s)
	[ "$n" = "$KF_N" ] || { fail "redis: XLEN s is $n after $KF_N XADDs"; return 1; }
	log "$1 r$3 redis ($2 clients): $KF_OUT"
}
kf_redis_consume() { # REP
	kf_redis_bench kcon 10000 -c 1 -P 1 -n $(((KF_N + 9999) / 10000)) XRANGE s - + COUNT 10000 || return 1
	log "kcon r$1 redis: $KF_OUT"
	kf_rcli del s >/dev/null
	kf_rcli bgrewriteaof >/dev/null   # drop the AOF's history: disk stays bounded
}

bench_kafka() {
	local r v i
	local CL_PORT CL_PEERS CL_L CL_REPL
	local -A CL_UP=() CL_LEAD=() CL_RSET=()
	KF_RAN=1
	KF_VALUE=$(printf '%*s' $KF_SIZE '' | tr ' ' v)
	rm -f "$WORK/broken-cluster"
	KF_PA=$(cl_pick_port) && KF_PN=$(cl_pick_port) && KF_CPORT=$(cl_pick_port) && CL_PORT=$(cl_pick_port) ||
		{ fail "kafka: no free port found"; return 1; }
	CL_PEERS="peer=1@127.0.0.1:$CL_PORT,peer=2@127.0.0.2:$CL_PORT,peer=3@127.0.0.3:$CL_PORT"
	start_mk ka "num.partitions=8,kafka.listen=127.0.0.1:$KF_PA" "$WORK/data-ka"
	start_mk kn "fsync=never,num.partitions=8,kafka.listen=127.0.0.1:$KF_PN" "$WORK/data-kn"
	for i in 1 2 3; do cl_start $i || { fail "kafka: cluster node $i did not start (see $WORK/log-c$i.txt)"; return 1; }; done
	wait_mounted ka && wait_mounted kn || return 1
	until_ok 20 cl_meta_agreed || { fail "kafka: the three nodes agree on no metadata leader within 20 s"; return 1; }
	kf_redis_start || log "kafka: no Redis baseline: ${KF_NOTE:-see FAILURES}"
	log "kafka: ka on 127.0.0.1:$KF_PA, kn on 127.0.0.1:$KF_PN, cluster Kafka port $KF_CPORT (peers $CL_PORT), redis on ${KF_RPORT:-n/a}"
	local systems=(ka kn kc)
	[ -n "$KF_RPID" ] && systems+=(redis)
	declare -A keep=() dup=()
	for ((r = 1; r <= KF_REPS; r++)); do
		for v in $(rotated "$r" "${systems[@]}" redis1); do
			case $v in
			redis) kf_live redis && { kf_redis_produce kp1 50 "$r" || add kp1.rec_per_s.redis ERR; } ;;
			redis1) kf_live redis && { kf_redis_produce kp1c1 1 "$r" || add kp1c1.rec_per_s.redis ERR; } ;;
			*) kf_live "$v" || continue
				KF_KEEP="" KF_DUP=""
				kf_produce kp1 "$v" "$r" || add "kp1.rec_per_s.$v" ERR
				keep[$v]=$KF_KEEP dup[$v]=$KF_DUP ;;
			esac
		done
		# consume what kp1 just wrote (redis: the stream of whichever XADD run
		# came last; refilled if that run failed)
		for v in $(rotated "$r" ka kc redis); do
			case $v in
			redis) kf_live redis || continue
				[ "$(kf_rcli xlen s)" = "$KF_N" ] || kf_redis_produce kfill 50 "$r" >/dev/null
				kf_redis_consume "$r" || add kcon.rec_per_s.redis ERR ;;
			*) kf_live "$v" && [ -n "${keep[$v]:-}" ] || continue
				kf_consume "$v" "$r" "${keep[$v]}" "${dup[$v]:-}" || add "kcon.rec_per_s.$v" ERR ;;
			esac
		done
		for v in ka kn kc; do [ -n "${keep[$v]:-}" ] && kf_live "$v" && kf_drop "$v" "${keep[$v]}"; keep[$v]=""; done
		for v in $(rotated "$r" ka kn kc); do
			kf_live "$v" || continue
			kf_produce kp8 "$v" "$r" || add "kp8.rec_per_s.$v" ERR
		done
		for v in $(rotated "$r" ka kn kc raw); do
			if [ $v = raw ]; then kf_rawsync "$r" || add klat.p50_us.raw ERR; continue; fi
			kf_live "$v" || continue
			kf_latency "$v" "$r" || add "klat.p50_us.$v" ERR
		done
	done
	kf_live ka && { kf_syscalls || log "kafka: the strace runs ended early"; }
}

kf_stop_all() {
	local i
	kf_redis_stop
	for i in ka kn c1 c2 c3; do
		[ -n "${PID[$i]:-}" ] && { stop "$i" || fail "$i: exited non-zero after fusermount3 -u"; }
	done
	for i in ka kn; do cp "$WORK/data-$i/minikafka.log" "$WORK/log-$i.daemon.txt" 2>/dev/null; done
	for i in 1 2 3; do cp "$WORK/data-c$i/minikafka.log" "$WORK/log-kc$i.daemon.txt" 2>/dev/null; done
	rm -rf "$WORK"/data-ka "$WORK"/data-kn "$WORK"/data-c[123]
}

# --- the table -----------------------------------------------------------------
fmt() { # value -> printable
	case $1 in n/a | ERR) echo "$1" ;; "") echo "-" ;; *) awk -v v="$1" 'BEGIN {
		if (v >= 100) printf "%.0f", v; else if (v >= 10) printf "%.1f", v;
		else printf "%.3g", v }' ;; esac
}
# goal LABEL NUM DEN OP LIMIT: "LABEL 1.23x >=1.0 met"
goal() {
	local label=$1 a=$2 b=$3 op=$4 lim=$5
	case "$a$b" in *n/a* | *ERR*) printf '%s n/a' "$label"; return ;; esac
	awk -v l="$label" -v a="$a" -v b="$b" -v op="$op" -v lim="$lim" 'BEGIN {
		if (b == 0) { printf "%s n/a", l; exit }
		x = a / b; ok = (op == ">=") ? (x >= lim) : (x <= lim)
		printf "%s %.2fx (goal %s%s) %s", l, x, op, lim, ok ? "MET" : "MISSED" }'
}
ratio() { # LABEL NUM DEN: "LABEL 1.23x", no goal
	case "$2$3" in *n/a* | *ERR*) printf '%s n/a' "$1"; return ;; esac
	awk -v l="$1" -v a="$2" -v b="$3" 'BEGIN { if (b == 0) printf "%s n/a", l; else printf "%s %.2fx", l, a / b }'
}
row() { # LABEL c1 c2 c3 c4 NOTES
	printf '%-38s | %17s | %16s | %14s | %10s | %s\n' "$1" "$(fmt "$2")" "$(fmt "$3")" \
		"$(fmt "$4")" "$(fmt "$5")" "$6"
}
m() { median "$1"; }

table() {
	local wl lbl k ma mn pt rs
	echo "minikafka bench $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) cores, $(uname -r)"
	echo "mode: $([ "$QUICK" = 1 ] && echo 'BENCH_QUICK=1' || echo full); medians of $REPS repetitions" \
		"(start-up: $STARTUP_REPS); bulk $BULK_MB MB; small records ${RECSIZE} B, ${SECS} s per run"
	echo "columns: minikafka fsync=always | fsync=never | passthrough_ll (plain write, no fsync) |" \
		"raw local fs (small records: write+fdatasync)"
	echo "'ref:' rows: bulk: dd with O_DSYNC (durable per 128 KiB write) on passthrough_ll and raw;"
	echo "   small records: passthrough_ll column = write+fdatasync per record, raw column = write() without fsync"
	echo "cold read = after sync + drop_caches; warm = the same file read again at once;" \
		"'-' = not applicable, n/a = not measured"
	echo "scheduling: ${RT[*]:-normal}${RT[*]:+ (SCHED_FIFO 1, BENCH_RT=1) for every measured process}"
	echo
	printf '%-38s | %17s | %16s | %14s | %10s | %s\n' workload "minikafka(always)" "minikafka(never)" \
		passthrough_ll raw "ratio(s) vs goal"
	printf '%s\n' "$(printf '%.0s-' {1..140})"
	row "bulk append, cat >> (MB/s)" "$(m bulk.mk-always)" "$(m bulk.mk-never)" "$(m bulk.pt)" \
		"$(m bulk.raw)" "$(goal 'always/pt' "$(m bulk.mk-always)" "$(m bulk.pt)" '>=' 1.0); $(ratio 'info: never/pt' "$(m bulk.mk-never)" "$(m bulk.pt)")"
	row "  ref: O_DSYNC 128 KiB writes (dd)" "" "" "$(m bulk.pt-sync)" "$(m bulk.raw-sync)" \
		"$(ratio 'info: always/raw-dsync' "$(m bulk.mk-always)" "$(m bulk.raw-sync)")"
	for k in rcold rwarm; do
		lbl="seq read cold, cat (MB/s)"; [ $k = rwarm ] && lbl="seq read warm, cat (MB/s)"
		row "$lbl" "$(m $k.mk-always)" "$(m $k.mk-never)" "$(m $k.pt)" "$(m $k.raw)" \
			"$(goal 'always/pt' "$(m $k.mk-always)" "$(m $k.pt)" '>=' 1.0)"
	done
	for wl in w1 w8p1 w8p8; do
		case $wl in
		w1) lbl="1 writer (rec/s)" ;;
		w8p1) lbl="8 writers, 1 partition/file (rec/s)" ;;
		w8p8) lbl="8 writers, 8 partitions/files (rec/s)" ;;
		esac
		k=$wl.rec_per_s
		ma=$(m $k.mk-always); mn=$(m $k.mk-never); pt=$(m $k.pt); rs=$(m $k.raw-sync)
		case $wl in
		w1) row "$lbl" "$ma" "$mn" "$pt" "$rs" \
			"$(goal 'always/raw-sync' "$ma" "$rs" '>=' 0.8); $(goal 'never/pt' "$mn" "$pt" '>=' 1.0)" ;;
		w8p1) row "$lbl" "$ma" "$mn" "$pt" "$rs" \
			"$(goal 'never/pt' "$mn" "$pt" '>=' 1.0); $(ratio 'info: always/raw-sync' "$ma" "$rs")" ;;
		w8p8) row "$lbl" "$ma" "$mn" "$pt" "$rs" "$(goal 'always/pt' "$ma" "$pt" '>=' 0.5)" ;;
		esac
		row "  ref: pt +fdatasync, raw no fsync" "" "" "$(m $k.pt-sync)" "$(m $k.raw)" ""
	done
	for k in p50_us p99_us p999_us; do
		ma=$(m w1.$k.mk-always); rs=$(m w1.$k.raw-sync)
		row "1 writer latency ${k%_us} (us)" "$ma" "$(m w1.$k.mk-never)" "$(m w1.$k.pt)" "$rs" \
			"$([ $k = p99_us ] && goal 'always/raw-sync' "$ma" "$rs" '<=' 1.5)"
		row "  ref: pt +fdatasync, raw no fsync" "" "" "$(m w1.$k.pt-sync)" "$(m w1.$k.raw)" ""
	done
	local gb how v
	for gb in $STARTUP_GB; do
		for how in clean kill9; do
			v=$(m start.$how.$gb)
			lbl="start-up $gb GB, after $([ $how = clean ] && echo 'clean stop' || echo 'kill -9') (s)"
			row "$lbl" "$v" "" "" "" "$(case $v in n/a | ERR) echo "goal < 1 s: n/a" ;;
				*) awk -v v="$v" -v g="$gb" 'BEGIN { printf "goal < 1 s%s: %s", (g == 10 ? "" : " (stated at 10 GB)"), v < 1 ? "MET" : "MISSED" }' ;; esac)"
		done
	done
	echo
	echo "machine at start: $LOAD0"
	local l0=${LOAD0#load } l1
	l1=$(busy)
	echo "machine at end:   $l1"
	l1=${l1#load }
	awk -v a="${l0%% *}" -v b="${l1%% *}" -v n="$(nproc)" -v rt=${#RT[@]} 'BEGIN { if (a > n / 2 || b > n / 2)
		print "WARNING: the machine was busy during the run: treat the figures as rough" \
			(rt ? "" : "; durable small-record figures are hurt most (see BENCH_RT=1 in tests/bench/bench.sh)") }'
	echo "every repetition, with min/max: $BENCH_BIN/samples.txt; daemon logs: $WORK/log-*.txt"
}

# The cluster section's table: 3 nodes against the single node of the same run.
crow() { printf '%-62s | %15s | %13s | %s\n' "$@"; }
pair() { printf '%s / %s' "$(fmt "$1")" "$(fmt "$2")"; } # "p50 / p99"
cluster_table() {
	local N v k a b lbl
	echo
	echo "CLUSTER: 3 nodes (127.0.0.1-3, port $CL_PORT, one machine, one disk), every partition RF3, fsync=always,"
	echo "against one single-node daemon (fsync=always) run alongside, interleaved per repetition; medians of $CL_REPS"
	echo "(failover: $CL_KILLS kills); 100-byte records one write() each, ${SECS} s per run; bulk $BULK_MB MB"
	echo
	crow workload "3 nodes RF3" "single node" "ratio vs goal"
	printf '%s\n' "$(printf '%.0s-' {1..140})"
	crow "1 writer on partition 0's leader's mount (rec/s)" "$(fmt "$(m cw1.rec_per_s.leader)")" \
		"$(fmt "$(m cw1.rec_per_s.single)")" "$(goal 'cluster/single' "$(m cw1.rec_per_s.leader)" "$(m cw1.rec_per_s.single)" '>=' 0.5)"
	crow "  latency p50 / p99 (us)" "$(pair "$(m cw1.p50_us.leader)" "$(m cw1.p99_us.leader)")" \
		"$(pair "$(m cw1.p50_us.single)" "$(m cw1.p99_us.single)")" \
		"$(ratio 'info: p50' "$(m cw1.p50_us.leader)" "$(m cw1.p50_us.single)"); $(ratio 'p99' "$(m cw1.p99_us.leader)" "$(m cw1.p99_us.single)")"
	crow "1 writer on a follower's mount (rec/s)" "$(fmt "$(m cw1.rec_per_s.follower)")" \
		"$(fmt "$(m cw1.rec_per_s.single)")" "$(ratio 'info: cluster/single' "$(m cw1.rec_per_s.follower)" "$(m cw1.rec_per_s.single)")"
	crow "  latency p50 / p99 (us)" "$(pair "$(m cw1.p50_us.follower)" "$(m cw1.p99_us.follower)")" \
		"$(pair "$(m cw1.p50_us.single)" "$(m cw1.p99_us.single)")" \
		"$(ratio 'info: p50' "$(m cw1.p50_us.follower)" "$(m cw1.p50_us.single)"); $(ratio 'p99' "$(m cw1.p99_us.follower)" "$(m cw1.p99_us.single)")"
	crow "8 writers, 8 partitions, each on its leader's mount (rec/s)" "$(fmt "$(m cw8.rec_per_s.cluster)")" \
		"$(fmt "$(m cw8.rec_per_s.single)")" "$(goal 'cluster/single' "$(m cw8.rec_per_s.cluster)" "$(m cw8.rec_per_s.single)" '>=' 0.5)"
	crow "  latency p50 / p99 (us)" "$(pair "$(m cw8.p50_us.cluster)" "$(m cw8.p99_us.cluster)")" \
		"$(pair "$(m cw8.p50_us.single)" "$(m cw8.p99_us.single)")" ""
	crow "bulk append, cat >> partition 0 on its leader's mount (MB/s)" "$(fmt "$(m cbulk.cluster)")" \
		"$(fmt "$(m cbulk.single)")" "$(goal 'cluster/single' "$(m cbulk.cluster)" "$(m cbulk.single)" '>=' 0.28) (1/3: 3 replicas, 1 disk)"
	v=$(m cfail.ms)
	a=$(printf '%s\n' ${VALS[cfail.ms]:-} | grep -v -e ERR -e '^$' | sort -g | tail -1)
	b=$(printf '%s\n' ${VALS[cfail.ms]:-} | grep -v -e ERR -e '^$' | wc -l)
	crow "failover: kill -9 of the leader -> first ack, survivor (ms)" "$(fmt "$v")" "-" \
		"$(case $v in n/a) echo "goal <= 1000 ms median: n/a" ;; *) awk -v v="$v" 'BEGIN { printf "goal <= 1000 ms median: %s", v <= 1000 ? "MET" : "MISSED" }' ;; esac); max ${a:-n/a} ms over $b kills; writes failed: $CL_WFAIL"
	crow "  restart of the killed node -> back in sync (s)" "$(fmt "$(m cfail.resync_s)")" "-" "info"
	for N in $CL_PARTS; do
		a=$(for k in 1 2 3; do m cidle.$N.cpu.n$k; done | awk '{ printf "%s%s", (NR > 1 ? " / " : ""), ($1 == "n/a" ? $1 : sprintf("%.1f", $1)) }')
		b=$(for k in 1 2 3; do m cidle.$N.cpu.n$k; done | awk '$1 == "n/a" { na = 1 } { if ($1 + 0 > x) x = $1 + 0 } END { print na ? "n/a" : x }')
		crow "idle, $N partitions: CPU per node 1/2/3 (% of a core)" "$a" "-" \
			"$(case $b in n/a) echo "goal < 2 %: n/a" ;; *) awk -v v="$b" 'BEGIN { printf "goal < 2 %% on every node: %s", v < 2 ? "MET" : "MISSED" }' ;; esac); quiet $(fmt "$(m cidle.$N.quiet_s)") s after the grow"
	done
	N=${CL_PARTS##* }
	if [ -n "$N" ]; then
		crow "start-up, node 3 with $N partitions: mount answers (s)" "$(fmt "$(m cstart.$N.mount_s)")" "-" "after a clean stop$([ "$(id -u)" = 0 ] && echo ' and drop_caches')"
		crow "  ... until its .cluster names every partition's leader (s)" "$(fmt "$(m cstart.$N.led_s)")" "-" ""
	fi
	[ -n "$CL_PARTS_NOTE" ] && echo "note: $CL_PARTS_NOTE"
	echo "peer connections closed after 5 s of silence during the section: ${CL_SILENT:-n/a} (daemon logs $WORK/log-c[123].daemon.txt)"
	echo "cluster section: $(awk -v a="$CL_T0" -v b="$CL_T1" 'BEGIN { printf "%.0f", b - a }') s; machine at its end: $(busy)"
}

# The Kafka section's table: the three minikafka set-ups and Redis side by side.
krow() { printf '%-50s | %13s | %13s | %13s | %13s | %s\n' "$@"; }
kf_goal_abs() { # LABEL VALUE OP LIMIT UNIT: "LABEL 812345 vs goal >=1000000: 0.81x MISSED"
	case $2 in n/a | ERR | "") printf '%s: n/a' "$1"; return ;; esac
	awk -v l="$1" -v v="$2" -v op="$3" -v g="$4" 'BEGIN {
		ok = (op == ">=") ? (v >= g) : (v <= g)
		printf "%s %s%s: %.2fx %s", l, op, g, v / g, ok ? "MET" : "MISSED" }'
}
kf_cpu() { # KEY SYSTEM: "server% + client%" (client n/a for redis)
	local s c
	s=$(m "$1.srv_cpu_pct.$2"); c=$(m "$1.cpu_pct.$2")
	[ "$s" = n/a ] && { echo "-"; return; }
	[ "$2" = redis ] && { printf '%.0f + ?' "$s"; return; }
	[ "$c" = n/a ] && { printf '%.0f + n/a' "$s"; return; }
	printf '%.0f + %.0f' "$s" "$c"
}
kafka_table() {
	local k
	[ "$KF_ONLY" = 1 ] || echo
	echo "KAFKA: the Kafka port driven by tests/bench/kload.c (librdkafka $(pkg-config --modversion rdkafka 2>/dev/null || echo '?')), 100-byte values, acks=-1;"
	echo "single node fsync=always / fsync=never (the same without the disk), 3 nodes RF3 on 127.0.0.1-3 (fsync=always, one disk),"
	echo "and Redis $(redis-server --version 2>/dev/null | sed -n 's/.*v=\([^ ]*\).*/\1/p') Streams (appendonly yes, appendfsync always) via redis-benchmark;" \
		"$KF_N records per run, medians of $KF_REPS, interleaved"
	echo "produce: linger.ms=5, batch.num.messages=10000; Redis: XADD, -P 100, 50 clients (ref: 1 client); consume: from offset 0, page cache warm;"
	echo "Redis consume: XRANGE COUNT 10000 from 1 client; latency: $KF_RATE rec/s for $KF_LAT_SECS s, linger.ms=0, consumer in the same process"
	echo "cpu rows: the server's CPU (cluster: 3 nodes summed) + kload's, % of one core over the run (2 cores = 200 %)"
	echo
	krow workload "single always" "single never" "3 nodes RF3" "Redis always" "goal / ratio"
	printf '%s\n' "$(printf '%.0s-' {1..160})"
	local a n c rd rd1
	a=$(m kp1.rec_per_s.ka); n=$(m kp1.rec_per_s.kn); c=$(m kp1.rec_per_s.kc); rd=$(m kp1.rec_per_s.redis); rd1=$(m kp1c1.rec_per_s.redis)
	krow "produce, 1 partition (rec/s)" "$(fmt "$a")" "$(fmt "$n")" "$(fmt "$c")" "$(fmt "$rd")" \
		"$(kf_goal_abs 'single' "$a" '>=' 1000000); $(goal 'single/Redis' "$a" "$rd" '>=' 3); $(kf_goal_abs 'RF3' "$c" '>=' 400000)"
	krow "  ref: Redis 1 client" "" "" "" "$(fmt "$rd1")" "$(ratio 'info: single/Redis-1-client' "$a" "$rd1")"
	krow "  cpu: server + client (% of a core)" "$(kf_cpu kp1 ka)" "$(kf_cpu kp1 kn)" "$(kf_cpu kp1 kc)" "$(kf_cpu kp1 redis)" \
		"records per Kafka request: $(fmt "$(m kp1.rec_per_req.ka)") / $(fmt "$(m kp1.rec_per_req.kn)") / $(fmt "$(m kp1.rec_per_req.kc)")"
	a=$(m kp8.rec_per_s.ka); n=$(m kp8.rec_per_s.kn); c=$(m kp8.rec_per_s.kc)
	krow "produce, 8 partitions round robin (rec/s)" "$(fmt "$a")" "$(fmt "$n")" "$(fmt "$c")" "-" \
		"$(kf_goal_abs 'single' "$a" '>=' 1000000); $(goal 'single/Redis' "$a" "$rd" '>=' 3); $(kf_goal_abs 'RF3' "$c" '>=' 400000)"
	krow "  cpu: server + client (% of a core)" "$(kf_cpu kp8 ka)" "$(kf_cpu kp8 kn)" "$(kf_cpu kp8 kc)" "" \
		"records per Kafka request: $(fmt "$(m kp8.rec_per_req.ka)") / $(fmt "$(m kp8.rec_per_req.kn)") / $(fmt "$(m kp8.rec_per_req.kc)")"
	a=$(m kcon.rec_per_s.ka); c=$(m kcon.rec_per_s.kc); rd=$(m kcon.rec_per_s.redis)
	krow "consume 1 partition from offset 0 (rec/s)" "$(fmt "$a")" "-" "$(fmt "$c")" "$(fmt "$rd")" \
		"$(kf_goal_abs 'single' "$a" '>=' 2000000); $(ratio 'info: single/Redis' "$a" "$rd"); $(ratio 'RF3/single' "$c" "$a")"
	krow "  cpu: server + client (% of a core)" "$(kf_cpu kcon ka)" "-" "$(kf_cpu kcon kc)" "$(kf_cpu kcon redis)" \
		"records per Kafka request: $(fmt "$(m kcon.rec_per_req.ka)") / - / $(fmt "$(m kcon.rec_per_req.kc)")"
	krow "latency at $KF_RATE rec/s, p50 (us)" "$(fmt "$(m klat.p50_us.ka)")" "$(fmt "$(m klat.p50_us.kn)")" "$(fmt "$(m klat.p50_us.kc)")" "-" \
		"$(kf_goal_abs 'single' "$(m klat.p50_us.ka)" '<=' 1000); $(kf_goal_abs 'RF3' "$(m klat.p50_us.kc)" '<=' 3000)"
	krow "  p99 (us)" "$(fmt "$(m klat.p99_us.ka)")" "$(fmt "$(m klat.p99_us.kn)")" "$(fmt "$(m klat.p99_us.kc)")" "-" \
		"$(kf_goal_abs 'single' "$(m klat.p99_us.ka)" '<=' 3000); $(kf_goal_abs 'RF3' "$(m klat.p99_us.kc)" '<=' 10000)"
	krow "  p99.9 (us)" "$(fmt "$(m klat.p999_us.ka)")" "$(fmt "$(m klat.p999_us.kn)")" "$(fmt "$(m klat.p999_us.kc)")" "-" "info"
	krow "  ref: raw write+fdatasync p50 / p99 (us)" "$(pair "$(m klat.p50_us.raw)" "$(m klat.p99_us.raw)")" "" "" "" \
		"info: 1 writer, plain file, same disk: what one durable append costs here"
	krow "  producer ack p50 / p99 (us)" "$(pair "$(m klat.ack_p50_us.ka)" "$(m klat.ack_p99_us.ka)")" \
		"$(pair "$(m klat.ack_p50_us.kn)" "$(m klat.ack_p99_us.kn)")" "$(pair "$(m klat.ack_p50_us.kc)" "$(m klat.ack_p99_us.kc)")" "-" \
		"info: send -> delivery report"
	krow "  cpu: server + client (% of a core)" "$(kf_cpu klat ka)" "$(kf_cpu klat kn)" "$(kf_cpu klat kc)" "-" ""
	for k in ka-produce ka-consume kc-produce-leader; do
		[ -n "${KF_SYS[$k]:-}" ] && echo "system calls per record, $k (strace -c -f on the daemon, untimed run): ${KF_SYS[$k]}"
	done
	[ -n "$KF_NOTE" ] && echo "note: $KF_NOTE"
	[ "$KF_ELECT" != 0 ] && echo "note: in $KF_ELECT cluster produce run(s) leaders changed under the load (counted above; see FAILURES)"
	[ "$KF_DUPREAD" != 0 ] && echo "note: $KF_DUPREAD cluster consume run(s) read a partition that holds records twice (after such a run; kload -R)"
	echo "kafka section: $(awk -v a="$KF_T0" -v b="$KF_T1" 'BEGIN { printf "%.0f", b - a }') s; machine at its end: $(busy)"
}

# --- main ----------------------------------------------------------------------
main() {
	local s
	[ "$KF_ONLY" = 1 ] && CL_ONLY=0
	local kafka=1
	{ [ "${BENCH_KAFKA:-1}" = 0 ] || [ "$CL_ONLY" = 1 ]; } && kafka=0
	for s in writer checklog genlines waitsize ackloop passthrough_ll $([ $kafka = 1 ] && echo kload); do
		[ -x "$BENCH_BIN/$s" ] || { log "missing $BENCH_BIN/$s: run make bench"; exit 2; }
	done
	# stale mounts from an interrupted earlier run of this script (ours to unmount)
	for s in $(awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/mounts); do
		log "unmounting stale $s"; fusermount3 -u -z "$s"
	done
	rm -rf "$WORK"
	mkdir -p "$WORK/raw"
	local need=$((BULK_MB * REPS * 3 / 1000 + BULK_MB * 4 / 1000 + 5)) gb
	for gb in $STARTUP_GB; do need=$((need + gb + 1)); done
	[ "$KF_ONLY" = 1 ] && need=$((KF_N * 101 * 8 / 1000000000 + 2))
	local avail=$(($(df -Pk "$WORK" | awk 'NR == 2 { print $4 }') / 1000000))
	[ "$avail" -ge "$need" ] || log "warning: ${avail} GB free on $WORK, this run wants ~${need} GB"
	[ "$(id -u)" = 0 ] || log "warning: not root: cold-cache reads and drop_caches before start-up are skipped"

	if [ "$KF_ONLY" != 1 ]; then
		"$BENCH_BIN/genlines" "$SRC_BYTES" "$RECSIZE" >"$SRC" || { fail "genlines"; exit 1; }
	fi

	if [ "$KF_ONLY" = 1 ]; then
		log "BENCH_KAFKA=only: the single-node and cluster tables are skipped"
	elif [ "$CL_ONLY" = 1 ]; then
		log "BENCH_CLUSTER=only: the single-node table is skipped"
	elif [ -x "$MK" ]; then
		start_mk mk-always "num.partitions=8" "$WORK/data-mk-always"
		start_mk mk-never "fsync=never,num.partitions=8" "$WORK/data-mk-never"
		wait_mounted mk-always && SYSTEMS+=(mk-always)
		wait_mounted mk-never && SYSTEMS+=(mk-never)
	else
		log "$MK not built: minikafka columns are n/a"
	fi
	if [ "$CL_ONLY" != 1 ] && [ "$KF_ONLY" != 1 ]; then
		start_pt
		wait_mounted pt && SYSTEMS+=(pt)
		SYSTEMS+=(raw)
		log "systems: ${SYSTEMS[*]}; work dir $WORK"

		bench_bulk
		bench_read
		bench_small
		stop pt || fail "passthrough_ll exited non-zero after unmount"
		for s in mk-always mk-never; do
			[ -n "${PID[$s]:-}" ] && { stop "$s" || fail "$s: exited non-zero after fusermount3 -u"; }
		done
		rm -rf "$WORK"/data-mk-* "$WORK/raw" "$WORK/pt-src"
		if [ -x "$MK" ]; then bench_startup; fi
	fi
	if [ -x "$MK" ] && [ "${BENCH_CLUSTER:-1}" != 0 ] && [ "$KF_ONLY" != 1 ]; then
		CL_T0=$EPOCHREALTIME
		bench_cluster || log "cluster: section ended early (see FAILURES)"
		cl_stop_all
		CL_T1=$EPOCHREALTIME
	fi
	if [ -x "$MK" ] && [ $kafka = 1 ]; then
		KF_T0=$EPOCHREALTIME
		bench_kafka || log "kafka: section ended early (see FAILURES)"
		kf_stop_all
		KF_T1=$EPOCHREALTIME
	fi

	{
		echo "# key: n min median max (max-min)/median | every repetition, in run order"
		for s in "${!VALS[@]}"; do
			printf '%s: ' "$s"
			printf '%s\n' ${VALS[$s]} | grep -v -e ERR -e '^$' | sort -g | awk -v m="$(median "$s")" '
				{ a[NR] = $1 } END { if (NR) printf "%d %g %g %g %.0f%%", NR, a[1], m, a[NR],
					(m > 0 ? 100 * (a[NR] - a[1]) / m : 0) }'
			echo " |${VALS[$s]}"
		done | sort
	} >"$BENCH_BIN/samples.txt"
	{
		[ "$CL_ONLY" = 1 ] || [ "$KF_ONLY" = 1 ] || table
		[ "$CL_RAN" = 1 ] && cluster_table
		[ "$KF_RAN" = 1 ] && kafka_table
		echo "run time: $(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }') s"
		if [ -s "$WORK/failures.txt" ]; then
			echo; echo "FAILURES ($(wc -l <"$WORK/failures.txt")):"; sed 's/^/  /' "$WORK/failures.txt"
		fi
	} | tee "$RESULTS"
	echo "saved to $RESULTS"
	[ ! -s "$WORK/failures.txt" ]
}
main
