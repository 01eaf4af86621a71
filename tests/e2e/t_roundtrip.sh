#!/bin/bash
# Round trip with ordinary tools: echo/cat, a million records from seq (whose
# writes split lines at 4 KiB boundaries), wc/md5sum, stat size, reads at byte
# positions with tail -c and dd.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1

mk_start -o num.partitions=2
mkdir "$MNT/t" || fail "mkdir $MNT/t"
P0=$MNT/t/0 P1=$MNT/t/1

assert_eq 0 "$(fsize "$P0")" "size of a new partition"
echo 'order 17 paid' >>"$P0" || fail "echo >> $P0"
assert_eq 'order 17 paid' "$(cat "$P0")" "cat after one echo"
echo 'order 18 paid' >>"$P0"
printf 'order 19\norder 20\n' >>"$P0"
assert_eq $'order 17 paid\norder 18 paid\norder 19\norder 20' "$(cat "$P0")" "cat after four records"
assert_eq 46 "$(fsize "$P0")" "stat size after four records"
assert_eq 4 "$(xget user.offset.next "$P0")" "user.offset.next after four records"

log "seq 1 1000000 >> $P1"
seq 1 1000000 >"$T/expect"
seq 1 1000000 >>"$P1" || fail "seq 1 1000000 >> $P1 failed"
assert_eq 1000000 "$(wc -l <"$P1")" "wc -l of the partition"
assert_eq "$(md5 "$T/expect")" "$(md5 <"$P1")" "md5sum of seq 1 1000000"
assert_eq "$(fsize "$T/expect")" "$(fsize "$P1")" "stat size = bytes written"
assert_eq 1000000 "$(xget user.offset.next "$P1")" "user.offset.next after a million records"

# Consuming from a byte position: same bytes as the local copy.
for pos in 1 4096 4097 65537 1000000 $(($(fsize "$T/expect") - 7)); do
    assert_eq "$(tail -c +"$pos" "$T/expect" | head -c 200 | md5sum)" \
        "$(tail -c +"$pos" "$P1" | head -c 200 | md5sum)" "tail -c +$pos"
done
assert_eq "$(md5 "$T/expect")" "$(dd if="$P1" bs=1M 2>/dev/null | md5sum | cut -c1-32)" "dd bs=1M"
assert_eq "$(md5 "$T/expect")" "$(dd if="$P1" bs=777 2>/dev/null | md5sum | cut -c1-32)" "dd bs=777"
# Reading past the end gives EOF, not an error.
assert_eq "OK 0 " "$($FSOP pread "$P1" "$(fsize "$P1")" 100)" "pread at st_size"
assert_eq "OK 0 " "$($FSOP pread "$P1" $(($(fsize "$P1") + 5000)) 100)" "pread beyond st_size"

# The other partition is untouched.
assert_eq 46 "$(fsize "$P0")" "partition 0 size unchanged by writes to 1"
# A write at any offset appends (O_APPEND semantics without O_APPEND).
assert_eq "OK 4" "$($FSOP pwrite "$P0" 0 'abc\n')" "pwrite at offset 0"
assert_eq $'order 17 paid\norder 18 paid\norder 19\norder 20\nabc' "$(cat "$P0")" "pwrite at 0 appended at the end"
mkdir "$MNT/big"
# fsync/fdatasync on a partition file succeed (tools such as dd conv=fsync use them).
$PY -c '
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
os.write(fd, b"synced\n"); os.fsync(fd); os.fdatasync(fd); os.close(fd)' "$MNT/big/1" || fail "fsync/fdatasync on a partition"
echo dd-record | dd of="$MNT/big/1" oflag=append conv=notrunc,fsync status=none || fail "dd conv=fsync"
assert_eq $'synced\ndd-record' "$(cat "$MNT/big/1")" "records written with fsync"
mk_stop
log ok
