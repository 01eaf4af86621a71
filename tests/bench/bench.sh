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
# BENCH_RT=1 (SCHED_FIFO for measured processes, see below).
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

# --- main ----------------------------------------------------------------------
main() {
	local s
	for s in writer checklog genlines waitsize passthrough_ll; do
		[ -x "$BENCH_BIN/$s" ] || { log "missing $BENCH_BIN/$s: run make bench"; exit 2; }
	done
	# stale mounts from an interrupted earlier run of this script (ours to unmount)
	for s in $(awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/mounts); do
		log "unmounting stale $s"; fusermount3 -u -z "$s"
	done
	rm -rf "$WORK"
	mkdir -p "$WORK/raw"
	local need=$((BULK_MB * REPS * 3 / 1000 + 5)) gb
	for gb in $STARTUP_GB; do need=$((need + gb + 1)); done
	local avail=$(($(df -Pk "$WORK" | awk 'NR == 2 { print $4 }') / 1000000))
	[ "$avail" -ge "$need" ] || log "warning: ${avail} GB free on $WORK, this run wants ~${need} GB"
	[ "$(id -u)" = 0 ] || log "warning: not root: cold-cache reads and drop_caches before start-up are skipped"

	"$BENCH_BIN/genlines" "$SRC_BYTES" "$RECSIZE" >"$SRC" || { fail "genlines"; exit 1; }

	if [ -x "$MK" ]; then
		start_mk mk-always "num.partitions=8" "$WORK/data-mk-always"
		start_mk mk-never "fsync=never,num.partitions=8" "$WORK/data-mk-never"
		wait_mounted mk-always && SYSTEMS+=(mk-always)
		wait_mounted mk-never && SYSTEMS+=(mk-never)
	else
		log "$MK not built: minikafka columns are n/a"
	fi
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
		table
		echo "run time: $(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }') s"
		if [ -s "$WORK/failures.txt" ]; then
			echo; echo "FAILURES ($(wc -l <"$WORK/failures.txt")):"; sed 's/^/  /' "$WORK/failures.txt"
		fi
	} | tee "$RESULTS"
	echo "saved to $RESULTS"
	[ ! -s "$WORK/failures.txt" ]
}
main
