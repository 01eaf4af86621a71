#!/bin/bash
# The power-cut hook (MINIKAFKA_POWERCUT=1, SIGUSR2) that the chaos harness
# uses, on a single node: it really drops what was never fsynced, and what
# was acknowledged survives it.
#  - fsync=never: records written and not yet synced are gone after the cut
#    (the file is shorter than what the writer was told was written), and
#    nothing torn shows;
#  - fsync=always, five rounds: ackwriters flood two partitions, the power
#    is cut mid-flood; after the restart every acknowledged record is there,
#    once, in order, none torn (verify_log.py).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1
AW=$E2E_BIN/ackwriter
[[ -x $AW ]] || fail "missing $AW (make -C tests/e2e, or run through make e2e)"
export MINIKAFKA_POWERCUT=1

cut_power() { # sends SIGUSR2 and waits for the daemon to die of it
    kill -USR2 "$MK_PID"
    wait_exit "$MK_PID" 10 || fail "the daemon survived its power cut"
    [[ $WAIT_ST == 137 ]] || fail "the daemon exited $WAIT_ST after SIGUSR2, not 137"
    grep -q "MINIKAFKA_POWERCUT: power cut: .* files cut" "$DATA/minikafka.log" || fail "the cut is not logged"
    fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null
}

mk_start -o fsync=never
grep -q "MINIKAFKA_POWERCUT=1: SIGUSR2 cuts this node's power" "$MK_LOG" || fail "the hook does not say it is on"
mkdir "$MNT/t"
sleep 1.2 # the topic's files are synced when made; the records will not be
seq 1 20000 >>"$MNT/t/0" || fail "write"
before=$(fsize "$MNT/t/0")
cut_power
mk_start -o fsync=never
after=$(fsize "$MNT/t/0")
log "fsync=never: $before bytes written, $after after the power cut"
((after < before)) || fail "fsync=never: the power cut dropped nothing ($after of $before bytes)"
[[ $after == 0 ]] || [[ $(tail -c 1 "$MNT/t/0" | od -An -c | tr -d ' ') == '\n' ]] ||
    fail "a torn record after the cut"
mk_umount_stop
rm -rf "$DATA"

for round in 1 2 3 4 5; do
    mk_start -o fsync=always,num.partitions=2
    [[ -d $MNT/f ]] || mkdir "$MNT/f"
    mkdir -p "$T/acks"
    for w in a b c; do
        spawn "$AW" -l 1:200 "$MNT/f/$((round % 2))" "$T/acks/$w$round.ack" "$w$round"
    done
    sleep "0.$((3 + RANDOM % 5))"
    cut_power
    kill_helpers
    mk_start -o fsync=always,num.partitions=2
    $PY "$E2E_DIR/verify_log.py" --acks "$T/acks" "$MNT/f/0" "$MNT/f/1" ||
        fail "round $round: acknowledged records lost or damaged by a power cut"
    mk_umount_stop
done
log ok
