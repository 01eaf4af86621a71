#!/bin/bash
# Line framing: a trailing partial line is held per open file, invisible to
# readers and to stat, joined with the next write, committed at close, and
# close() returns only once it is committed. The held fds are kept by
# holder.py coprocesses (see there why not `exec 3>>p; printf >&3`).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1

mk_start
mkdir "$MNT/p"
P=$MNT/p/0

printf abc >>"$P" || fail "printf abc >> p"
# No polling anywhere below: close() must return only after the commit.
assert_eq $'abc\n.' "$(cat "$P"; echo .)" "printf abc >> p yields the record abc\\n"
assert_eq 4 "$(fsize "$P")" "size after printf abc"
assert_eq 1 "$(xget user.offset.next "$P")" "one record after printf abc"

# "ab", then "c\nde", then close -> records "abc", "de".
holder_open h1 "$P"
hold h1 "w ab"
assert_eq 'abc' "$(cat "$P")" "held partial 'ab' invisible"
assert_eq 4 "$(fsize "$P")" "held partial 'ab' not in st_size"
hold h1 'w c\nde'
assert_eq $'abc\nabc' "$(cat "$P")" "after 'c\\nde': abc committed, de held"
assert_eq 8 "$(fsize "$P")" "size counts only the committed abc"
hold h1 c
assert_eq $'abc\nabc\nde' "$(cat "$P")" "de committed by close"
assert_eq 11 "$(fsize "$P")" "size after close"

# A held partial stays invisible while the fd stays open, even across time.
holder_open h2 "$P"
hold h2 "w part"
sleep 1.5
assert_eq 11 "$(fsize "$P")" "held 'part' not in st_size after 1.5 s"
assert_eq $'abc\nabc\nde' "$(cat "$P")" "held 'part' not readable after 1.5 s"
assert_eq 3 "$(xget user.offset.next "$P")" "held 'part' not counted as a record"
hold h2 c
assert_eq $'abc\nabc\nde\npart' "$(cat "$P")" "'part' committed at close"

# Partials are held per open file: two fds interleaving pieces.
holder_open h3 "$P"
holder_open h4 "$P"
hold h3 "w X1"
hold h4 "w Y1"
hold h3 'w X2\n'
assert_eq "X1X2" "$(tail -n 1 "$P")" "fd 3's record joins only fd 3's pieces"
hold h4 'w Y2\n'
assert_eq "Y1Y2" "$(tail -n 1 "$P")" "fd 4's record joins only fd 4's pieces"
hold h3 "w tail3"
hold h4 'w \n'
hold h4 c
hold h3 c
assert_eq $'abc\nabc\nde\npart\nX1X2\nY1Y2\n\ntail3' "$(cat "$P")" "content after per-fd partials"

# An empty write and a close with nothing held add nothing; an empty line is a record.
holder_open h5 "$P"
hold h5 "w "
hold h5 c
assert_eq 8 "$(xget user.offset.next "$P")" "open/close without data adds no record"
echo >>"$P"
assert_eq 9 "$(xget user.offset.next "$P")" "an empty line is an (empty) record"
assert_eq $'abc\nabc\nde\npart\nX1X2\nY1Y2\n\ntail3\n\n.' "$(cat "$P"; echo .)" "empty record"

# Byte-at-a-time writer: one record.
$PY -c '
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
for b in b"slow record":
    os.write(fd, bytes([b]))
os.close(fd)' "$P" || fail "byte-at-a-time writer"
assert_eq "slow record" "$(tail -n 1 "$P")" "byte-at-a-time writes make one record"
assert_eq 10 "$(xget user.offset.next "$P")" "byte-at-a-time: one record"

# The shell idiom: exec 3>>p; printf >&3 ...; exec 3>&- . Each `>&3` dup()s
# and closes the fd (FUSE FLUSH); whatever the daemon does with a partial on
# FLUSH, the result after the last close must be whole records only.
exec 3>>"$P"
printf 'sh1' >&3
printf 'sh2\n' >&3
exec 3>&-
last=$(tail -n 2 "$P" | tr '\n' '|')
[[ $last == "slow record|sh1sh2|" || $last == "sh1|sh2|" ]] ||
    fail "exec 3>>p; printf sh1 >&3; printf 'sh2\\n' >&3; exec 3>&-: expected records sh1sh2 (or sh1, sh2 if FLUSH commits), seen [$last]"
log "shell idiom gave: $last"
mk_stop
log ok
