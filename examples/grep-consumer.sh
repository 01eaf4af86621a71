#!/bin/sh
# grep-consumer.sh [-f] MNT TOPIC PATTERN — grep every partition of a topic.
#
# Prints matching records as "TOPIC/PARTITION: RECORD". Reads start at each
# partition's first retained byte (user.position.first), so a topic whose old
# segments were deleted by retention is consumed without errors. With -f it
# keeps following all partitions (one tail -f pipeline per partition) until
# interrupted (Ctrl-C or SIGTERM stop all of them).
set -eu
follow=""
if [ "${1:-}" = -f ]; then follow=1; shift; fi
MNT=${1:?usage: grep-consumer.sh [-f] MNT TOPIC PATTERN}
TOPIC=${2:?usage: grep-consumer.sh [-f] MNT TOPIC PATTERN}
PATTERN=${3:?usage: grep-consumer.sh [-f] MNT TOPIC PATTERN}
NPART=$(getfattr --absolute-names --only-values -n user.partitions "$MNT/$TOPIC")
if [ -n "$follow" ]; then
    # The pipelines run in the background, in this script's process group;
    # `kill 0` stops them all, which is only safe in a group of our own.
    [ "$(ps -o pgid= -p $$ | tr -d ' ')" = "$$" ] || exec setsid "$0" -f "$@"
    trap 'trap - INT TERM; kill 0' INT TERM
fi

p=0
while [ "$p" -lt "$NPART" ]; do
    f=$MNT/$TOPIC/$p
    first=$(getfattr --absolute-names --only-values -n user.position.first "$f")
    if [ -n "$follow" ]; then
        tail -c +$((first + 1)) -f "$f" | grep --line-buffered -e "$PATTERN" |
            sed -u "s|^|$TOPIC/$p: |" &
    else
        tail -c +$((first + 1)) "$f" | grep -e "$PATTERN" | sed "s|^|$TOPIC/$p: |" || true
    fi
    p=$((p + 1))
done
[ -z "$follow" ] || wait
