#!/usr/bin/python3
"""member.py — one member of a Kafka consumer group, for t_kafka_groups.sh.

  member.py confluent|kafka-python BROKER GROUP TOPIC OUTFILE

Subscribes to TOPIC in GROUP (from the earliest offset when the group has
none committed), writes "PARTITION OFFSET VALUE" per record to OUTFILE (one
line each, flushed), and commits the offset after each record.  On SIGTERM
it commits, leaves the group (close) and exits 0.  Stops by itself after
120 s at the latest.
"""
import os
import signal
import sys
import time

kind, broker, group, topic, outfile = sys.argv[1:6]
stop = [False]
signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
out = open(outfile, "a")
t0 = time.time()


def record(p, o, v):
    out.write("%d %d %s\n" % (p, o, v.decode()))
    out.flush()


if kind == "confluent":
    from confluent_kafka import Consumer, KafkaException
    c = Consumer({"bootstrap.servers": broker, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "session.timeout.ms": 6000,
                  "heartbeat.interval.ms": 500})
    c.subscribe([topic])
    while not stop[0] and time.time() - t0 < 120:
        m = c.poll(0.2)
        if m is None or m.error():
            continue
        record(m.partition(), m.offset(), m.value())
        try:
            c.commit(message=m, asynchronous=False)
        except KafkaException:
            pass  # a rebalance: the next owner may see it again (at least once)
    c.close()
elif kind == "kafka-python":
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata
    c = KafkaConsumer(topic, bootstrap_servers=broker, group_id=group, auto_offset_reset="earliest",
                      enable_auto_commit=False, session_timeout_ms=6000, heartbeat_interval_ms=500,
                      api_version=(2, 3, 0))
    while not stop[0] and time.time() - t0 < 120:
        batch = c.poll(timeout_ms=200)
        for tp, msgs in batch.items():
            for m in msgs:
                record(m.partition, m.offset, m.value)
                try:
                    c.commit({TopicPartition(tp.topic, tp.partition): OffsetAndMetadata(m.offset + 1, "")})
                except Exception:
                    pass
    c.close()
else:
    sys.exit("member.py: kind is confluent or kafka-python")
out.close()
sys.stdout.flush()
os._exit(0)
