#!/bin/bash
# Errors and conventions:
#  - a bad -o value: one stderr line naming the option (no usage dump); an
#    unknown FUSE option: at most two lines naming it, nothing mounted; a
#    missing MOUNTPOINT: "missing MOUNTPOINT" in one or two lines;
#  - getxattr of a missing name is ENODATA everywhere (root, .cluster, topic,
#    partition); topic settings always exist, so XATTR_CREATE of one is
#    EEXIST, and XATTR_REPLACE of an unknown name is ENODATA;
#  - the values Kafka accepts (Long.MAX_VALUE = 9223372036854775807 for
#    retention.ms, segment.ms, retention.bytes) are accepted, as xattrs and
#    as -o log.retention.ms at mount;
#  - fallocate is EOPNOTSUPP and changes nothing;
#  - --help states the limits of num.partitions and message.max.bytes.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1

MAX=9223372036854775807
mkdir -p "$T/cd" "$T/cm"
MOUNTS+=("$T/cm")
# cli WHAT ARGS...: run minikafka (10 s limit); sets ST and ERR (stderr).
cli() {
    local what=$1
    shift
    timeout 10 "$MK" "$@" >"$T/cli.out" 2>"$T/cli.err"
    ST=$? ERR=$(cat "$T/cli.err") NL=$(wc -l <"$T/cli.err")
    DAEMON_LOGS+=("$T/cli.err.$what") && cp "$T/cli.err" "$T/cli.err.$what"
    log "$what: exit $ST, $NL stderr lines: $(head -c 200 "$T/cli.err" | tr '\n' ' ')"
    [[ $ST != 0 && $ST != 124 ]] || soft_fail "$what: expected a non-zero exit at once, seen $ST (124: still running after 10 s)"
    is_mounted "$T/cm" && { soft_fail "$what: mounted $T/cm"; fusermount3 -u "$T/cm"; }
}
cli bad-value -o num.partitions=x "$T/cd" "$T/cm"
[[ $NL == 1 && $ERR == *num.partitions* ]] || soft_fail "-o num.partitions=x: expected exactly one stderr line naming num.partitions, seen $NL lines: $(head -c 300 <<<"$ERR")"
cli fuse-option -f -o no_such_fuse_option "$T/cd" "$T/cm"
((NL >= 1 && NL <= 2)) && [[ $ERR == *no_such_fuse_option* ]] ||
    soft_fail "-o no_such_fuse_option: expected 1-2 stderr lines naming it, seen $NL lines: $(head -c 300 <<<"$ERR")"
cli one-argument "$T/cd"
((NL >= 1 && NL <= 2)) && [[ $ERR == *MOUNTPOINT* ]] ||
    soft_fail "one argument: expected 1-2 stderr lines saying missing MOUNTPOINT, seen $NL lines: $(head -c 300 <<<"$ERR")"
help=$("$MK" --help 2>&1) || fail "minikafka --help exited $?"
[[ $help == *100000* ]] || soft_fail "--help does not state the num.partitions limit (100000)"
[[ $help =~ 67108864|64\ MiB ]] || soft_fail "--help does not state the message.max.bytes limit (67108864 / 64 MiB)"

mk_start
mkdir "$MNT/t" || fail "mkdir topic"
P=$MNT/t/0
echo rec >>"$P"
# Missing names: ENODATA on every kind of node.
for f in "$MNT" "$MNT/.cluster" "$MNT/t" "$P"; do
    got=$($FSOP getxattr "$f" user.nosuch)
    [[ $got == ENODATA ]] || soft_fail "getxattr user.nosuch on ${f#"$T"/}: expected ENODATA, seen [$got]"
done
# XATTR_CREATE / XATTR_REPLACE.
before=$(xget user.retention.ms "$MNT/t")
got=$($FSOP setxattr_create "$MNT/t" user.retention.ms 5000)
[[ $got == EEXIST ]] || soft_fail "XATTR_CREATE of user.retention.ms on a topic (it always exists): expected EEXIST, seen [$got]"
[[ $(xget user.retention.ms "$MNT/t") == "$before" ]] || soft_fail "user.retention.ms changed by a refused XATTR_CREATE: $(xget user.retention.ms "$MNT/t")"
got=$($FSOP setxattr_replace "$MNT/t" user.retention.ms 5000)
[[ $got == OK && $(xget user.retention.ms "$MNT/t") == 5000 ]] || soft_fail "XATTR_REPLACE of user.retention.ms: expected OK and 5000, seen [$got] $(xget user.retention.ms "$MNT/t")"
got=$($FSOP setxattr_replace "$MNT/t" user.nosuch 1)
[[ $got == ENODATA ]] || soft_fail "XATTR_REPLACE of an unknown name user.nosuch on a topic: expected ENODATA, seen [$got]"
# Long.MAX_VALUE, as Kafka accepts it.
for k in user.retention.ms user.segment.ms user.retention.bytes; do
    out=$(setfattr -n "$k" -v "$MAX" "$MNT/t" 2>&1) || soft_fail "setfattr -n $k -v $MAX: $out"
    got=$(xget "$k" "$MNT/t")
    [[ $got == "$MAX" ]] || soft_fail "$k after setting $MAX: seen [$got]"
done
# fallocate: not supported, nothing changed.
out=$(fallocate -l 100 "$P" 2>&1) && soft_fail "fallocate -l 100 on a partition succeeded"
[[ $out == *"Operation not supported"* ]] || soft_fail "fallocate -l 100: expected 'Operation not supported', seen [$out]"
got=$($FSOP fallocate "$P" 100)
[[ $got =~ ^(EOPNOTSUPP|ENOTSUP)$ ]] || soft_fail "fallocate(2) on a partition: expected EOPNOTSUPP, seen [$got]"
assert_eq 4 "$(fsize "$P")" "st_size after fallocate"
assert_eq rec "$(cat "$P")" "content after fallocate"
mk_stop

# -o log.retention.ms=Long.MAX_VALUE at mount: the default of a new topic.
mk_start -o log.retention.ms=$MAX
mkdir "$MNT/u" || fail "mkdir with log.retention.ms=$MAX"
assert_eq "$MAX" "$(xget user.retention.ms "$MNT/u")" "user.retention.ms of a new topic with -o log.retention.ms=$MAX"
assert_eq "$MAX" "$(xget user.retention.bytes "$MNT/t")" "user.retention.bytes (set to $MAX) after restart"
mk_stop
log ok
