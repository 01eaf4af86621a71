#!/bin/sh
# wordcount-awk.sh MNT TOPIC [TOP] — a batch job over a whole topic.
#
# Reads every partition of TOPIC (from its first retained byte) and prints the
# TOP (default 10) most frequent words, "COUNT WORD", most frequent first,
# ties in alphabetical order. Words are lower-cased runs of letters.
set -eu
MNT=${1:?usage: wordcount-awk.sh MNT TOPIC [TOP]}
TOPIC=${2:?usage: wordcount-awk.sh MNT TOPIC [TOP]}
TOP=${3:-10}
NPART=$(getfattr --absolute-names --only-values -n user.partitions "$MNT/$TOPIC")

p=0
while [ "$p" -lt "$NPART" ]; do
    f=$MNT/$TOPIC/$p
    tail -c +$(($(getfattr --absolute-names --only-values -n user.position.first "$f") + 1)) "$f"
    p=$((p + 1))
done |
awk '{
        line = tolower($0)
        while (match(line, /[a-z]+/)) {
            n[substr(line, RSTART, RLENGTH)]++
            line = substr(line, RSTART + RLENGTH)
        }
    }
    END { for (w in n) print n[w], w }' |
sort -k1,1nr -k2,2 | head -n "$TOP"
