#!/bin/sh
# produce-consume.sh MNT [TOPIC [COUNT]] — the smallest producer and consumer.
#
# Creates TOPIC (default "demo") on a mounted minikafka if it does not exist,
# produces COUNT (default 10) records round-robin over its partitions with
# plain `echo >>`, then consumes every partition, printing each record as
# "PARTITION OFFSET RECORD". It remembers where it stopped, like a committed
# consumer offset: a second run prints only the records produced since. The
# state (per partition: byte position and record offset) is kept in $STATE,
# default ./.produce-consume.TOPIC.pos.
set -eu
MNT=${1:?usage: produce-consume.sh MNT [TOPIC [COUNT]]}
TOPIC=${2:-demo}
COUNT=${3:-10}
STATE=${STATE:-./.produce-consume.$TOPIC.pos}
[ -d "$MNT/$TOPIC" ] || mkdir "$MNT/$TOPIC"          # create the topic
NPART=$(getfattr --absolute-names --only-values -n user.partitions "$MNT/$TOPIC")

# Produce: one record per echo, round-robin.
i=0
while [ "$i" -lt "$COUNT" ]; do
    echo "message $i from $(uname -n) pid $$" >>"$MNT/$TOPIC/$((i % NPART))"
    i=$((i + 1))
done

# Consume each partition from the saved byte position. Byte positions are
# stable, so `tail -c +POS+1` resumes exactly where the last run stopped.
: >"$STATE.tmp"
p=0
while [ "$p" -lt "$NPART" ]; do
    f=$MNT/$TOPIC/$p
    set -- $(sed -n "s/^$p //p" "$STATE" 2>/dev/null || true)
    pos=${1:-0} off=${2:-0}
    first=$(getfattr --absolute-names --only-values -n user.position.first "$f")
    if [ "$pos" -lt "$first" ]; then                 # deleted by retention: skip ahead
        pos=$first
        off=$(getfattr --absolute-names --only-values -n user.offset.first "$f")
    fi
    end=$(stat -c %s "$f")                           # committed end, read once
    tail -c +$((pos + 1)) "$f" | head -c $((end - pos)) >"$STATE.chunk"
    awk -v p="$p" -v o="$off" '{ print p, o++, $0 }' "$STATE.chunk"
    n=$(wc -l <"$STATE.chunk")
    echo "$p $end $((off + n))" >>"$STATE.tmp"
    p=$((p + 1))
done
rm -f "$STATE.chunk"
mv "$STATE.tmp" "$STATE"
