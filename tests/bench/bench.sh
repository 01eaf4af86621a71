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
# partitions and the start-up of a node holding them.
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
# (no cluster section) or =only (nothing else), BENCH_CL_* (see section 6).
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
	start_mk "c$i" "node.id=$i,$CL_PEERS,num.partitions=8" "$WORK/data-c$i"
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

# --- main ----------------------------------------------------------------------
main() {
	local s
	for s in writer checklog genlines waitsize ackloop passthrough_ll; do
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
	local avail=$(($(df -Pk "$WORK" | awk 'NR == 2 { print $4 }') / 1000000))
	[ "$avail" -ge "$need" ] || log "warning: ${avail} GB free on $WORK, this run wants ~${need} GB"
	[ "$(id -u)" = 0 ] || log "warning: not root: cold-cache reads and drop_caches before start-up are skipped"

	"$BENCH_BIN/genlines" "$SRC_BYTES" "$RECSIZE" >"$SRC" || { fail "genlines"; exit 1; }

	if [ "$CL_ONLY" = 1 ]; then
		log "BENCH_CLUSTER=only: the single-node table is skipped"
	elif [ -x "$MK" ]; then
		start_mk mk-always "num.partitions=8" "$WORK/data-mk-always"
		start_mk mk-never "fsync=never,num.partitions=8" "$WORK/data-mk-never"
		wait_mounted mk-always && SYSTEMS+=(mk-always)
		wait_mounted mk-never && SYSTEMS+=(mk-never)
	else
		log "$MK not built: minikafka columns are n/a"
	fi
	if [ "$CL_ONLY" != 1 ]; then
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
	if [ -x "$MK" ] && [ "${BENCH_CLUSTER:-1}" != 0 ]; then
		CL_T0=$EPOCHREALTIME
		bench_cluster || log "cluster: section ended early (see FAILURES)"
		cl_stop_all
		CL_T1=$EPOCHREALTIME
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
		[ "$CL_ONLY" = 1 ] || table
		[ "$CL_RAN" = 1 ] && cluster_table
		echo "run time: $(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }') s"
		if [ -s "$WORK/failures.txt" ]; then
			echo; echo "FAILURES ($(wc -l <"$WORK/failures.txt")):"; sed 's/^/  /' "$WORK/failures.txt"
		fi
	} | tee "$RESULTS"
	echo "saved to $RESULTS"
	[ ! -s "$WORK/failures.txt" ]
}
main
