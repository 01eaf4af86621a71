#!/bin/bash
# Signals and stale mounts:
#  - SIGHUP does not stop the daemon (the old one died and left a dead
#    mount); it reopens DATA_DIR/minikafka.log, so after `mv minikafka.log
#    minikafka.log.1; kill -HUP` a new minikafka.log says "SIGHUP";
#  - after kill -9 (no fusermount3), the mount point is a dead mount
#    ("Transport endpoint is not connected"); starting the daemon again on
#    the same data dir and mount point recovers the stale mount, says so in
#    its log, and serves every acknowledged record.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1

mk_start -o num.partitions=1
mkdir "$MNT/s"
P=$MNT/s/0
seq 1 100 >>"$P" || fail "seq 1 100 >> partition"
seq 1 100 >"$T/expect"
LOGF=$DATA/minikafka.log

# SIGHUP: keeps serving, reopens its log.
if [[ -f $LOGF ]]; then
    mv "$LOGF" "$LOGF.1"
else
    soft_fail "no $LOGF before SIGHUP ($(ls "$DATA" | tr '\n' ' '))"
fi
kill -HUP "$MK_PID" || fail "kill -HUP $MK_PID"
sleep 0.5
if ! alive "$MK_PID"; then
    wait_exit "$MK_PID" 1
    soft_fail "daemon died on SIGHUP (exit status $WAIT_ST); mount point: $(stat "$MNT" 2>&1 | head -1)"
    mk_kill9 # clean up the dead mount; start afresh for the checks below
    mk_start -o num.partitions=1
else
    echo after-hup >>"$P" || soft_fail "append after SIGHUP"
    echo after-hup >>"$T/expect"
    [[ $(cat "$P") == "$(cat "$T/expect")" ]] || soft_fail "content after SIGHUP: $(tail -n 2 "$P" | tr '\n' ' ')"
    reopened() { grep -q SIGHUP "$LOGF" 2>/dev/null; }
    poll_until 2 reopened ||
        soft_fail "no new $LOGF mentioning SIGHUP within 2 s of kill -HUP ($(ls "$DATA" | tr '\n' ' '); content: $(head -c 200 "$LOGF" 2>&1))"
    [[ -s $LOGF.1 ]] || soft_fail "the renamed log $LOGF.1 is empty"
fi
echo before-kill >>"$P" && echo before-kill >>"$T/expect"

# kill -9, leaving the dead mount behind; then start again on it.
kill -KILL "$MK_PID"
wait_exit "$MK_PID" 10 || { proc_report "$MK_PID"; fail "daemon survived kill -9 for 10 s"; }
is_mounted "$MNT" || fail "kill -9 left no mount behind (expected a dead mount on $MNT)"
msg=$(stat "$MNT" 2>&1) && fail "stat of the dead mount succeeded: $msg"
assert_match "Transport endpoint is not connected" "$msg" "stat of the mount point after kill -9"
mk_start -o num.partitions=1
assert_eq "$(cat "$T/expect")" "$(cat "$P" 2>&1)" "every acknowledged record after restarting on the stale mount"
grep -iq stale "$MK_LOG" "$LOGF" 2>/dev/null ||
    soft_fail "neither stderr nor $LOGF mentions the stale mount it recovered: $(tail -n 3 "$MK_LOG" | tr '\n' ' ')"
[[ $(grep -c " $MNT " /proc/self/mountinfo) == 1 ]] || soft_fail "more than one mount on $MNT: $(grep " $MNT " /proc/self/mountinfo)"
echo after-restart >>"$P" || fail "append after restarting on the stale mount"
mk_stop
log ok
