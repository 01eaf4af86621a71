#!/bin/sh
# log-shipper.sh MNT TOPIC [N | -] — ship syslog-style lines into a topic.
#
# Each line is keyed by its program name ("host app[pid]: ..." -> "app") and
# appended to partition cksum(app) % partitions, so all lines of one program
# stay in order in one partition (what a Kafka producer does with a key).
# With "-", lines are read from stdin, e.g.
#     journalctl -f -o short | log-shipper.sh /mnt/mk syslog -
# otherwise N (default 1000) synthetic lines are generated. Creates TOPIC with
# the mount's default partition count if needed. Prints a summary per partition.
set -eu
MNT=${1:?usage: log-shipper.sh MNT TOPIC [N | -]}
TOPIC=${2:?usage: log-shipper.sh MNT TOPIC [N | -]}
N=${3:-1000}
[ -d "$MNT/$TOPIC" ] || mkdir "$MNT/$TOPIC"
NPART=$(getfattr --absolute-names --only-values -n user.partitions "$MNT/$TOPIC")

generate() {
    awk -v n="$1" 'BEGIN {
        split("sshd cron nginx kernel postfix", app, " ")
        split("info info info warning err", lvl, " ")
        for (i = 1; i <= n; i++) {
            a = app[i % 5 + 1]
            printf "2024-05-01T12:%02d:%02d web1 %s[%d]: %s request %d served\n",
                int(i / 60) % 60, i % 60, a, 1000 + i % 5, lvl[(i * 7) % 5 + 1], i
        }
    }'
}

if [ "$N" = - ]; then cat; else generate "$N"; fi |
awk -v dir="$MNT/$TOPIC" -v np="$NPART" '
    # Key = program name: the word before "[pid]:" or ":".
    {
        key = $0
        if (match(key, /[^ ]+(\[[0-9]+\])?: /)) {
            key = substr(key, RSTART, RLENGTH)
            sub(/(\[[0-9]+\])?: $/, "", key)
        }
        if (!(key in part)) {
            cmd = "printf %s \"" key "\" | cksum"
            cmd | getline sum; close(cmd)
            split(sum, f, " ")
            part[key] = f[1] % np
        }
        p = part[key]
        # One open file per partition, opened with ">>" (">" would truncate,
        # which a partition refuses); fflush after every line makes every
        # line its own write(), acknowledged when durable.
        print >> (dir "/" p); fflush(dir "/" p)
        count[p]++; total++
    }
    END {
        for (p = 0; p < np; p++) printf "partition %d: %d lines\n", p, count[p] + 0
        printf "shipped %d lines to %s\n", total, dir
    }'
