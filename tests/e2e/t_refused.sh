#!/bin/bash
# Every refused operation fails with its documented errno and changes nothing.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1

mk_start -o num.partitions=2,message.max.bytes=1000
mkdir "$MNT/orders" "$MNT/other"
P=$MNT/orders/0
seq 1 100 >>"$P"
echo keep >>"$MNT/other/1"

# Everything observable: tree, sizes, xattrs, contents, data dir file list.
snapshot() {
    (cd "$MNT" && find . -path ./.cluster -prune -o -printf '%p %y %s %m\n' | sort)
    for f in "$MNT"/*/*; do echo "$f $(md5 <"$f")"; done
    getfattr --absolute-names -R -d -m - "$MNT" 2>&1 | grep -v '^user.term=' # no election on one node
}
snapshot >"$T/before"
unchanged() { # WHAT
    snapshot >"$T/after"
    assert_file_eq "$T/before" "$T/after" "state after: $1"
}

# --- truncation: EPERM -----------------------------------------------------------
expect_errno EPERM open "$P" w,trunc
expect_errno EPERM open "$P" rw,trunc
expect_errno EPERM truncate "$P" 0
expect_errno EPERM truncate "$P" 10
expect_errno EPERM ftruncate "$P" 0
msg=$( (echo x >"$P") 2>&1) && fail "echo x > p succeeded"
assert_match "Operation not permitted" "$msg" "message from echo x > p"
msg=$(truncate -s 0 "$P" 2>&1) && fail "truncate -s 0 p succeeded"
assert_match "Operation not permitted" "$msg" "message from truncate -s 0 p"
unchanged "truncation refused"

# --- unlink / rename of partition files: EPERM --------------------------------------
expect_errno EPERM unlink "$P"
msg=$(rm -f "$P" 2>&1) && fail "rm -f p succeeded"
assert_match "Operation not permitted" "$msg" "message from rm -f p"
expect_errno EPERM rename "$P" "$MNT/orders/5"
expect_errno EPERM rename "$P" "$MNT/orders/1"
expect_errno EPERM rename "$P" "$MNT/other/0"
expect_errno EPERM rename "$P" "$MNT/moved"
unchanged "unlink/rename refused"

# --- creating regular files: EPERM ------------------------------------------------
expect_errno EPERM open "$MNT/newfile" w,creat
expect_errno EPERM open "$MNT/orders/2" w,creat
expect_errno EPERM open "$MNT/orders/x" w,creat,excl
expect_errno EPERM mknod "$MNT/orders/nod"
msg=$( (: >"$MNT/orders/new") 2>&1) && fail ": > MNT/orders/new succeeded"
assert_match "Operation not permitted" "$msg" "message from : > topic/new"
unchanged "file creation refused"

# --- mkdir ------------------------------------------------------------------------
expect_errno EPERM mkdir "$MNT/orders/sub"
expect_errno EEXIST mkdir "$MNT/orders"
for bad in 'a b' 'a:b' 'naïve' 'x*y' 'semi;colon' '.hidden' '.cluster2' '..x' 'tab	x' 'a\b'; do
    expect_errno EINVAL mkdir "$MNT/$bad"
done
expect_errno ENAMETOOLONG mkdir "$MNT/$(printf 'a%.0s' {1..250})"
unchanged "invalid mkdirs refused"
# The boundary and every legal character are accepted.
long249=$(printf 'b%.0s' {1..249})
expect_ok mkdir "$MNT/$long249"
expect_ok mkdir "$MNT/Az09._-"
assert_eq $'0\n1' "$(ls "$MNT/$long249")" "partitions of a 249-char topic"
rmdir "$MNT/$long249" "$MNT/Az09._-" || fail "rmdir of the valid-name topics"
unchanged "valid topics created and removed"

# --- record too long: EMSGSIZE ---------------------------------------------------------
expect_ok appendlen "$P" 1000                  # exactly message.max.bytes (\n excluded)
assert_eq 1000 "$(tail -n 1 "$P" | tr -d '\n' | wc -c)" "1000-byte record stored"
snapshot >"$T/before"
expect_errno EMSGSIZE appendlen "$P" 1001
expect_errno EMSGSIZE append "$P" 'ok1\nok2\n'"$(printf 'y%.0s' {1..1500})"'\nok3\n'
unchanged "oversized records refused (whole write)"

# --- xattrs ----------------------------------------------------------------------------
expect_errno EINVAL setxattr "$MNT/orders" user.partitions 1
expect_errno EINVAL setxattr "$MNT/orders" user.partitions abc
expect_errno EINVAL setxattr "$MNT/orders" user.partitions -3
expect_errno EINVAL setxattr "$MNT/orders" user.partitions ''
for ro in user.offset.first user.offset.next user.position.first user.leader user.replicas user.term; do
    expect_errno EPERM setxattr "$P" "$ro" 42
done
msg=$(setfattr -n user.offset.next -v 0 "$P" 2>&1) && fail "setfattr user.offset.next succeeded"
assert_match "Operation not permitted" "$msg" "message from setfattr on a read-only xattr"
unchanged "xattr changes refused"

# --- .cluster is read-only: EACCES ---------------------------------------------------------
expect_errno EACCES open "$MNT/.cluster" w
expect_errno EACCES open "$MNT/.cluster" rw
expect_errno EACCES open "$MNT/.cluster" w,a
unchanged ".cluster open for writing refused"

# --- writes to a deleted topic: ESTALE --------------------------------------------------
mkdir "$MNT/doomed"
echo before >>"$MNT/doomed/0"
got=$($FSOP stale "$MNT/doomed" 0 'late\n')
assert_eq ESTALE "$got" "write on an fd whose topic was deleted"
[[ -e $MNT/doomed ]] && fail "topic 'doomed' still exists after rmdir"
mkdir "$MNT/doomed"
assert_eq 0 "$(fsize "$MNT/doomed/0")" "a re-created topic starts empty (no resurrected data)"
rmdir "$MNT/doomed"
unchanged "after the ESTALE checks"
mk_stop
log ok
