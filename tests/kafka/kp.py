"""kp — kafka-python as the end-to-end tests drive it.

Run with /usr/bin/python3 (Debian's python3-kafka).  No consumer groups:
the consumer assign()s one partition and seeks to an explicit offset.

    kp.py produce BROKER TOPIC PART SPEC ACKS
        send SPEC's records (recs.py) with acks ACKS (-1, 1 or 0); print
        "sent N" and, with acks 1/-1, the offsets: "sent N FIRST LAST"
    kp.py consume BROKER TOPIC PART OFFSET COUNT [--ts]
        read COUNT records from OFFSET; print them in recs.py's canonical form;
        fails if fewer arrive within 30 s or more follow
    kp.py offsets BROKER TOPIC PART [MS]
        print "EARLIEST LATEST" (ListOffsets -2/-1) and, with MS, the offset
        ListOffsets finds for that time and the timestamp it gives with it
        ("-1 -1" when no record is at or after it)
"""
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

import recs


def die(msg):
    sys.exit("kp.py: %s" % msg)


def produce(broker, topic, part, records, acks):
    p = KafkaProducer(bootstrap_servers=broker, acks=acks, linger_ms=5, retries=0,
                      request_timeout_ms=10000)
    futs = []
    for key, value, headers, ts in records:
        futs.append(p.send(topic, partition=part, key=key, value=value, headers=headers,
                           timestamp_ms=ts))
    p.flush(30)
    offsets = [f.get(timeout=30).offset for f in futs]
    p.close(10)
    if acks == 0:
        print("sent %d" % len(offsets))
        return
    if offsets != list(range(offsets[0], offsets[0] + len(offsets))):
        die("produce: offsets not consecutive: %s..." % offsets[:10])
    print("sent %d %d %d" % (len(offsets), offsets[0], offsets[-1]))


def consumer(broker):
    return KafkaConsumer(bootstrap_servers=broker, group_id=None, enable_auto_commit=False,
                         fetch_max_wait_ms=100, consumer_timeout_ms=1000)


def consume(broker, topic, part, offset, count, with_ts):
    c = consumer(broker)
    tp = TopicPartition(topic, part)
    c.assign([tp])
    c.seek(tp, offset)
    got, deadline = [], time.time() + 30
    end = c.end_offsets([tp])[tp]
    while (len(got) < count or c.position(tp) < end) and time.time() < deadline:
        for m in c.poll(timeout_ms=500).get(tp, []):
            got.append(recs.line(m.offset, m.key, m.value, m.headers,
                                 m.timestamp if with_ts else None))
    c.close()
    if len(got) != count:
        die("consume %s/%d from %d: %d records, wanted %d" % (topic, part, offset, len(got), count))
    sys.stdout.write("".join(s + "\n" for s in got))


def offsets(broker, topic, part, ms):
    c = consumer(broker)
    tp = TopicPartition(topic, part)
    lo, hi = c.beginning_offsets([tp])[tp], c.end_offsets([tp])[tp]
    out = "%d %d" % (lo, hi)
    if ms is not None:
        found = c.offsets_for_times({tp: ms})[tp]
        out += " %d %d" % ((found.offset, found.timestamp) if found else (-1, -1))
    c.close()
    print(out)


def main(argv):
    if len(argv) < 4:
        sys.exit(__doc__)
    cmd, broker, topic, part = argv[0], argv[1], argv[2], int(argv[3])
    if cmd == "produce":
        produce(broker, topic, part, recs.load(argv[4]), int(argv[5]))
    elif cmd == "consume":
        consume(broker, topic, part, int(argv[4]), int(argv[5]), "--ts" in argv[6:])
    elif cmd == "offsets":
        offsets(broker, topic, part, int(argv[4]) if len(argv) > 4 else None)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
