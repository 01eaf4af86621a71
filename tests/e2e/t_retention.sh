#!/bin/bash
# Retention with small segments: segments roll (several %020d.log files in
# DATA_DIR), old whole segments are deleted by size (log.retention.bytes) and
# by age (per-topic user.retention.ms), user.position.first/user.offset.first
# move up, st_size and byte positions never change, reads at or above
# position.first return the original bytes, a read below position.first is
# served from position.first (the oldest retained record, as a Kafka consumer
# with auto.offset.reset=earliest), so cat shows exactly the retained bytes.
# (t_retention_read checks every reading tool on a small partition.)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1

mk_start -o log.segment.bytes=4096,log.retention.bytes=16384
mkdir "$MNT/r"
P=$MNT/r/0
# 2000 records of 20 bytes = 40000 bytes, about ten 4 KiB segments.
for i in $(seq 1 2000); do printf 'rec-%015d\n' "$i"; done >"$T/expect"
# 400 bytes per write(): a segment never splits one write's batch, so the
# records must arrive in many writes for segments to roll at 4 KiB.
dd if="$T/expect" of="$P" bs=400 oflag=append conv=notrunc status=none || fail "dd 40000 bytes"
SIZE=$(fsize "$T/expect")
assert_eq "$SIZE" "$(fsize "$P")" "st_size after writing"

segs() { find "$DATA" -regextype posix-extended -regex '.*/[0-9]{20}\.log' | sort; }
log "segments: $(segs | wc -l)"
moved() { (($(xget user.position.first "$P") > 0)); }
wait_until 10 "user.position.first > 0 (size retention)" moved
# Retention keeps at least log.retention.bytes... and drops whole segments only.
wait_until 10 "retained bytes <= 16384 + one segment" \
    eval '(( SIZE - $(xget user.position.first "$P") <= 16384 + 4096 ))'
PF=$(xget user.position.first "$P")
OF=$(xget user.offset.first "$P")
log "position.first=$PF offset.first=$OF"
(( SIZE - PF >= 16384 - 4096 )) || fail "retention deleted too much: size $SIZE, position.first $PF (retention.bytes 16384)"
assert_eq 0 $((PF % 20)) "position.first is at a record boundary"
assert_eq $((PF / 20)) "$OF" "offset.first matches position.first (20-byte records)"
assert_eq "$SIZE" "$(fsize "$P")" "st_size unchanged by retention"
assert_eq 2000 "$(xget user.offset.next "$P")" "user.offset.next unchanged by retention"

# Segment files: several, named by 20-digit base offsets, the oldest at offset.first.
n=$(segs | wc -l)
assert_ge 3 "$n" "number of *.log segment files in DATA_DIR"
mine=$(segs | xargs -n1 dirname | sort | uniq -c | sort -rn | head -1 | awk '{print $2}')
first_base=$(ls "$mine" | grep -E '^[0-9]{20}\.log$' | sort | head -1)
assert_eq "$(printf '%020d.log' "$OF")" "$first_base" "oldest segment file is named by offset.first"

# Reads at/above position.first return the original bytes; a read below it
# is served from position.first (never fabricated or zero bytes).
assert_eq "$(tail -c +$((PF + 1)) "$T/expect" | md5sum)" "$(tail -c +$((PF + 1)) "$P" | md5sum)" "tail -c +position.first"
FIRST=$(tail -c +$((PF + 1)) "$T/expect" | head -n 1)
assert_eq "OK 20 $FIRST" "$($FSOP pread "$P" "$PF" 20)" "pread 20 bytes at position.first"
assert_eq "OK 20 $FIRST" "$($FSOP pread "$P" 0 20)" "pread at 0, below position.first: the oldest retained record"
assert_eq "OK 20 $FIRST" "$($FSOP pread "$P" $((PF - 1)) 20)" "pread at position.first-1: the oldest retained record"
assert_eq "$(tail -c +$((PF + 1)) "$T/expect" | md5sum)" "$(cat "$P" | md5sum)" "cat of a partition with deleted segments: exactly the retained bytes"

# Appends after retention land at the old end.
echo tail-after-retention >>"$P"
assert_eq tail-after-retention "$(tail -c +$((SIZE + 1)) "$P")" "append after retention at the old end"

# Age-based retention: per-topic user.retention.ms + user.segment.bytes overrides.
mkdir "$MNT/age"
setfattr -n user.segment.bytes -v 1024 "$MNT/age" || fail "setfattr user.segment.bytes"
setfattr -n user.retention.ms -v 1500 "$MNT/age" || fail "setfattr user.retention.ms"
assert_eq 1500 "$(xget user.retention.ms "$MNT/age")" "user.retention.ms reads back"
assert_eq 1024 "$(xget user.segment.bytes "$MNT/age")" "user.segment.bytes reads back"
head -c 8000 "$T/expect" | dd of="$MNT/age/0" bs=200 oflag=append conv=notrunc status=none
aged() { (($(xget user.position.first "$MNT/age/0") > 0)); }
wait_until 15 "user.position.first > 0 on a topic with user.retention.ms=1500" aged
assert_eq 8000 "$(fsize "$MNT/age/0")" "st_size unchanged by time retention"
for i in 1 2 3 4 5; do # position.first may move between the calls: retry
    APF=$(xget user.position.first "$MNT/age/0")
    got=$(cat "$MNT/age/0" | md5sum)
    [[ $APF == $(xget user.position.first "$MNT/age/0") ]] && break
done
assert_eq "$(head -c 8000 "$T/expect" | tail -c +$((APF + 1)) | md5sum)" "$got" "cat after time retention: the bytes from position.first ($APF)"

# Restart: retention state and positions survive.
PF=$(xget user.position.first "$P")
mk_stop
mk_start -o log.segment.bytes=4096,log.retention.bytes=16384
assert_eq "$PF" "$(xget user.position.first "$P")" "position.first after restart"
assert_eq $((SIZE + 21)) "$(fsize "$P")" "st_size after restart"
assert_eq "$(tail -c +$((PF + 1)) "$T/expect" | md5sum)" "$(tail -c +$((PF + 1)) "$P" | head -c $((SIZE - PF)) | md5sum)" "content after restart"
assert_eq 1500 "$(xget user.retention.ms "$MNT/age")" "user.retention.ms after restart"
mk_stop
log ok
