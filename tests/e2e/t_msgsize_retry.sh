#!/bin/bash
# Over-long records and the writers that retry them. After a write refused
# with EMSGSIZE, a write on the same descriptor whose bytes begin with the
# refused write's bytes is a retry of it and is refused too; the first
# different write is accepted normally. So:
#  - python's f.write('r'*1048589+'\n') (the kernel splits it at max_write,
#    python retries the unwritten rest, and again at close) raises EMSGSIZE
#    and stores nothing at all (no 'rrr...' fragment);
#  - on one fd: 600000 bytes (held), 600000 more + \n (EMSGSIZE: the record
#    is too long and is dropped whole), then "valid record\n" is accepted.
# message.max.bytes is the default 1048588; a record of exactly that is stored.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1

mk_start -o num.partitions=4
mkdir "$MNT/t"
P=$MNT/t/0
echo before >>"$P"
records() { awk '{ printf "%d ", length($0) }' "$1"; }

for i in 1 2 3; do
    err=$($PY -c "f=open('$P','a'); f.write('r'*1048589+'\n'); f.close()" 2>&1)
    st=$?
    sz=$(fsize "$P")
    [[ $st != 0 && $err == *"Message too long"* ]] ||
        soft_fail "python f.write of a 1048590-byte record (round $i): expected it to raise EMSGSIZE, seen exit $st: $(tail -n 1 <<<"$err")"
    [[ $sz == 7 && $(cat "$P") == before ]] ||
        soft_fail "python f.write of a 1048590-byte record (round $i): the partition must be unchanged (7 bytes, 'before'), seen st_size $sz, record lengths $(records "$P")"
done

# seq_writes PARTITION WRITES...: on one fd (O_WRONLY|O_APPEND), one write(2)
# per argument (Python escapes decoded; @X = 'x'*600000, @Y = 'y'*600000 +
# '\n'), then close; prints one line per write ("OK n" or the errno name),
# then "CLOSE OK" or "CLOSE errno".
seq_writes() {
    $PY - "$@" <<'EOF'
import errno, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
for a in sys.argv[2:]:
    data = a.encode().decode("unicode_escape").encode("latin-1")
    data = data.replace(b"@X", b"x" * 600000).replace(b"@Y", b"y" * 600000 + b"\n")
    try:
        print("OK %d" % os.write(fd, data))
    except OSError as e:
        print(errno.errorcode[e.errno])
try:
    os.close(fd)
    print("CLOSE OK")
except OSError as e:
    print("CLOSE " + errno.errorcode[e.errno])
EOF
}

# The bug report: 600000 bytes held, 600000 more + \n (a 1200001-byte record:
# EMSGSIZE, dropped whole), then a valid record on the same fd is accepted.
mapfile -t r < <(seq_writes "$MNT/t/1" @X @Y 'valid record\n')
assert_eq "OK 600000" "${r[0]}" "write of 600000 bytes without a newline (held)"
assert_eq EMSGSIZE "${r[1]}" "write of 600000 more + \\n: a 1200001-byte record (> 1048588)"
[[ ${r[2]} == "OK 13" ]] || soft_fail "write of 'valid record\\n' on the same fd right after the refused record: expected OK 13, seen [${r[2]}]"
[[ ${r[3]} == "CLOSE OK" ]] || soft_fail "close after the refused record: expected CLOSE OK, seen [${r[3]}]"
[[ $(cat "$MNT/t/1") == "valid record" && $(xget user.offset.next "$MNT/t/1") == 1 ]] ||
    soft_fail "t/1 after the sequence: expected exactly one record 'valid record', seen record lengths $(records "$MNT/t/1")(first bytes: $(head -c 20 "$MNT/t/1"))"

# The rule: retries of the refused write (the same bytes, or bytes beginning
# with them) are refused too; the first different write is accepted.
mapfile -t r < <(seq_writes "$MNT/t/3" @X @Y @Y '@Ytail\n' 'valid record\n')
assert_eq "OK 600000|EMSGSIZE" "${r[0]}|${r[1]}" "held 600000 bytes, then 600000 more + \\n"
[[ ${r[2]} == EMSGSIZE ]] || soft_fail "the same write again on the same fd (a retry of the refused one): expected EMSGSIZE, seen [${r[2]}]"
[[ ${r[3]} == EMSGSIZE ]] || soft_fail "a write beginning with the refused write's bytes (a retry): expected EMSGSIZE, seen [${r[3]}]"
[[ ${r[4]} == "OK 13" ]] || soft_fail "a different write after the retries: expected OK 13, seen [${r[4]}]"
[[ $(cat "$MNT/t/3") == "valid record" ]] ||
    soft_fail "t/3 after the retries: expected exactly one record 'valid record', seen record lengths $(records "$MNT/t/3")(first bytes: $(head -c 20 "$MNT/t/3"))"

# The limit itself: exactly message.max.bytes is a record, one more is not.
assert_eq "OK 1048589" "$($FSOP appendlen "$MNT/t/2" 1048588)" "a record of exactly message.max.bytes (1048588)"
assert_eq 1048589 "$(fsize "$MNT/t/2")" "st_size after the 1048588-byte record"
assert_eq EMSGSIZE "$($FSOP appendall "$MNT/t/2" 1048589)" "a record of 1048589 bytes, short writes retried"
assert_eq 1048589 "$(fsize "$MNT/t/2")" "st_size after the refused record"

# Nothing of it comes back after a restart.
mk_stop
mk_start -o num.partitions=4
[[ $(cat "$P") == before ]] || soft_fail "t/0 after restart: expected 'before' only, seen record lengths $(records "$P")"
[[ $(cat "$MNT/t/1") == "valid record" ]] || soft_fail "t/1 after restart: expected 'valid record', seen record lengths $(records "$MNT/t/1")"
mk_stop

mk_start -o num.partitions=2,message.max.bytes=1000
mkdir "$MNT/u"
# With message.max.bytes=1000 (no write is split by the kernel here):
# a held start of a valid record stays when a later record of the same write
# is the over-long one: "abc" held, then "def\n" + an over-long record
# (refused whole), then "def\n" completes the record the writer meant.
mapfile -t r < <($PY - "$MNT/u/0" <<'EOF'
import errno, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
for data in (b"abc", b"def\n" + b"z" * 2000 + b"\n", b"def\n"):
    try:
        print("OK", os.write(fd, data))
    except OSError as e:
        print(errno.errorcode[e.errno])
os.close(fd)
EOF
)
assert_eq "OK 3|EMSGSIZE|OK 4" "${r[0]}|${r[1]}|${r[2]}" "held 'abc', a write whose second record is over-long, then 'def\\n'"
[[ $(cat "$MNT/u/0") == abcdef ]] || soft_fail "u/0: expected the record 'abcdef' (the held start kept), seen $(head -c 40 "$MNT/u/0")"
# A close ends an over-long record still going on: the next writer of the
# same open file (a redirection shared by two commands) is not refused.
{ $PY -c "import os; os.write(1, b'x' * 2000)" 2>/dev/null; echo ok-after; } >>"$MNT/u/1" ||
    soft_fail "echo after a writer that died inside an over-long record was refused (same open file)"
[[ $(tail -n 1 "$MNT/u/1") == ok-after ]] || soft_fail "u/1: expected the last record 'ok-after', seen $(tail -n 1 "$MNT/u/1" | head -c 40)"

mk_stop
log ok
