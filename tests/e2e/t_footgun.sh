#!/bin/bash
# Foot-gun directories are refused before anything is touched: exit non-zero
# within 10 s, one clear line on stderr, nothing mounted, nothing changed:
#  - a non-empty DATA_DIR that is not a minikafka data dir (no meta file);
#  - DATA_DIR = MOUNTPOINT, DATA_DIR inside MOUNTPOINT, MOUNTPOINT inside
#    DATA_DIR (the old daemon deadlocked on its own mount);
#  - a MOUNTPOINT that is already a mount, a regular file, or missing.
# An empty DATA_DIR or one holding only lost+found is accepted, and files in
# a data dir that minikafka did not create (trash/precious, mine.txt) survive
# a start and stop. Needs root (mounts a tmpfs).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1

[[ $(id -u) == 0 ]] || fail "t_footgun needs root to mount a tmpfs"
fuse_dev() { # MNT: the device (major:minor) of a minikafka FUSE mount on MNT
    awk -v m="$1" '$5 == m { for (i = 6; $i != "-"; i++); if ($(i + 1) == "fuse.minikafka") print $3 }' /proc/self/mountinfo
}
# unstick MNT PID: stop a daemon that was wrongly not refused, even one stuck
# in its own mount (abort the FUSE connection, then unmount lazily).
unstick() {
    local dev
    kill -TERM "$2" 2>/dev/null
    wait_exit "$2" 3 && [[ -z $(fuse_dev "$1") ]] && return 0
    dev=$(fuse_dev "$1" | tail -n 1)
    if [[ -n $dev ]]; then
        mountpoint -q /sys/fs/fuse/connections ||
            { mount -t fusectl fusectl /sys/fs/fuse/connections && TMPFS_MOUNTS+=(/sys/fs/fuse/connections); }
        echo 1 >"/sys/fs/fuse/connections/${dev#*:}/abort" 2>/dev/null
    fi
    kill -KILL "$2" 2>/dev/null
    wait_exit "$2" 5 || soft_fail "daemon $2 on $1 survives even an aborted connection"
    while [[ -n $(fuse_dev "$1") ]]; do fusermount3 -uz "$1" || break; done
}
snap() { find "$@" -printf '%p %y %s\n' 2>&1 | sort; }
# refused WHAT KEYWORD_REGEX DATA MNT: `minikafka -f DATA MNT` must exit
# non-zero within 10 s with one stderr line matching KEYWORD_REGEX (case
# insensitive), mount nothing, and change nothing in DATA and MNT.
N=0
refused() {
    local what=$1 kw=$2 d=$3 m=$4 before pid i err
    N=$((N + 1)) err=$T/refused.$N.err
    before=$(snap "$d" "$m")
    MOUNTS+=("$m") DAEMON_LOGS+=("$err")
    "$MK" -f "$d" "$m" >"$err" 2>&1 &
    pid=$! && DAEMON_PIDS+=("$pid")
    for ((i = 0; i < 100; i++)); do
        alive "$pid" || break
        if [[ -n $(fuse_dev "$m") ]]; then
            soft_fail "$what: not refused, it mounted $m ($(head -c 200 "$err" | tr "\n" " "))"
            unstick "$m" "$pid"
            return
        fi
        sleep 0.1
    done
    if ! wait_exit "$pid" 0; then
        soft_fail "$what: still running after 10 s without mounting (hung; exit would be 124)"
        unstick "$m" "$pid"
        return
    fi
    log "$what: exit $WAIT_ST: $(head -c 300 "$err")"
    [[ $WAIT_ST != 0 ]] || soft_fail "$what: exit status 0"
    [[ $(wc -l <"$err") == 1 ]] || soft_fail "$what: expected one line on stderr, seen $(wc -l <"$err"): $(head -c 300 "$err")"
    grep -Eiq -- "$kw" "$err" || soft_fail "$what: message does not say /$kw/: $(head -c 300 "$err")"
    [[ -z $(fuse_dev "$m") ]] || soft_fail "$what: $m is mounted"
    [[ $(snap "$d" "$m") == "$before" ]] ||
        soft_fail "$what: the directories changed: $(diff <(echo "$before") <(snap "$d" "$m") | grep '^[<>]' | head -5 | tr '\n' ' ')"
}

# Not a minikafka data dir: refused, nothing created or deleted in it.
mkdir -p "$T/notdata/trash" "$T/m1"
echo keep >"$T/notdata/notes.txt"
echo keep >"$T/notdata/trash/precious"
refused "non-empty DATA_DIR without meta" "not a minikafka data dir" "$T/notdata" "$T/m1"
for f in notes.txt trash/precious; do [[ -f $T/notdata/$f ]] || soft_fail "$T/notdata/$f was deleted"; done
for f in .lock meta topics; do [[ -e $T/notdata/$f ]] && soft_fail "$f was created in a dir that is not a minikafka data dir"; done

# Accepted: an empty data dir, and one holding only lost+found.
mkdir -p "$T/d2" "$T/d3/lost+found"
mk_start "$T/d2" "$T/m2" && mkdir "$MNT/t" && echo rec >>"$MNT/t/0" && mk_stop
mk_start "$T/d3" "$T/m3" && mk_stop
[[ -d $T/d3/lost+found ]] || soft_fail "lost+found vanished from the data dir"
[[ -f $T/d2/meta ]] || fail "no meta file in a data dir minikafka created ($(ls -A "$T/d2" | tr '\n' ' '))"
# Files minikafka did not create survive a start and stop.
cp -a "$T/d2" "$T/d4" && cp -a "$T/d2" "$T/d5" # clean data dirs for below
mkdir -p "$T/d2/trash"
echo keep >"$T/d2/trash/precious"
echo keep >"$T/d2/mine.txt"
mk_start "$T/d2" "$T/m2"
assert_eq rec "$(cat "$MNT/t/0")" "data in a data dir with extra files"
mk_stop
[[ -f $T/d2/trash/precious ]] || soft_fail "DATA/trash/precious (not made by minikafka) was deleted by a start and stop"
[[ -f $T/d2/mine.txt ]] || soft_fail "DATA/mine.txt (not made by minikafka) was deleted by a start and stop"

# Data dir and mount point overlapping.
mkdir -p "$T/x" "$T/m4"
refused "DATA_DIR = MOUNTPOINT" "inside|same" "$T/x" "$T/x"
mv "$T/d4" "$T/m4/data"
refused "DATA_DIR inside MOUNTPOINT" "inside|same|within|contain|overlap|nest" "$T/m4/data" "$T/m4"
mkdir "$T/d5/mnt"
refused "MOUNTPOINT inside DATA_DIR" "inside|same|within|contain|overlap|nest" "$T/d5" "$T/d5/mnt"

# Bad mount points.
mkdir -p "$T/d6" "$T/m6"
mount -t tmpfs -o size=1m tmpfs "$T/m6" || fail "mount -t tmpfs on $T/m6"
TMPFS_MOUNTS+=("$T/m6")
refused "MOUNTPOINT already a mount (tmpfs)" "already" "$T/d6" "$T/m6"
echo file >"$T/m7"
refused "MOUNTPOINT a regular file" "not a directory" "$T/d6" "$T/m7"
refused "MOUNTPOINT missing" "does not exist|no such file" "$T/d6" "$T/m8"
log ok
