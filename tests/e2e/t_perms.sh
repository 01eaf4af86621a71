#!/bin/bash
# Permissions, with the daemon started by root with -o allow_other (which
# implies default_permissions: the kernel checks modes and owners). The mount
# root is owned by the daemon's uid/gid, mode 0755; a topic gets the mkdir
# caller's uid/gid and mode & ~umask; its partitions show the topic's mode &
# 0666 (permissions are per topic: chmod of a partition is EPERM). Other
# users can read but not append, set xattrs, rmdir or mkdir; chmod is for the
# owner; a sticky 1777 root lets anyone create topics but delete only their
# own. Modes and owners survive a restart. Without allow_other other users
# cannot even stat the mount. Runs commands as user nobody (needs root).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1

[[ $(id -u) == 0 ]] || fail "t_perms needs root (it runs commands as user nobody)"
command -v setpriv >/dev/null || fail "setpriv is missing (apt-get install util-linux)"
id nobody >/dev/null 2>&1 || fail "user nobody is missing"
NGID=$(id -g nobody) NUID=$(id -u nobody)
NOBODY=(setpriv --reuid=nobody --regid="$NGID" --clear-groups)
NPY=/usr/bin/python3 # root's python may live where nobody cannot reach it
"${NOBODY[@]}" "$NPY" -c pass || fail "user nobody cannot run $NPY"
chmod 755 "$T" # mktemp made it 0700
# and so did run.sh for the directory above it: let others through it
[[ $(dirname "$T") == /tmp ]] || chmod o+x "$(dirname "$T")"
nob() { "${NOBODY[@]}" "$NPY" "$E2E_DIR/fsop.py" "$@" 2>&1; } # fsop.py as nobody
# chk WANT_REGEX WHAT CMD...: the output of CMD (fsop.py) must match WANT.
chk() {
    local want=$1 what=$2 got
    shift 2
    got=$("$@" 2>&1)
    [[ $got =~ ^($want)$ ]] || soft_fail "$what: expected [$want], seen [$got]"
}

umask 022
mk_start -o allow_other,num.partitions=2
grep " $MNT " /proc/self/mountinfo | grep -q default_permissions ||
    soft_fail "allow_other must imply default_permissions; mountinfo: $(grep " $MNT " /proc/self/mountinfo)"
chk "OK 755 0 0" "mount root: mode, owner = the daemon's (root)" $FSOP stat "$MNT"
mkdir "$MNT/rt" "$MNT/rt2" "$MNT/rv" || fail "mkdir three topics as root"
P=$MNT/rt/0
echo root-record >>"$P"
chk "OK 755 0 0" "topic made by root (umask 022)" $FSOP stat "$MNT/rt"
chk "OK 644 0 0" "partition 0 of root's topic (topic mode & 0666)" $FSOP stat "$P"
chk "OK 644 0 0" "partition 1 of root's topic" $FSOP stat "$MNT/rt/1"

# nobody: may read, nothing else.
state() { echo "$(ls "$MNT" | tr '\n' ' ')|$(cat "$P" "$MNT/rv/0" 2>&1 | md5)|$(xget user.retention.ms "$MNT/rt")|$(xget user.retention.ms "$MNT/rv")"; }
before=$(state)
chk "OK 12 root-record" "nobody reads root's partition" nob pread "$P" 0 100
chk EACCES "nobody appends to root's topic" nob append "$P" 'x\n'
chk EACCES "nobody sets user.retention.ms on root's topic" nob setxattr "$MNT/rt" user.retention.ms 5
chk EACCES "nobody rmdirs root's topic" nob rmdir "$MNT/rv"
chk EACCES "nobody mkdirs a topic in root's 0755 mount root" nob mkdir "$MNT/newtopic"
chk EPERM "nobody chmods root's topic" nob chmod "$MNT/rt" 777
msg=$("${NOBODY[@]}" sh -c "echo x >>'$P'" 2>&1) && soft_fail "nobody: echo x >> root's partition succeeded"
[[ $msg == *"Permission denied"* ]] || soft_fail "nobody: echo x >> root's partition: expected 'Permission denied', seen [$msg]"
after=$(state)
[[ $after == "$before" ]] || soft_fail "refused operations by nobody changed something: before [$before], after [$after]"
[[ -d $MNT/rv ]] || mkdir "$MNT/rv" # (the old daemon let nobody delete it)

# A sticky world-writable root: nobody creates and uses its own topic, but
# cannot delete root's.
chk OK "root: chmod 1777 of the mount root" $FSOP chmod "$MNT" 1777
chk "OK 1777 0 0" "mount root after chmod 1777" $FSOP stat "$MNT"
out=$("${NOBODY[@]}" sh -c "umask 022; mkdir '$MNT/nob' && echo nob-record >>'$MNT/nob/0'" 2>&1) ||
    soft_fail "nobody: umask 022; mkdir nob; echo >> nob/0 in a 1777 root: $out"
chk "OK 755 $NUID $NGID" "topic made by nobody (umask 022)" $FSOP stat "$MNT/nob"
chk "OK 644 $NUID $NGID" "partition of nobody's topic" $FSOP stat "$MNT/nob/0"
[[ $(cat "$MNT/nob/0" 2>&1) == nob-record ]] || soft_fail "record appended by nobody to its own topic: $(cat "$MNT/nob/0" 2>&1)"
chk "EPERM|EACCES" "nobody rmdirs root's topic in a sticky root" nob rmdir "$MNT/rv"
[[ -d $MNT/rv ]] || soft_fail "root's topic rv vanished"
chk OK "root rmdirs its topic rv" $FSOP rmdir "$MNT/rv"

# chmod/chown of topics by root; partitions follow their topic.
chk OK "root: chmod 0777 of its topic" $FSOP chmod "$MNT/rt" 777
chk "OK 777 0 0" "topic after chmod 0777" $FSOP stat "$MNT/rt"
chk "OK 666 0 0" "partition 0 of a 0777 topic" $FSOP stat "$P"
chk "OK 666 0 0" "partition 1 of a 0777 topic" $FSOP stat "$MNT/rt/1"
chk "OK 10" "nobody appends to a 0777 topic" nob append "$P" 'by nobody\n'
[[ $(cat "$P") == $'root-record\nby nobody' ]] || soft_fail "content after nobody's append to the 0777 topic: $(cat "$P" | tr '\n' '|')"
chk OK "root: chown nobody of a topic" $FSOP chown "$MNT/rt2" "$NUID" -1
chk "OK 755 $NUID 0" "topic after chown nobody" $FSOP stat "$MNT/rt2"
chk "OK 9" "nobody appends to the topic it now owns" nob append "$MNT/rt2/0" 'by owner\n'
chk EPERM "root: chmod of a partition (permissions are per topic)" $FSOP chmod "$P" 600
chk "OK 666 0 0" "partition mode after the refused chmod" $FSOP stat "$P"

# Modes and owners survive a restart.
mk_stop
mk_start -o allow_other,num.partitions=2
chk "OK 1777 0 0" "mount root after restart" $FSOP stat "$MNT"
chk "OK 777 0 0" "0777 topic after restart" $FSOP stat "$MNT/rt"
chk "OK 666 0 0" "its partition after restart" $FSOP stat "$P"
chk "OK 755 $NUID 0" "chowned topic after restart" $FSOP stat "$MNT/rt2"
chk "OK 755 $NUID $NGID" "nobody's topic after restart" $FSOP stat "$MNT/nob"
chk "EPERM|EACCES" "nobody rmdirs root's topic rt after restart" nob rmdir "$MNT/rt"
mk_stop

# Without allow_other, FUSE keeps other users out entirely.
mk_start -o num.partitions=2
chk EACCES "nobody stats a mount without allow_other" nob stat "$MNT"
chk "OK 1777 0 0" "root stats the mount root without allow_other" $FSOP stat "$MNT"
mk_stop
log ok
