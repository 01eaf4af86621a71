#!/bin/bash
# Full disk: the data dir lives on an 8 MiB tmpfs next to a 2 MiB filler file.
# Appends fail with ENOSPC once the tmpfs is full, every acknowledged record
# stays intact, nothing torn appears, reads keep working, and after the filler
# is deleted appends work again. Needs root (mount -t tmpfs).
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

out=$("$E2E_DIR/fill.py" "$P" "$T/acked" 16000000)
log "fill.py: ${out//$'\n'/ } ; tmpfs: $(df -k --output=used,avail "$SMALL" | tail -1)"
assert_eq ENOSPC "$(head -n 1 <<<"$out")" "errno of the write that hit the full disk"
assert_ge 4000000 "$(fsize "$T/acked")" "bytes acknowledged before ENOSPC (8 MiB tmpfs, 2 MiB filler)"

cp "$P" "$T/seen" || fail "read the partition on a full disk"
assert_file_eq "$T/acked" "$T/seen" "partition content = exactly the acknowledged writes (nothing lost, nothing torn)"
assert_eq "$(fsize "$T/acked")" "$(fsize "$P")" "st_size = acknowledged bytes"

# Still full: a 64 KiB append fails the same way and changes nothing. (A
# tiny one may still fit in the last tmpfs page of the segment file.)
assert_eq ENOSPC "$($FSOP appendlen "$P" 65536)" "64 KiB append while the disk is still full"
cmp -s "$T/acked" "$P" || fail "content changed by a refused append on a full disk"
ls "$MNT" >/dev/null || fail "ls on a full disk"

# Free space: appends work again, at the old end.
rm -f "$SMALL/filler"
end=$(fsize "$P")
ok=""
for i in $(seq 1 30); do # the daemon may need a moment to notice
    if [[ $($FSOP append "$P" 'after free\n') == OK* ]]; then ok=1; break; fi
    sleep 0.1
done
[[ -n $ok ]] || fail "append after freeing space: still failing after 3 s ($($FSOP append "$P" 'after free\n'))"
assert_eq "after free" "$(tail -c +$((end + 1)) "$P")" "record appended after freeing space"
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
