#!/bin/bash
# message.max.bytes at its edges: a record of exactly the limit is stored; a
# longer one is refused with EMSGSIZE and leaves nothing behind, also when
#  - one write() is so large that the kernel splits it into several FUSE
#    WRITE requests (default limit 1048588 > max_write), and
#  - the record is built from a held partial line plus a later write.
# In neither case may a cut-short piece of the refused record be committed
# (at close or otherwise).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1

mk_start -o num.partitions=2
mkdir "$MNT/big"
P=$MNT/big/0
records() { awk '{ printf "%d ", length($0) }' "$1"; }

assert_eq "OK 1048589" "$($FSOP appendlen "$P" 1048588)" "a record of exactly message.max.bytes (default 1048588)"
# The kernel hands a write() over 1 MiB (max_write) to the daemon in pieces.
# A writer that retries short writes (cat, dd, stdio, this appendall) gets
# EMSGSIZE; a single os.write() may instead see a short count (the refused
# later piece is not reported).  Either way nothing of the record is stored.
got=$($FSOP appendall "$P" 1048589)
sz=$(fsize "$P")
[[ $got == EMSGSIZE && $sz == 1048589 ]] || soft_fail "writing a 1048589-byte record + \\n (default message.max.bytes + 1) and retrying short writes, then close: expected EMSGSIZE and st_size unchanged (1048589), seen [$got] and st_size $sz (record lengths now: $(records "$P"))"
got=$($FSOP appendlen "$P" 1048589)
sz=$(fsize "$P")
[[ ( $got == EMSGSIZE || $got =~ ^OK\ [0-9]+$ ) && $got != "OK 1048590" && $sz == 1048589 ]] || soft_fail "one os.write() of a 1048589-byte record + \\n, then close: expected EMSGSIZE or a short count, and st_size unchanged (1048589), seen [$got] and st_size $sz (record lengths now: $(records "$P"))"
mk_stop

mk_start -o num.partitions=2,message.max.bytes=1000
P=$MNT/big/1
echo first >>"$P"
holder_open h "$P"
hold h "w $(printf 'z%.0s' {1..600})"
got=$(holder h "w $(printf 'z%.0s' {1..600})\\n")
holder h c >/dev/null
[[ $got == EMSGSIZE && $(cat "$P") == first ]] || soft_fail "message.max.bytes=1000; write 600 bytes (held), write 600 more + \\n, close: expected EMSGSIZE on the second write and no new record, seen [$got], record lengths now: $(records "$P")"
# The same fd keeps working after a refused record.
holder_open h2 "$P"
assert_eq EMSGSIZE "$(holder h2 "w $(printf 'q%.0s' {1..1500})\\n")" "a 1500-byte record (message.max.bytes=1000)"
hold h2 'w after\n'
hold h2 c
assert_eq after "$(tail -n 1 "$P")" "a record written on the same fd after a refused one"
mk_stop
log ok
