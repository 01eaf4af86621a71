/*
 * kafka — the Kafka wire protocol front end: a TCP port on which existing
 * Kafka clients (kcat, librdkafka, kafka-python, kafkajs) produce to and
 * fetch from the same topics the mount shows.  Like fs/, it is a front end
 * over broker.h only: it never touches segments or Raft directly.
 *
 * Requests on a connection are answered in the order they came
 * (librdkafka pipelines deeply), whatever order their work ends in.
 * Loop thread only.
 */
#ifndef MK_KAFKA_H
#define MK_KAFKA_H

#include "broker/broker.h"

#include <uv.h>

struct kafka;

/* Listens on host:port (a dotted IPv4) and serves b's topics; adv_host and
 * adv_port are what Metadata tells clients to connect to.  -EADDRINUSE ...
 * when the port cannot listen; -ENOTSUP without the CPU's crc32
 * instruction (CRC-32C of record batches). */
int kafka_start(struct kafka **out, struct broker *b, uv_loop_t *loop, const char *host,
                uint16_t port, const char *adv_host, uint16_t adv_port);

/* Closes the port and every connection; their pending work is answered to
 * no one, and a Fetch waiting for records ends at once.  k frees itself once
 * libuv has closed its handles (the loop must run on): it must not be used
 * after this call. */
void kafka_stop(struct kafka *k);

/* One line of status for .cluster (malloc'ed "kafka listen=... ..."). */
char *kafka_status(const struct kafka *k);

/* ---- test hooks (tests/fuzz/fuzz_kafka.c only; the daemon never calls them) */

/* Serves fd, one end of a connected stream socket (a socketpair's), as a
 * connection just accepted on k's port: from there on the same reading,
 * framing, dispatch, answering and closing as a TCP client's.  k owns fd
 * from the call on (closed with the connection, or at once on failure).
 * 0, -ESHUTDOWN after kafka_stop, -ENOMEM, or uv_tcp_open's error. */
int kafka_adopt_for_test(struct kafka *k, int fd);

/* What a harness needs to tell "done" from "still at work". */
struct kafka_test_view {
    size_t conns;   /* open connections (one being closed is not: its handle counts in handles
                       until libuv has freed it) */
    size_t owed;    /* requests of open connections not yet answered, plus one per connection
                       whose answers are not all written out to its socket yet */
    int handles;    /* libuv handles k has open: listener, connections, Fetch timers */
    uint64_t requests, bad_frames, unsupported; /* the status line's counters */
};
void kafka_view_for_test(const struct kafka *k, struct kafka_test_view *v);

#endif
