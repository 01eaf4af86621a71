#!/bin/bash
# The Kafka protocol on a three-node cluster (127.0.0.1/2/3, each with its
# own Kafka port): clients bootstrapped from one node learn every broker and
# the real leaders, produce to and fetch from the leaders, and the mounts show
# the same bytes.  Then the failures a Kafka user meets: kill -9 of a
# partition's leader during an idempotent produce loses and duplicates no
# record; a consumer group keeps consuming through the kill -9 of its
# coordinator and resumes from its committed offsets.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1

PYK=/usr/bin/python3 # Debian's python, with confluent-kafka and kafka-python
command -v kcat >/dev/null || fail "kcat is missing (make deps installs it)"
$PYK -c 'import confluent_kafka' || fail "python3-confluent-kafka is missing"

PORT=$((19000 + RANDOM % 2000))
KP=$((21000 + RANDOM % 2000))
PEERS="peer=1@127.0.0.1:$PORT,peer=2@127.0.0.2:$PORT,peer=3@127.0.0.3:$PORT"
BOOT=127.0.0.1:$KP,127.0.0.2:$KP,127.0.0.3:$KP
declare -A PID
start_node() {
    mk_start -o "node.id=$1,$PEERS,kafka.listen=127.0.0.$1:$KP" "$T/d$1" "$T/m$1"
    PID[$1]=$MK_PID
}
kill_node() {
    kill -KILL "${PID[$1]}"
    wait_exit "${PID[$1]}" 10 || fail "node $1 survived kill -9"
    fusermount3 -u "$T/m$1" 2>/dev/null
}
leader_of() { xget user.leader "$T/m1/$1"; } # TOPIC/PART
size_ge() { (($(fsize "$1") >= $(fsize "$2"))); } # FILE REF: FILE holds at least REF's bytes
for i in 1 2 3; do start_node "$i"; done

# --- metadata: every broker, the real leaders ---------------------------------
mkdir "$T/m1/orders" || fail "mkdir orders"
setfattr -n user.partitions -v 3 "$T/m1/orders" || fail "setfattr partitions"
have_leaders() {
    local p
    for p in 0 1 2; do [[ $(leader_of orders/$p) =~ ^[123]$ ]] || return 1; done
}
wait_until 15 "leaders for the three partitions" have_leaders
# The preferred leaders take over ~2 s after a start: wait for a stable view.
sleep 3
kcat -b 127.0.0.2:$KP -L -t orders >"$T/meta.txt" 2>&1 || fail "kcat -L: $(cat "$T/meta.txt")"
for i in 1 2 3; do
    grep -q "broker $i at 127.0.0.$i:$KP" "$T/meta.txt" || fail "kcat -L from node 2 does not list broker $i: $(cat "$T/meta.txt")"
done
for p in 0 1 2; do
    l=$(leader_of orders/$p)
    grep -q "partition $p, leader $l," "$T/meta.txt" ||
        fail "Metadata names another leader for orders/$p than the mount ($l): $(cat "$T/meta.txt")"
done
log "metadata from node 2: 3 brokers, leaders as the mounts say"

# --- produce through one bootstrap node, read everywhere ----------------------
for p in 0 1 2; do
    seq 1 300 | sed "s/.*/k$p-&:v$p-&/" | kcat -b 127.0.0.3:$KP -P -t orders -p $p -K: -X acks=all ||
        fail "kcat -P to orders/$p"
done
for p in 0 1 2; do
    seq 1 300 | sed "s/^/v$p-/" >"$T/want$p"
    for i in 1 2 3; do
        wait_until 10 "orders/$p complete on node $i" size_ge "$T/m$i/orders/$p" "$T/want$p"
        assert_file_eq "$T/want$p" "$T/m$i/orders/$p" "orders/$p on node $i"
    done
    kcat -b 127.0.0.1:$KP -C -t orders -p $p -o beginning -e -q -f '%k %s\n' >"$T/got$p" || fail "kcat -C orders/$p"
    seq 1 300 | sed "s/.*/k$p-& v$p-&/" >"$T/wantkv$p"
    assert_file_eq "$T/wantkv$p" "$T/got$p" "keys and values of orders/$p fetched from the leader via node 1"
done
log "900 records produced via node 3: the same bytes on every mount and through Kafka"

# --- kill -9 of the leader during an idempotent produce -----------------------
mkdir "$T/m1/idem" || fail "mkdir idem"
wait_until 15 "a leader for idem/0" bash -c "[[ \$(getfattr --only-values -n user.leader '$T/m1/idem/0' 2>/dev/null) =~ ^[123]\$ ]]"
N=30000
cat >"$T/idem.py" <<'EOF'
import sys, os, time
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": sys.argv[1], "enable.idempotence": True, "linger.ms": 5,
              "message.timeout.ms": 90000, "retry.backoff.ms": 100})
acked, errs = [0], []
def cb(e, m):
    if e: errs.append(str(e))
    else: acked[0] += 1
n, t0 = int(sys.argv[2]), time.time()
for i in range(n):
    while True:
        try:
            p.produce("idem", value=b"i-%06d" % i, partition=0, on_delivery=cb)
            break
        except BufferError:
            p.poll(0.05)
    if i % 300 == 299:
        p.poll(0)
        time.sleep(0.05)  # about 6 s in all: the kill lands in the middle
p.flush(120)
print("acked", acked[0], "errors", len(errs), " ".join(errs[:3]), "in %.1fs" % (time.time() - t0))
sys.stdout.flush()
os._exit(0)
EOF
$PYK "$T/idem.py" "$BOOT" $N >"$T/idem.out" 2>"$T/idem.err" &
PRODUCER=$!
HELPER_PIDS+=($PRODUCER)
sleep 2
leads_idem() { victim=$(leader_of idem/0); [[ $victim =~ ^[123]$ ]]; }
wait_until 10 "a leader of idem/0 to kill" leads_idem
before=$(wc -l <"$T/m1/idem/0")
kill_node "$victim"
log "killed node $victim, leader of idem/0, with $before records in"
((before > 0 && before < N)) || fail "the kill did not land during the produce ($before of $N records in)"
sleep 2
start_node "$victim"
wait "$PRODUCER"
read -r _ acked _ errors _ <"$T/idem.out" || fail "the producer printed nothing: $(cat "$T/idem.err")"
assert_eq "$N 0" "$acked $errors" "acked and failed records of the idempotent producer ($(cat "$T/idem.out"))"
seq -f 'i-%06g' 0 $((N - 1)) >"$T/idem.want"
for i in 1 2 3; do
    wait_until 20 "idem/0 complete on node $i" size_ge "$T/m$i/idem/0" "$T/idem.want"
    dups=$(sort "$T/m$i/idem/0" | uniq -d | wc -l)
    assert_eq 0 "$dups" "duplicated records of idem/0 on node $i"
    assert_file_eq "$T/idem.want" "$T/m$i/idem/0" "idem/0 on node $i (every record once, in order)"
done
log "idempotent produce through the kill of leader $victim: $N records, none lost, none twice"

# --- a consumer group through the kill of its coordinator ---------------------
cat >"$T/group.py" <<'EOF'
import sys, os, time
from confluent_kafka import Consumer, KafkaError, KafkaException
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": "billing", "auto.offset.reset": "earliest",
              "enable.auto.commit": False, "session.timeout.ms": 6000})
c.subscribe(["orders"])
want, seen, t0 = int(sys.argv[2]), set(), time.time()
out = open(sys.argv[3], "a")
def take(m):
    if m is None or m.error():
        return
    seen.add((m.partition(), m.offset()))
    out.write("%d %d %s %.2f\n" % (m.partition(), m.offset(), m.value().decode(), time.time() - t0))
    out.flush()
def commit():
    try:
        c.commit(asynchronous=False)
        return True
    except KafkaException as e:  # the coordinator moved, or a rebalance: poll on
        return e.args[0].code() == KafkaError._NO_OFFSET  # nothing new to commit
while len(seen) < want and time.time() - t0 < 60:
    take(c.poll(0.5))
    if len(seen) % 50 == 0:
        commit()
    if len(seen) == 450:
        time.sleep(3)  # the test kills the coordinator meanwhile
# The last commit, polling (and so rejoining) between tries.
while time.time() - t0 < 60 and not commit():
    take(c.poll(0.3))
c.close()
print("consumed", len(seen), "in %.1fs" % (time.time() - t0))
sys.stdout.flush()
os._exit(0)
EOF
$PYK "$T/group.py" "$BOOT" 900 "$T/group.log" >"$T/group.out" 2>"$T/group.err" &
CONSUMER=$!
HELPER_PIDS+=($CONSUMER)
wait_until 30 "the group consumer halfway" bash -c "[[ \$(wc -l <'$T/group.log' 2>/dev/null) -ge 450 ]]"
leads_offsets() { coord=$(leader_of __consumer_offsets/0); [[ $coord =~ ^[123]$ ]]; }
wait_until 10 "a leader of __consumer_offsets/0 to kill" leads_offsets
kill_node "$coord"
log "killed node $coord, the group's coordinator, halfway"
wait "$CONSUMER"
assert_eq "consumed 900" "$(cut -d' ' -f1,2 <"$T/group.out")" "records the group consumer saw ($(cat "$T/group.out" "$T/group.err" | tail -3))"
start_node "$coord"
cut -d' ' -f3 "$T/group.log" | sort -u >"$T/group.seen"
cat "$T/want0" "$T/want1" "$T/want2" | sort -u >"$T/group.want"
assert_file_eq "$T/group.want" "$T/group.seen" "records consumed by the group (each at least once)"
# A new member of the group starts from the committed offsets: nothing
# old is delivered again, the records produced since are.
for p in 0 1 2; do echo "late$p" | kcat -b "$BOOT" -P -t orders -p $p -X acks=all || fail "kcat -P late$p"; done
$PYK "$T/group.py" "$BOOT" 3 "$T/group2.log" >"$T/group2.out" 2>"$T/group2.err"
cut -d' ' -f3 "$T/group2.log" | sort >"$T/group2.seen"
printf 'late0\nlate1\nlate2\n' >"$T/group2.want"
assert_file_eq "$T/group2.want" "$T/group2.seen" "what a new member of the group gets after the restart of its coordinator"
grep -q "^commit group=billing topic=orders partition=0 offset=" "$T/m1/__consumer_offsets/0" ||
    fail "no commit line of group billing in __consumer_offsets/0"
log "group billing: all 900 through the coordinator's kill; a new member resumes at the committed offsets"

for i in 1 2 3; do
    kill -TERM "${PID[$i]}"
    wait_exit "${PID[$i]}" 15 || fail "node $i did not stop"
    assert_eq 0 "$WAIT_ST" "exit status of node $i"
done
sanitizer_check || exit 1
log "PASS"
