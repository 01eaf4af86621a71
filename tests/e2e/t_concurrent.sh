#!/bin/bash
# Ten concurrent shell writers on one partition: four keep the file open and
# write one line per write(), four open it once per record (echo >> p), two
# write long lines (5-9 KB) that awk splits across several write() calls.
# Afterwards: nothing lost, no line garbled or interleaved, per-writer order.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1

N_LOOP=${N_LOOP:-2000} N_OPEN=${N_OPEN:-300} N_LONG=${N_LONG:-200}
mk_start
mkdir "$MNT/c"
P=$MNT/c/0

# Records follow verify_log.py's format: TAG SEQ LEN PAYLOAD, where PAYLOAD is
# LEN copies of letter SEQ % 26.
P8=() # 8-letter payloads
for c in {a..z}; do P8+=("$c$c$c$c$c$c$c$c"); done
loop_writer() { # one open, one write per record
    local k=$1 i
    for ((i = 0; i < N_LOOP; i++)); do echo "L$k $i 8 ${P8[i % 26]}"; done >>"$P"
}
open_writer() { # one open per record
    local k=$1 i
    for ((i = 0; i < N_OPEN; i++)); do echo "O$k $i 8 ${P8[i % 26]}" >>"$P"; done
}
long_writer() { # long lines, split across writes by stdio buffering
    awk -v k="$1" -v n="$N_LONG" 'BEGIN {
        for (i = 0; i < n; i++) {
            len = 5000 + (i * 37) % 4000
            c = substr("abcdefghijklmnopqrstuvwxyz", i % 26 + 1, 1)
            s = c; while (length(s) < len) s = s s; s = substr(s, 1, len)
            printf "G%s %d %d %s\n", k, i, len, s
        } }' >>"$P"
}
# A reader takes whole-file snapshots while the writers run: each must end at
# a record boundary and extend the previous one (committed bytes never change).
$PY - "$P" "$T/writers-done" >"$T/reader.out" 2>&1 <<'PYEOF' &
import os, sys, time
path, flag = sys.argv[1], sys.argv[2]
prev, n = b"", 0
while not os.path.exists(flag) or n == 0:
    with open(path, "rb") as f:
        data = f.read()
    n += 1
    if data and not data.endswith(b"\n"):
        sys.exit("snapshot %d ends inside a record: %d bytes, tail %r" % (n, len(data), data[-40:]))
    if not data.startswith(prev):
        sys.exit("snapshot %d does not extend the previous one (%d -> %d bytes)" % (n, len(prev), len(data)))
    prev = data
    time.sleep(0.02)
print("reader: %d snapshots, all at record boundaries" % n)
PYEOF
READER=$!
HELPER_PIDS+=("$READER")
pids=()
for k in 1 2 3 4; do loop_writer $k & pids+=($!); HELPER_PIDS+=($!); done
for k in 1 2 3 4; do open_writer $k & pids+=($!); HELPER_PIDS+=($!); done
for k in 1 2; do long_writer $k & pids+=($!); HELPER_PIDS+=($!); done
for p in "${pids[@]}"; do wait "$p" || fail "writer pid $p failed (exit $?)"; done
log "writers done"
touch "$T/writers-done"
wait "$READER" || fail "concurrent reader: $(cat "$T/reader.out")"
log "$(cat "$T/reader.out")"

cp "$P" "$T/content" || fail "cat $P"
expect=()
for k in 1 2 3 4; do expect+=(--expect "L$k=$N_LOOP" --expect "O$k=$N_OPEN"); done
for k in 1 2; do expect+=(--expect "G$k=$N_LONG"); done
"$E2E_DIR/verify_log.py" "${expect[@]}" "$T/content" >&2 || fail "concurrent writers: lost, garbled or reordered records (see above)"
assert_eq "$(fsize "$T/content")" "$(fsize "$P")" "stat size = bytes read"
assert_eq $((4 * N_LOOP + 4 * N_OPEN + 2 * N_LONG)) "$(xget user.offset.next "$P")" "user.offset.next = number of records"
mk_stop
log ok
