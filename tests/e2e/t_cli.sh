#!/bin/bash
# The command line: --help, --version, bad usage, a second daemon on the same
# data dir refused while the first runs, daemon mode without -f (returns once
# mounted, logs to DATA_DIR/minikafka.log, stopped by fusermount3 -u), FUSE
# mount options passed through.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1

out=$("$MK" --help 2>&1) || fail "minikafka --help exited $?"
assert_match "DATA_DIR|data" "$out" "--help mentions the data dir"
assert_match "num.partitions" "$out" "--help lists the options (num.partitions)"
out=$("$MK" --version 2>&1) || fail "minikafka --version exited $?"
assert_match "[0-9]+\.[0-9]+" "$out" "--version prints a version number"
"$MK" >/dev/null 2>&1 && fail "minikafka without arguments exited 0"
"$MK" -f "$T/only-one-arg" >/dev/null 2>&1 && fail "minikafka with one argument exited 0"

# Second daemon on the same data dir: refused, clear message, first unharmed.
mk_start -o num.partitions=1
mkdir "$MNT/one"
echo hello >>"$MNT/one/0"
FIRST_PID=$MK_PID FIRST_MNT=$MNT
mkdir -p "$T/mnt2"
MOUNTS+=("$T/mnt2")
timeout 10 "$MK" -f "$DATA" "$T/mnt2" >"$T/second.out" 2>&1
st=$?
DAEMON_LOGS+=("$T/second.out")
[[ $st == 0 ]] && fail "second daemon on the same DATA_DIR exited 0"
[[ $st == 124 ]] && fail "second daemon on the same DATA_DIR was not refused (still running after 10s)"
[[ -s $T/second.out ]] || fail "second daemon refused without any message"
log "second daemon: exit $st: $(head -c 200 "$T/second.out")"
is_mounted "$T/mnt2" && fail "second daemon mounted $T/mnt2"
# Same without -f (daemon mode must also report the refusal in its exit status).
timeout 10 "$MK" "$DATA" "$T/mnt2" >"$T/second2.out" 2>&1 && fail "second daemon (no -f) on the same DATA_DIR exited 0"
is_mounted "$T/mnt2" && fail "second daemon (no -f) mounted $T/mnt2"
assert_eq hello "$(cat "$FIRST_MNT/one/0")" "first daemon still serves after the refusal"
mk_stop

# Daemon mode: returns once mounted; stopped by fusermount3 -u; data persists;
# it logs to DATA_DIR/minikafka.log (lines: ISO-8601 UTC time with ms and Z,
# minikafka[pid], node=ID, ERROR|WARN|INFO, text).
MNT=$T/mnt3 && mkdir -p "$MNT" && MOUNTS+=("$MNT")
LOGF=$DATA/minikafka.log
n0=$(cat "$LOGF" 2>/dev/null | wc -l)
timeout 20 "$MK" -o num.partitions=2,allow_other "$DATA" "$MNT" >"$T/bg.out" 2>&1
st=$?
DAEMON_LOGS+=("$T/bg.out")
assert_eq 0 "$st" "exit status of minikafka without -f"
is_mounted "$MNT" || fail "minikafka without -f returned before the mount was live"
# Find the daemon by its unique mount point (pid for cleanup).
bgpid=""
for p in /proc/[0-9]*; do
    tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q -- " $MNT" && bgpid=${p#/proc/}
done
[[ -n $bgpid ]] || fail "cannot find the background daemon process"
DAEMON_PIDS+=("$bgpid")
grep -E " $MNT .*allow_other" /proc/self/mountinfo >/dev/null || fail "FUSE option allow_other not applied: $(grep " $MNT " /proc/self/mountinfo)"
assert_eq hello "$(cat "$MNT/one/0")" "data after restarting in daemon mode"
LOGRE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z minikafka\[[0-9]+\] node=1 INFO .'
tail -n +$((n0 + 1)) "$LOGF" 2>/dev/null | grep -Eq "$LOGRE" ||
    soft_fail "daemon mode: no new INFO line 'YYYY-MM-DDTHH:MM:SS.mmmZ minikafka[PID] node=1 INFO ...' in DATA_DIR/minikafka.log ($(ls "$DATA" | tr '\n' ' '); new lines: $(tail -n +$((n0 + 1)) "$LOGF" 2>&1 | head -3))"
mkdir "$MNT/two"
assert_eq $'0\n1' "$(ls "$MNT/two")" "-o num.partitions=2 in daemon mode"
echo bg >>"$MNT/two/1"
fusermount3 -u "$MNT" || fail "fusermount3 -u of the background daemon"
for i in $(seq 1 100); do [[ -e /proc/$bgpid ]] || break; sleep 0.1; done
[[ -e /proc/$bgpid ]] && fail "background daemon $bgpid still running 10s after fusermount3 -u"
[[ -s $LOGF ]] || soft_fail "DATA_DIR/minikafka.log missing or empty after the daemon stopped"

# The refusal ends with the first daemon: the data dir can be mounted again.
mk_start
assert_eq bg "$(cat "$MNT/two/1")" "data written in daemon mode"
mk_stop
log ok
