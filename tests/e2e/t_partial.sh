#!/bin/bash
# Line framing: a trailing partial line is held per open file, invisible to
# readers and to stat, joined with the next write, committed at close, and
# close() returns only once it is committed.
source "$(dirname "$0")/lib.sh"

mk_start
mkdir "$MNT/p"
P=$MNT/p/0

printf abc >>"$P" || fail "printf abc >> p"
assert_eq $'abc\n' "$(cat "$P"; echo .)" "printf abc >> p yields the record abc\\n"
assert_eq 4 "$(fsize "$P")" "size after printf abc"
assert_eq 1 "$(xget user.offset.next "$P")" "one record after printf abc"

# "ab", then "c\nde", then close -> records "abc", "de".
exec 3>>"$P"
printf ab >&3
assert_eq $'abc' "$(cat "$P")" "held partial 'ab' invisible"
assert_eq 4 "$(fsize "$P")" "held partial 'ab' not in st_size"
printf 'c\nde' >&3
assert_eq $'abc\nabc' "$(cat "$P")" "after 'c\\nde': abc committed, de held"
assert_eq 8 "$(fsize "$P")" "size counts only the committed abc"
exec 3>&-
# No polling: close() must return only after the partial line is committed.
assert_eq $'abc\nabc\nde' "$(cat "$P")" "de committed by close"
assert_eq 11 "$(fsize "$P")" "size after close"

# A held partial is invisible while the fd stays open, even across time.
exec 3>>"$P"
printf part >&3
sleep 1.5
assert_eq 11 "$(fsize "$P")" "held 'part' not in st_size after 1.5 s"
assert_eq $'abc\nabc\nde' "$(cat "$P")" "held 'part' not readable after 1.5 s"
assert_eq 3 "$(xget user.offset.next "$P")" "held 'part' not counted as a record"
exec 3>&-
assert_eq $'abc\nabc\nde\npart' "$(cat "$P")" "'part' committed at close"

# Partials are held per open file: two fds interleaving pieces.
exec 3>>"$P" 4>>"$P"
printf X1 >&3
printf Y1 >&4
printf 'X2\n' >&3
assert_eq "X1X2" "$(tail -n 1 "$P")" "fd 3's record joins only fd 3's pieces"
printf 'Y2\n' >&4
assert_eq "Y1Y2" "$(tail -n 1 "$P")" "fd 4's record joins only fd 4's pieces"
exec 3>&- 4>&-
assert_eq $'abc\nabc\nde\npart\nX1X2\nY1Y2' "$(cat "$P")" "content after per-fd partials"

# An empty write and a close with nothing held add nothing; an empty line is a record.
exec 3>>"$P"
printf '' >&3
exec 3>&-
assert_eq 6 "$(xget user.offset.next "$P")" "open/close without data adds no record"
echo >>"$P"
assert_eq 7 "$(xget user.offset.next "$P")" "an empty line is an (empty) record"
assert_eq $'abc\nabc\nde\npart\nX1X2\nY1Y2\n\n' "$(cat "$P"; echo .)" "empty record"

# Byte-at-a-time writer: one record.
$PY -c '
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
for b in b"slow record":
    os.write(fd, bytes([b]))
os.close(fd)' "$P" || fail "byte-at-a-time writer"
assert_eq "slow record" "$(tail -n 1 "$P")" "byte-at-a-time writes make one record"
assert_eq 8 "$(xget user.offset.next "$P")" "byte-at-a-time: one record"
mk_stop
log ok
