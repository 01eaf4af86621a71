#!/bin/bash
# Full disk: the data dir lives on an 8 MiB tmpfs next to a 2 MiB filler file.
# Appends fail with ENOSPC once the tmpfs is full, every acknowledged record
# stays intact, nothing torn appears, reads keep working. The daemon stopped
# and started again while the disk is still full starts, serves reads, ls and
# getfattr, refuses appends with ENOSPC, and rmdir of another topic frees
# space so that appends work again; so does deleting the filler. The daemon's
# log DATA_DIR/minikafka.log has the documented line format. Needs root
# (mount -t tmpfs).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1

[[ $(id -u) == 0 ]] || fail "t_fulldisk needs root to mount a tmpfs"
SMALL=$T/small
mkdir -p "$SMALL"
mount -t tmpfs -o size=8m tmpfs "$SMALL" || fail "mount -t tmpfs -o size=8m"
TMPFS_MOUNTS+=("$SMALL")
head -c 2M /dev/zero >"$SMALL/filler"

mk_start -o log.segment.bytes=1048576 "$SMALL/data" "$T/mnt"
mkdir "$MNT/full"
P=$MNT/full/0
echo "first record" >>"$P"
printf 'first record\n' >"$T/acked"
# Another topic whose deletion frees space later.
mkdir "$MNT/other"
head -c 400000 /dev/urandom | base64 >>"$MNT/other/0" || fail "write 540 KB to other/0"

# The log: ISO-8601 UTC time with milliseconds, minikafka[pid], node=ID,
# level, text (checked before the disk is full: then a line may be cut short).
LOGRE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z minikafka\[[0-9]+\] node=1 (ERROR|WARN|INFO) .'
if [[ ! -s $SMALL/data/minikafka.log ]]; then
    soft_fail "DATA_DIR/minikafka.log missing or empty (data dir: $(ls "$SMALL/data" | tr '\n' ' '))"
elif grep -Evq "$LOGRE" "$SMALL/data/minikafka.log"; then
    soft_fail "DATA_DIR/minikafka.log: a line not in the format 'YYYY-MM-DDTHH:MM:SS.mmmZ minikafka[PID] node=1 LEVEL text': $(grep -Ev "$LOGRE" "$SMALL/data/minikafka.log" | head -1)"
fi

out=$("$E2E_DIR/fill.py" "$P" "$T/acked" 16000000)
log "fill.py: ${out//$'\n'/ } ; tmpfs: $(df -k --output=used,avail "$SMALL" | tail -1)"
assert_eq ENOSPC "$(head -n 1 <<<"$out")" "errno of the write that hit the full disk"
assert_ge 4000000 "$(fsize "$T/acked")" "bytes acknowledged before ENOSPC (8 MiB tmpfs, 2 MiB filler, 540 KB other topic)"

cp "$P" "$T/seen" || fail "read the partition on a full disk"
assert_file_eq "$T/acked" "$T/seen" "partition content = exactly the acknowledged writes (nothing lost, nothing torn)"
assert_eq "$(fsize "$T/acked")" "$(fsize "$P")" "st_size = acknowledged bytes"

# Still full: a 64 KiB append fails the same way and changes nothing. (A
# tiny one may still fit in the last tmpfs page of the segment file.)
assert_eq ENOSPC "$($FSOP appendlen "$P" 65536)" "64 KiB append while the disk is still full"
cmp -s "$T/acked" "$P" || fail "content changed by a refused append on a full disk"
ls "$MNT" >/dev/null || fail "ls on a full disk"

# Stop and start again while the disk is still full: it starts and serves.
mk_stop
log "restarting on the full disk: tmpfs $(df -k --output=used,avail "$SMALL" | tail -1)"
mk_start -o log.segment.bytes=1048576 "$SMALL/data" "$T/mnt"
cp "$P" "$T/seen" || fail "read the partition after a restart on a full disk"
assert_file_eq "$T/acked" "$T/seen" "content after a restart on a full disk"
assert_eq $'full\nother' "$(ls "$MNT")" "ls after a restart on a full disk"
assert_eq "$(wc -l <"$T/acked")" "$(xget user.offset.next "$P")" "getfattr user.offset.next after a restart on a full disk"
assert_eq ENOSPC "$($FSOP appendlen "$P" 65536)" "64 KiB append after a restart on a full disk"
cmp -s "$T/acked" "$P" || fail "content changed by a refused append after a restart on a full disk"

# rmdir of the other topic frees space: appends work again, at the old end.
rmdir "$MNT/other" || fail "rmdir of another topic on a full disk"
assert_eq full "$(ls "$MNT")" "ls after rmdir on a full disk"
end=$(fsize "$P")
ok=""
for i in $(seq 1 30); do # the daemon may need a moment to notice
    if [[ $($FSOP append "$P" 'after free\n') == OK* ]]; then ok=1; break; fi
    sleep 0.1
done
[[ -n $ok ]] || fail "append after rmdir of another topic: still failing after 3 s ($($FSOP append "$P" 'after free\n'))"
assert_eq "after free" "$(tail -c +$((end + 1)) "$P")" "record appended after rmdir freed space"

# Free more space: appends of 500 KB more work.
rm -f "$SMALL/filler"
"$E2E_DIR/fill.py" "$P" "$T/acked2" 500000 >/dev/null
printf 'after free\n' >>"$T/acked"
cat "$T/acked2" >>"$T/acked"
cp "$P" "$T/seen"
assert_file_eq "$T/acked" "$T/seen" "content after freeing space and appending 500 KB more"

# And all of it survives a restart.
mk_stop
mk_start -o log.segment.bytes=1048576 "$SMALL/data" "$T/mnt"
cp "$P" "$T/seen"
assert_file_eq "$T/acked" "$T/seen" "content after restart"
mk_stop
log ok
