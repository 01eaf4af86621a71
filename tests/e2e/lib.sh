# shellcheck shell=bash
# lib.sh — shared helpers for the minikafka end-to-end tests.
#
# Every test is a bash script tests/e2e/t_*.sh that sources this file first.
# Sourcing it:
#   - re-executes the test under `timeout` (E2E_TIMEOUT seconds, default 180),
#     so a hung mount or daemon can never hang CI;
#   - fails loudly (never skips) if FUSE is unusable or the daemon is missing;
#   - creates a private temp dir $T (data dirs and mount points live there);
#   - installs an EXIT trap that stops every daemon the test started, kills the
#     helper processes it started (only those pids), unmounts every FUSE and
#     tmpfs mount under $T, scans the daemon logs for sanitizer reports, and
#     removes $T unless the test failed (or E2E_KEEP=1).
#
# Environment:
#   MK            daemon binary (default build/minikafka, relative to the repo)
#   E2E_BIN       directory of the compiled C helpers (default build/e2e)
#   E2E_TIMEOUT   per-test wall-clock limit in seconds
#   E2E_TMPBASE   where temp dirs are created (default /tmp)
#   E2E_KEEP=1    keep $T even on success
#
# Daemon helpers (one "current" daemon: $DATA, $MNT, $MK_PID, $MK_LOG):
#   mk_start [-o OPTS] [DATA MNT]   start `minikafka -f`, wait until mounted
#   mk_stop [SIGNAL]                stop it (default TERM), require exit 0 + unmount
#   mk_umount_stop                  stop it with `fusermount3 -u`
#   mk_kill9                        kill -9 it and clean up the dead mount
# Assertions print what was expected and what was seen, then exit 1:
#   assert_eq EXPECTED SEEN WHAT, assert_file_eq EXPECTED_FILE SEEN_FILE WHAT,
#   expect_errno ERRNAME OP ARGS... (runs tests/e2e/fsop.py; see there)

set -uo pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$E2E_DIR/../.." && pwd)
TEST_NAME=$(basename "$0" .sh)

# --- global timeout: re-exec ourselves under timeout(1) ----------------------
# timeout(1) signals its whole process group, so helpers and daemons started
# with -f get SIGTERM too; the TERM trap below turns that into a clean exit
# that still runs the EXIT trap.
if [[ -z "${E2E_UNDER_TIMEOUT:-}" ]]; then
    export E2E_UNDER_TIMEOUT=1
    exec timeout -k 15 "${E2E_TIMEOUT:-180}" bash "$0" "$@"
fi

MK=${MK:-build/minikafka}
[[ $MK == /* ]] || MK=$ROOT/$MK
E2E_BIN=${E2E_BIN:-build/e2e}
[[ $E2E_BIN == /* ]] || E2E_BIN=$ROOT/$E2E_BIN
PY=${PYTHON:-python3}
FSOP="$PY $E2E_DIR/fsop.py"

log()  { printf '[%s %s] %s\n' "$TEST_NAME" "$(date +%T.%3N)" "$*" >&2; }
fail() { printf '[%s] FAIL: %s\n' "$TEST_NAME" "$*" >&2; exit 1; }
# soft_fail: report a failure but go on with the test (it still fails at exit).
SOFT_FAILED=0
soft_fail() { printf '[%s] FAIL: %s\n' "$TEST_NAME" "$*" >&2; SOFT_FAILED=1; }

# --- preconditions: FUSE must work; never skip ---------------------------------
[[ -c /dev/fuse ]] || fail "/dev/fuse is missing: FUSE is required, refusing to skip"
command -v fusermount3 >/dev/null || fail "fusermount3 is missing (apt-get install fuse3): refusing to skip"
[[ -x $MK ]] || fail "daemon binary $MK does not exist (run make)"
command -v "$PY" >/dev/null || fail "python3 is missing"

T=$(mktemp -d "${E2E_TMPBASE:-/tmp}/mk-$TEST_NAME.XXXXXX") || fail "mktemp"
HELPER_PIDS=()   # background helpers (writers, tail) this test started
DAEMON_PIDS=()   # every daemon pid this test started (live or not)
DAEMON_LOGS=()   # every daemon stderr log
MOUNTS=()        # FUSE mount points used by this test
TMPFS_MOUNTS=()  # tmpfs mounts made by this test
DATA="" MNT="" MK_PID="" MK_LOG=""
N_STARTS=0

is_mounted() { awk -v m="$1" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo; }
# alive PID: the process exists and is not a zombie (a vanished /proc entry,
# even between two reads, counts as dead).
alive() {
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $st && ${st##*) } != Z* ]]
}

# Sanitizer reports in any daemon log fail the test.
sanitizer_check() {
    local f bad=0
    for f in "${DAEMON_LOGS[@]}"; do
        [[ -f $f ]] || continue
        if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error' "$f"; then
            printf '[%s] FAIL: sanitizer report in %s:\n' "$TEST_NAME" "$f" >&2
            grep -E -A 30 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error' "$f" | head -60 >&2
            bad=1
        fi
    done
    return $bad
}

# Commands the EXIT trap runs first (e.g. removing iptables rules a test
# added): CLEANUP_HOOKS+=("cmd args").
CLEANUP_HOOKS=()
cleanup() {
    local rc=$? p m i h
    trap - EXIT TERM INT
    for h in "${CLEANUP_HOOKS[@]}"; do eval "$h" 2>/dev/null; done
    [[ $rc == 0 && $SOFT_FAILED == 1 ]] && rc=1
    for p in "${HELPER_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${DAEMON_PIDS[@]}"; do alive "$p" && kill -TERM "$p" 2>/dev/null; done
    for i in $(seq 1 50); do
        local any=0
        for p in "${DAEMON_PIDS[@]}" "${HELPER_PIDS[@]}"; do alive "$p" && any=1; done
        [[ $any == 0 ]] && break
        sleep 0.1
    done
    for p in "${DAEMON_PIDS[@]}" "${HELPER_PIDS[@]}"; do alive "$p" && kill -KILL "$p" 2>/dev/null; done
    for m in "${MOUNTS[@]}"; do
        if is_mounted "$m"; then fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null; fi
    done
    for m in "${TMPFS_MOUNTS[@]}"; do is_mounted "$m" && { umount "$m" 2>/dev/null || umount -l "$m"; }; done
    sanitizer_check || rc=1
    if [[ $rc != 0 ]]; then
        for m in "${DAEMON_LOGS[@]}"; do
            [[ -s $m ]] && { echo "--- tail of daemon log $m" >&2; tail -n 25 "$m" >&2; }
        done
        echo "[$TEST_NAME] kept $T for inspection" >&2
    elif [[ -z ${E2E_KEEP:-} ]]; then
        # Never delete through a mount that is still there.
        if ! grep -q " $T/" /proc/self/mounts; then rm -rf --one-file-system "$T"; fi
    fi
    exit $rc
}
trap cleanup EXIT
trap 'printf "[%s] FAIL: interrupted (global timeout %ss?)\n" "$TEST_NAME" "${E2E_TIMEOUT:-180}" >&2; exit 124' TERM INT

# --- assertions ------------------------------------------------------------------
short() { local s=$1; ((${#s} > 300)) && s="${s:0:300}...(${#1} chars)"; printf '%s' "$s"; }
assert_eq() { # EXPECTED SEEN WHAT
    [[ "$1" == "$2" ]] || fail "$3: expected [$(short "$1")], seen [$(short "$2")]"
}
assert_ne() { [[ "$1" != "$2" ]] || fail "$3: expected something other than [$(short "$1")]"; }
assert_ge() { (($2 >= $1)) || fail "$3: expected >= $1, seen $2"; }
assert_match() { # REGEX SEEN WHAT
    [[ "$2" =~ $1 ]] || fail "$3: expected to match /$1/, seen [$(short "$2")]"
}
assert_file_eq() { # EXPECTED_FILE SEEN_FILE WHAT
    if ! cmp -s "$1" "$2"; then
        echo "--- diff (expected vs seen), first lines:" >&2
        diff <(head -c 1000000 "$1") <(head -c 1000000 "$2") | head -20 >&2
        fail "$3: content differs (expected $(wc -c <"$1") bytes md5 $(md5sum <"$1" | cut -c1-32), seen $(wc -c <"$2") bytes md5 $(md5sum <"$2" | cut -c1-32))"
    fi
}
# expect_errno ERRNAME OP ARGS...: the fsop.py operation must fail with ERRNAME.
expect_errno() {
    local want=$1 got
    shift
    got=$($FSOP "$@" 2>&1)
    [[ $got == "$want" ]] || fail "fsop $*: expected errno $want, seen [$got]"
}
# expect_ok OP ARGS...: the fsop.py operation must succeed.
expect_ok() {
    local got
    got=$($FSOP "$@" 2>&1)
    [[ $got == OK* ]] || fail "fsop $*: expected success, seen [$got]"
}
# wait_until TIMEOUT_S WHAT CMD...: poll CMD every 0.1 s until it succeeds.
wait_until() {
    local limit=$1 what=$2 i
    shift 2
    for ((i = 0; i < limit * 10; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    fail "timed out after ${limit}s waiting for: $what"
}
# poll_until TIMEOUT_S CMD...: like wait_until but returns 1 on timeout instead
# of failing (for soft_fail checks).
poll_until() {
    local limit=$1 i
    shift
    for ((i = 0; i < limit * 10; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}
fsize() { stat -c %s "$1"; }
md5() { md5sum "$@" | cut -c1-32; }
xget() { getfattr --absolute-names --only-values -n "$1" "$2" 2>&1; } # NAME PATH
spawn() { "$@" & HELPER_PIDS+=($!); }                 # background helper, killed at exit
kill_helpers() { # stop every spawned helper now (e.g. tail -f before unmounting)
    local p
    for p in "${HELPER_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${HELPER_PIDS[@]}"; do wait "$p" 2>/dev/null; done
    HELPER_PIDS=()
}

# --- holding a file open across checks -----------------------------------------------
# holder_open NAME FILE: start holder.py on FILE (kept open for append);
# holder NAME CMD: send one command ("w TEXT" or "c") and print its answer.
declare -A HOLDER_IN HOLDER_OUT
holder_open() {
    mkfifo "$T/$1.in" "$T/$1.out"
    $PY "$E2E_DIR/holder.py" "$2" <"$T/$1.in" >"$T/$1.out" &
    HELPER_PIDS+=($!)
    local wfd rfd
    exec {wfd}>"$T/$1.in" {rfd}<"$T/$1.out"
    HOLDER_IN[$1]=$wfd HOLDER_OUT[$1]=$rfd
}
holder() {
    local reply
    echo "$2" >&"${HOLDER_IN[$1]}"
    read -r -t 20 reply <&"${HOLDER_OUT[$1]}" || reply="NO-ANSWER (holder.py died or hung)"
    echo "$reply"
}
# hold NAME CMD: like holder but the command must succeed.
hold() {
    local r
    r=$(holder "$1" "$2")
    [[ $r == OK* ]] || fail "holder $1: '$2' failed: $r"
}

# --- daemon control ---------------------------------------------------------------
# mk_start [-o OPTS] [DATA MNT]: start `$MK -f` in the background with its stderr
# appended to a per-test log, and wait (10 s) until the mount is live.
# Without DATA MNT it uses $T/data and $T/mnt (created on first use).
mk_start() {
    local opts=()
    if [[ ${1:-} == -o ]]; then opts=(-o "$2"); shift 2; fi
    DATA=${1:-$T/data} MNT=${2:-$T/mnt}
    mkdir -p "$DATA" "$MNT"
    MOUNTS+=("$MNT")
    N_STARTS=$((N_STARTS + 1))
    MK_LOG=$T/daemon.$N_STARTS.log
    DAEMON_LOGS+=("$MK_LOG")
    # Background jobs of a non-interactive shell ignore SIGINT; give the daemon
    # default dispositions so SIGINT/SIGQUIT behave as for a user.
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
        env --default-signal=INT,QUIT "$MK" -f "${opts[@]}" "$DATA" "$MNT" >>"$MK_LOG" 2>&1 &
    MK_PID=$!
    DAEMON_PIDS+=("$MK_PID")
    local i
    for ((i = 0; i < 100; i++)); do
        if is_mounted "$MNT" && stat "$MNT" >/dev/null 2>&1; then return 0; fi
        alive "$MK_PID" || { cat "$MK_LOG" >&2; fail "daemon exited before mounting: $MK -f ${opts[*]} $DATA $MNT"; }
        sleep 0.1
    done
    fail "daemon did not mount $MNT within 10s"
}

# wait_exit PID SECONDS: wait for a child of this shell to exit; sets WAIT_ST
# to its exit status; returns 1 if it is still running after SECONDS.
WAIT_ST=""
wait_exit() {
    local i
    for ((i = 0; i <= $2 * 10; i++)); do
        alive "$1" || break
        ((i == $2 * 10)) && return 1
        sleep 0.1
    done
    WAIT_ST=0
    wait "$1" 2>/dev/null || WAIT_ST=$?
    return 0
}

# mk_stop [SIGNAL]: stop the current daemon with a signal (default TERM); it
# must exit 0 within 10 s and leave the mount point unmounted.
mk_stop() {
    local sig=${1:-TERM}
    kill -"$sig" "$MK_PID" || fail "kill -$sig $MK_PID"
    wait_exit "$MK_PID" 10 || fail "daemon did not exit within 10s of SIG$sig"
    assert_eq 0 "$WAIT_ST" "daemon exit status after SIG$sig"
    is_mounted "$MNT" && fail "mount point $MNT still mounted after daemon exited on SIG$sig"
    sanitizer_check || exit 1
    return 0
}

# mk_umount_stop: stop the current daemon with `fusermount3 -u`.
mk_umount_stop() {
    fusermount3 -u "$MNT" || fail "fusermount3 -u $MNT failed"
    wait_exit "$MK_PID" 10 || fail "daemon did not exit within 10s of fusermount3 -u"
    assert_eq 0 "$WAIT_ST" "daemon exit status after fusermount3 -u"
    sanitizer_check || exit 1
    return 0
}

# proc_report PID: thread states and kernel stacks of a stuck process.
proc_report() {
    local t
    echo "--- process $1: $(grep -E '^(State|Threads)' "/proc/$1/status" 2>/dev/null | tr '\n' ' ')" >&2
    for t in /proc/"$1"/task/*; do
        echo "  thread ${t##*/}: $(awk '{print $3}' "$t/stat" 2>/dev/null) wchan=$(cat "$t/wchan" 2>/dev/null)" >&2
        sed 's/^/      /' "$t/stack" 2>/dev/null | head -12 >&2
    done
}

# mk_kill9: kill -9 the current daemon and unmount the dead mount
# ("Transport endpoint is not connected").
mk_kill9() {
    kill -KILL "$MK_PID" 2>/dev/null
    wait_exit "$MK_PID" 10 || { proc_report "$MK_PID"; fail "daemon pid $MK_PID survived kill -9 for 10 s"; }
    local i
    for ((i = 0; i < 50; i++)); do
        is_mounted "$MNT" || return 0
        fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null
        sleep 0.1
    done
    fail "could not unmount $MNT after kill -9"
}
