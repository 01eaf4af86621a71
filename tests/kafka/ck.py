"""ck — confluent-kafka (librdkafka) as the end-to-end tests drive it.

Run with /usr/bin/python3 (Debian's python3-confluent-kafka).  No consumer
groups: consumers assign() partitions at explicit offsets and never commit.

    ck.py produce BROKER TOPIC PART SPEC [conf=value ...]
        send SPEC's records (recs.py) to TOPIC/PART; print "delivered N FIRST LAST"
        (offsets from the delivery reports, which must be consecutive)
    ck.py count BROKER TOPIC PART N [conf=value ...]
        send values "ck-0".."ck-N-1" (no key); print "delivered N FIRST LAST"
    ck.py consume BROKER TOPIC PART OFFSET COUNT [--ts]
        read COUNT records from OFFSET; print them in recs.py's canonical form;
        fails if fewer arrive within 30 s or more follow
    ck.py watermarks BROKER TOPIC PART      print "LOW HIGH"
    ck.py offset-for-time BROKER TOPIC PART MS   print the offset ListOffsets finds
    ck.py create BROKER TOPIC NPARTS [RF [validate]] | delete BROKER TOPIC
        print "OK" or the error as librdkafka names it, with Kafka's code:
        "TOPIC_ALREADY_EXISTS(36)", "TOPIC_EXCEPTION(17)" (INVALID_TOPIC_EXCEPTION)
"""
import os
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import recs


def die(msg):
    sys.stderr.write("ck.py: %s\n" % msg)
    sys.stderr.flush()
    os._exit(1)


def confs(args):
    out = {}
    for a in args:
        k, v = a.split("=", 1)
        out[k] = {"true": True, "false": False}.get(v, v)
    return out


def send(broker, topic, part, records, extra):
    conf = {"bootstrap.servers": broker, "linger.ms": 5}
    conf.update(extra)
    p = Producer(conf)
    offsets, errors = [], []

    def report(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            offsets.append(msg.offset())

    for key, value, headers, ts in records:
        kw = {"partition": part, "key": key, "value": value, "on_delivery": report}
        if headers:
            kw["headers"] = headers
        if ts is not None:
            kw["timestamp"] = ts
        while True:
            try:
                p.produce(topic, **kw)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    left = p.flush(30)
    if left or errors:
        die("produce: %d not delivered, errors: %s" % (left, errors[:5]))
    if offsets != list(range(offsets[0], offsets[0] + len(records))):
        die("produce: delivery offsets not consecutive: %s..." % offsets[:10])
    print("delivered %d %d %d" % (len(offsets), offsets[0], offsets[-1]))


def consume(broker, topic, part, offset, count, with_ts):
    c = Consumer({"bootstrap.servers": broker, "group.id": "ck-assign-only",
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "fetch.wait.max.ms": 100})
    c.assign([TopicPartition(topic, part, offset)])
    got, eof, deadline = [], False, time.time() + 30
    while (len(got) < count or not eof) and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                eof = True
                continue
            die("consume: %s" % m.error())
        eof = False
        hs = m.headers() or []
        got.append(recs.line(m.offset(), m.key(), m.value(), hs,
                             m.timestamp()[1] if with_ts else None))
    if len(got) != count or not eof:
        die("consume %s/%d from %d: %d records (eof %s), wanted %d"
            % (topic, part, offset, len(got), eof, count))
    sys.stdout.write("".join(s + "\n" for s in got))
    sys.stdout.flush()
    # A header whose value is None crashes confluent-kafka 1.7.0 at exit
    # (a refcount bug in the client): leave without tearing down.
    os._exit(0)


def admin(broker, what, topic, nparts=0, rf=1, validate=False):
    a = AdminClient({"bootstrap.servers": broker})
    if what == "create":
        fs = a.create_topics([NewTopic(topic, nparts, rf)], operation_timeout=10,
                             validate_only=validate)
    else:
        fs = a.delete_topics([topic], operation_timeout=10)
    try:
        fs[topic].result(30)
        print("OK")
    except KafkaException as e:
        print("%s(%d)" % (e.args[0].name(), e.args[0].code()))


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, broker = argv[0], argv[1]
    if cmd == "produce":
        send(broker, argv[2], int(argv[3]), recs.load(argv[4]), confs(argv[5:]))
    elif cmd == "count":
        n = int(argv[4])
        send(broker, argv[2], int(argv[3]),
             [(None, b"ck-%d" % i, [], None) for i in range(n)], confs(argv[5:]))
    elif cmd == "consume":
        consume(broker, argv[2], int(argv[3]), int(argv[4]), int(argv[5]), "--ts" in argv[6:])
    elif cmd == "watermarks":
        c = Consumer({"bootstrap.servers": broker, "group.id": "ck-assign-only"})
        lo, hi = c.get_watermark_offsets(TopicPartition(argv[2], int(argv[3])), timeout=10)
        print(lo, hi)
        c.close()
    elif cmd == "offset-for-time":
        c = Consumer({"bootstrap.servers": broker, "group.id": "ck-assign-only"})
        tp = c.offsets_for_times([TopicPartition(argv[2], int(argv[3]), int(argv[4]))], timeout=10)[0]
        if tp.error:
            die("offsets_for_times: %s" % tp.error)
        print(tp.offset)
        c.close()
    elif cmd == "create":
        admin(broker, cmd, argv[2], int(argv[3]), int(argv[4]) if len(argv) > 4 else 1,
              argv[5:6] == ["validate"])
    elif cmd == "delete":
        admin(broker, cmd, argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
