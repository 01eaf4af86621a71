#!/bin/bash
# The tree: mkdir/rmdir/ls/find/stat on topics and partitions, the xattrs of
# both, growing partitions, and the .cluster status file.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1

mk_start -o num.partitions=3,node.id=7
assert_eq "" "$(ls "$MNT")" "ls of an empty mount"
[[ -f $MNT/.cluster ]] || fail ".cluster is not a regular file"
mkdir "$MNT/orders" "$MNT/events" || fail "mkdir two topics"
assert_eq $'events\norders' "$(ls "$MNT")" "ls of the mount"
assert_eq $'0\n1\n2' "$(ls "$MNT/orders")" "ls of a topic (num.partitions=3)"
assert_eq "directory" "$(stat -c %F "$MNT/orders")" "stat type of a topic"
assert_match "^regular (empty )?file$" "$(stat -c %F "$MNT/orders/0")" "stat type of a partition"
assert_match "^regular (empty )?file$" "$(stat -c %F "$MNT/.cluster")" "stat type of .cluster"
assert_eq "$(printf '%s\n' . ./.cluster ./events ./events/0 ./events/1 ./events/2 ./orders ./orders/0 ./orders/1 ./orders/2)" \
    "$(cd "$MNT" && find . | sort)" "find over the mount"
assert_eq "$(printf '%s\n' ./events/0 ./events/1 ./events/2 ./orders/0 ./orders/1 ./orders/2)" \
    "$(cd "$MNT" && find . -mindepth 2 -type f | sort)" "find -type f"
[[ -e $MNT/orders/3 ]] && fail "partition 3 of a 3-partition topic exists"
[[ -e $MNT/nosuch ]] && fail "a missing topic exists"
assert_eq ENOENT "$($FSOP open "$MNT/nosuch/0" r)" "open of a partition of a missing topic"

# Partition xattrs on a fresh partition, then after writes.
P=$MNT/orders/1
for kv in user.offset.first=0 user.offset.next=0 user.position.first=0 user.leader=7 user.replicas=7; do
    assert_eq "${kv#*=}" "$(xget "${kv%%=*}" "$P")" "${kv%%=*} of a new partition"
done
assert_match '^[0-9]+$' "$(xget user.term "$P")" "user.term is decimal"
seq 1 10 >>"$P"
assert_eq 10 "$(xget user.offset.next "$P")" "user.offset.next after 10 records"
assert_eq 0 "$(xget user.offset.first "$P")" "user.offset.first after 10 records"
assert_eq 21 "$(fsize "$P")" "st_size after seq 1 10"
dump=$(getfattr --absolute-names -d -m - "$P" 2>&1)
for k in user.offset.first user.offset.next user.position.first user.leader user.replicas user.term; do
    assert_match "$k=\"[0-9]+\"" "$dump" "getfattr --absolute-names -d -m - lists $k"
done
dump=$(getfattr --absolute-names -d -m - "$MNT/orders" 2>&1)
for k in user.partitions user.retention.ms user.retention.bytes user.segment.bytes user.segment.ms; do
    assert_match "$k=\"-?[0-9]+\"" "$dump" "getfattr --absolute-names -d -m - on a topic lists $k"
done
assert_eq ENODATA "$($FSOP getxattr "$P" user.nosuch)" "getxattr of an unknown name"

# Topic xattrs: partitions grow, overrides are writable and read back.
assert_eq 3 "$(xget user.partitions "$MNT/orders")" "user.partitions"
setfattr -n user.partitions -v 3 "$MNT/orders" 2>/dev/null # same value: allowed or EINVAL, no change
assert_eq 3 "$(ls "$MNT/orders" | wc -l)" "partitions after setting the same count"
setfattr -n user.partitions -v 5 "$MNT/orders" || fail "setfattr user.partitions=5"
assert_eq 5 "$(xget user.partitions "$MNT/orders")" "user.partitions after growing"
assert_eq $'0\n1\n2\n3\n4' "$(ls "$MNT/orders")" "ls after growing to 5"
echo new-partition >>"$MNT/orders/4" || fail "append to a new partition"
assert_eq new-partition "$(cat "$MNT/orders/4")" "content of a new partition"
assert_eq "$(seq 1 10)" "$(cat "$P")" "existing partition unchanged by growing"
for k in user.retention.ms user.retention.bytes user.segment.bytes user.segment.ms; do
    setfattr -n "$k" -v 123456789 "$MNT/events" || fail "setfattr $k"
    assert_eq 123456789 "$(xget "$k" "$MNT/events")" "$k reads back"
done
expect_errno EINVAL setxattr "$MNT/events" user.retention.ms abc

# .cluster: node status, one key=value line per partition.
cat "$MNT/.cluster" >"$T/cluster" || fail "cat .cluster"
log ".cluster:"; sed 's/^/    /' "$T/cluster" >&2
assert_eq "$(wc -c <"$T/cluster")" "$(fsize "$MNT/.cluster")" "st_size of .cluster = bytes read"
grep -Eq '(^|[[:space:]])[a-z_.]*node[a-z_.]*=7([[:space:]]|$)' "$T/cluster" || fail ".cluster: no node id 7 (expected a key like node=7 / node.id=7)"
# A partition line names it as topic/partition (partition=orders/1) or with
# separate keys (topic=orders partition=1).
pline() { grep -E "=$1/$2([[:space:]]|\$)|(^|[[:space:]])topic=$1[[:space:]].*partition=$2([[:space:]]|\$)" "$T/cluster"; }
for t in orders:5 events:3; do
    topic=${t%:*} n=${t#*:}
    for ((i = 0; i < n; i++)); do
        assert_eq 1 "$(pline "$topic" "$i" | wc -l)" ".cluster lines for partition $topic/$i"
    done
    assert_eq 0 "$(pline "$topic" "$n" | wc -l)" ".cluster lines for the non-existent partition $topic/$n"
done
line=$(pline orders 1)
assert_match "=21([[:space:]]|$)" "$line" ".cluster line of orders/1 shows its 21 bytes"
assert_match "=10([[:space:]]|$)" "$line" ".cluster line of orders/1 shows next offset 10"
grep -Ev '^$|^#' "$T/cluster" | grep -Evq '^([^[:space:]=]+=[^[:space:]]*[[:space:]]*)+$' &&
    fail ".cluster: a line that is not key=value pairs: $(grep -Ev '^([^[:space:]=]+=[^[:space:]]*[[:space:]]*)+$' "$T/cluster" | head -1)"

# rmdir deletes a topic and its data.
du_before=$(du -sk "$DATA" | cut -f1)
head -c 300000 /dev/urandom | base64 >>"$MNT/events/0"
rmdir "$MNT/events" || fail "rmdir a topic"
assert_eq orders "$(ls "$MNT")" "ls after rmdir"
[[ -e $MNT/events ]] && fail "events exists after rmdir"
grep -Eq "=events(/|[[:space:]]|$)" "$MNT/.cluster" && fail ".cluster still lists the deleted topic: $(grep -E "=events(/|[[:space:]]|$)" "$MNT/.cluster" | head -1)"
du_after=$(du -sk "$DATA" | cut -f1)
(( du_after <= du_before + 64 )) || fail "data dir did not shrink after rmdir: ${du_before}K before writing 400K, ${du_after}K after rmdir"
mkdir "$MNT/events"
assert_eq 0 "$(fsize "$MNT/events/0")" "re-created topic is empty"
assert_eq 3 "$(xget user.partitions "$MNT/events")" "re-created topic has the default partition count"
assert_eq 0 "$(xget user.offset.next "$MNT/events/0")" "re-created topic starts at offset 0"
mk_stop
log ok
