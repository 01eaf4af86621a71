#!/bin/bash
# A clean stop loses nothing: SIGTERM, SIGINT and fusermount3 -u each stop the
# daemon (exit 0, unmounted); after a restart every topic, partition count,
# per-topic setting, record, offset and byte position is as before, and
# appending continues where it left off.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1

mk_start -o num.partitions=3,fsync=never
mkdir "$MNT/a" "$MNT/b"
seq 1 200000 >>"$MNT/a/0"
for i in $(seq 1 50); do echo "b1-$i" >>"$MNT/b/1"; done
printf 'no newline at end' >>"$MNT/b/2"
setfattr -n user.partitions -v 5 "$MNT/a" || fail "grow a to 5 partitions"
setfattr -n user.retention.ms -v 86400000 "$MNT/b" || fail "set user.retention.ms on b"
echo late >>"$MNT/a/4"

state() { # everything that must survive a restart
    (cd "$MNT" && find . -path ./.cluster -prune -o -printf '%p %y %s\n' | sort)
    for f in "$MNT"/*/*; do echo "$f $(md5 <"$f")"; done
    for f in "$MNT"/*/*; do
        echo "$f $(xget user.offset.first "$f") $(xget user.offset.next "$f") $(xget user.position.first "$f")"
    done
    for d in "$MNT"/*; do echo "$d $(xget user.partitions "$d") $(xget user.retention.ms "$d")"; done
}
state >"$T/s0"
assert_eq 5 "$(ls "$MNT/a" | wc -l)" "partitions of a after growing"

round=0
for how in TERM umount INT; do
    round=$((round + 1))
    case $how in
    umount) mk_umount_stop ;;
    *) mk_stop "$how" ;;
    esac
    mk_start -o num.partitions=3,fsync=never
    state >"$T/s$round"
    assert_file_eq "$T/s0" "$T/s$round" "state after stop by $how and restart"
    # Appends continue at the old end; old positions unchanged.
    sz=$(fsize "$MNT/b/1")
    echo "after-$how" >>"$MNT/b/1"
    assert_eq "after-$how" "$(tail -c +$((sz + 1)) "$MNT/b/1")" "append after restart ($how) lands at the old end"
    state >"$T/s0"
done
assert_eq 53 "$(xget user.offset.next "$MNT/b/1")" "offsets continue across restarts"

# Stop under load: SIGTERM while two writers are flooding; every write that
# returned is there after the restart, and nothing is torn.
AW=$E2E_BIN/ackwriter
[[ -x $AW ]] || fail "$AW missing (make e2e-helpers)"
mkdir "$MNT/load" "$T/acks"
spawn "$AW" -b 4 -l 1:200 "$MNT/load/0" "$T/acks/la.ack" la 2>>"$T/writers.log"
spawn "$AW" -r -b 1 -l 1:2000 "$MNT/load/1" "$T/acks/lb.ack" lb 2>>"$T/writers.log"
sleep 0.7
mk_stop TERM
kill_helpers
mk_start -o num.partitions=3,fsync=never
"$E2E_DIR/verify_log.py" --acks "$T/acks" "$MNT/load/0" "$MNT/load/1" >"$T/verify.out" 2>&1 ||
    { cat "$T/verify.out" >&2; fail "stop under load (SIGTERM): acknowledged records lost, duplicated or torn"; }
log "stop under load: $(cat "$T/verify.out"), writers: $(tr '\n' ' ' <"$T/writers.log")"
assert_ge 1 "$(cat "$T"/acks/*.ack | wc -l)" "acknowledged writes before SIGTERM"
mk_stop
log ok
