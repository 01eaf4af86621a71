#!/bin/bash
# Every script in examples/ runs against a real mount and prints what it
# promises.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1
EX=$ROOT/examples

mk_start -o num.partitions=2
cd "$T" || fail "cd $T"

# --- produce-consume.sh: produce 10, consume all; then 4 more, only those ----------
out=$(STATE=$T/pc.pos "$EX/produce-consume.sh" "$MNT" demo 10) || fail "produce-consume.sh exited $?"
assert_eq "$(printf '0 %d message %d\n' 0 0 1 2 2 4 3 6 4 8; printf '1 %d message %d\n' 0 1 1 3 2 5 3 7 4 9)" \
    "$(sed 's/ from .*//' <<<"$out")" "produce-consume.sh first run (partition offset record)"
out=$(STATE=$T/pc.pos "$EX/produce-consume.sh" "$MNT" demo 4) || fail "produce-consume.sh (second run) exited $?"
assert_eq $'0 5 message 0\n0 6 message 2\n1 5 message 1\n1 6 message 3' \
    "$(sed 's/ from .*//' <<<"$out")" "produce-consume.sh second run resumes after the first"

# --- log-shipper.sh: keyed by program, order per program kept ----------------------
out=$("$EX/log-shipper.sh" "$MNT" logs 1000) || fail "log-shipper.sh exited $?"
assert_match "shipped 1000 lines" "$out" "log-shipper.sh summary"
cat "$MNT/logs/0" "$MNT/logs/1" >"$T/logs"
assert_eq 1000 "$(wc -l <"$T/logs")" "lines shipped into the topic"
for app in sshd cron nginx kernel postfix; do
    n0=$(grep -c " $app\[" "$MNT/logs/0") n1=$(grep -c " $app\[" "$MNT/logs/1")
    assert_eq 200 $((n0 + n1)) "lines of $app"
    ((n0 == 0 || n1 == 0)) || fail "lines of $app are spread over two partitions ($n0, $n1): the key must pick one"
    seqs=$(cat "$MNT/logs/0" "$MNT/logs/1" | grep " $app\[" | awk '{ print $(NF - 1) }')
    assert_eq "$(sort -n <<<"$seqs")" "$seqs" "order of $app's lines"
done
printf 'Jan  1 00:00:00 host myapp[42]: from stdin\n' | "$EX/log-shipper.sh" "$MNT" logs - >/dev/null ||
    fail "log-shipper.sh - (stdin) exited $?"
want=$(($(printf %s myapp | cksum | cut -d' ' -f1) % 2))
assert_eq "Jan  1 00:00:00 host myapp[42]: from stdin" "$(tail -n 1 "$MNT/logs/$want")" "stdin line in partition cksum(myapp) % 2"

# --- grep-consumer.sh: batch and follow ---------------------------------------------
out=$("$EX/grep-consumer.sh" "$MNT" logs 'nginx.*: err') || fail "grep-consumer.sh exited $?"
assert_eq "$(grep -c 'nginx.*: err' "$T/logs")" "$(grep -c '^logs/[01]: .*nginx.*: err' <<<"$out")" "grep-consumer.sh matches"
assert_eq "$(grep -c 'nginx.*: err' "$T/logs")" "$(wc -l <<<"$out")" "grep-consumer.sh prints only matches"
"$EX/grep-consumer.sh" -f "$MNT" logs 'ALERT' >"$T/follow" 2>&1 &
GC=$!
HELPER_PIDS+=("$GC")
sleep 0.5
echo "host kernel[1]: ALERT disk on fire" >>"$MNT/logs/1"
echo "host kernel[1]: all fine" >>"$MNT/logs/1"
echo "host sshd[1]: ALERT root login" >>"$MNT/logs/0"
got() { [[ $(wc -l <"$T/follow") -ge 2 ]]; }
wait_until 10 "grep-consumer.sh -f prints the two new ALERT lines" got
assert_eq $'logs/0: host sshd[1]: ALERT root login\nlogs/1: host kernel[1]: ALERT disk on fire' \
    "$(sort "$T/follow")" "grep-consumer.sh -f output"
kill "$GC" # must stop the script and all its tail/grep/sed pipelines
wait_exit "$GC" 5 || fail "grep-consumer.sh -f still running 5 s after SIGTERM"
gone() { ! pgrep -g "$GC" >/dev/null; }
wait_until 5 "grep-consumer.sh -f's pipelines to exit after SIGTERM ($(pgrep -g "$GC" -l | tr '\n' ' '))" gone
HELPER_PIDS=()

# --- wordcount-awk.sh ------------------------------------------------------------------
mkdir "$MNT/words"
printf 'the cat, the dog\nthe cat the dog\nthe cat; the dog\n' >>"$MNT/words/0"
printf 'The Dog barks!\n' >>"$MNT/words/1"
out=$("$EX/wordcount-awk.sh" "$MNT" words) || fail "wordcount-awk.sh exited $?"
assert_eq $'7 the\n4 dog\n3 cat\n1 barks' "$out" "wordcount-awk.sh output"
assert_eq $'7 the\n4 dog' "$("$EX/wordcount-awk.sh" "$MNT" words 2)" "wordcount-awk.sh top 2"
cd / && mk_stop
log ok
