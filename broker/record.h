/*
 * record — the side data of a record: what the partition file does not show
 * but the record carries (stored in the segment's .aux, replicated with the
 * record in its Raft entry).
 *
 * FORMAT (all integers little-endian): a list of fields, each
 *   tag u8, length u16, value (length bytes); a length of 0xffff is
 *   followed by the real length as u32 (values of 64 KiB and more).
 * Readers skip tags they do not know.  Tags:
 *   1 PRODUCER  u64 producer id, u64 sequence of this record: a write sent
 *               again is recognised (pgroup.h).
 *   2 KAFKA     a Kafka record's own fields:
 *                 u8  flags: bit 0 key present (else null), bit 1 value
 *                     null (a tombstone: the file shows an empty line)
 *                 i64 the producer's timestamp (CreateTime), ms
 *                 u32 key length K, K bytes (when present)
 *                 i32 header count H, u32 length L, L bytes: the headers
 *                     as Kafka's record format encodes them (varint
 *                     lengths), kept verbatim
 *
 * THE RECORD ITSELF, in the partition file and the .log, is always its
 * value followed by one '\n'.  A value holding '\n' (or any byte) shows as
 * is, so such a record spans several lines of the file; it is "opaque"
 * (never rebuilt from lines: segment.h, indexed segments).
 */
#ifndef MK_RECORD_H
#define MK_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUX_PRODUCER 1
#define AUX_KAFKA    2

#define AUX_PRODUCER_LEN (3 + 16)

/* Producer ids: a node's own (its forwarded writes) have bit 63 clear; a
 * Kafka idempotent producer's are PRODUCER_KAFKA | pid << 16 | epoch, and
 * their sequences are Kafka's + 1 (0 means none). */
#define PRODUCER_KAFKA (1ull << 63)
#define KAFKA_RETRY_MS 300000 /* how long a Kafka producer retries (librdkafka's message.timeout.ms) */

#define RK_KEY        1u
#define RK_VALUE_NULL 2u

/* A Kafka record's fields (pointers into the caller's buffers). */
struct rec_kafka {
    uint8_t flags; /* RK_* */
    int64_t ts;    /* the producer's timestamp */
    const uint8_t *key;
    uint32_t key_len;
    int32_t nheaders;
    const uint8_t *headers;
    uint32_t headers_len;
};

/* Bytes that aux_put_kafka writes (field header included). */
size_t aux_kafka_size(const struct rec_kafka *k);
/* Writes the KAFKA field at buf (aux_kafka_size bytes); returns that size. */
size_t aux_put_kafka(uint8_t *buf, const struct rec_kafka *k);
/* Writes the PRODUCER field (AUX_PRODUCER_LEN bytes). */
void aux_put_producer(uint8_t *buf, uint64_t id, uint64_t seq);

/* Finds the first field with tag in aux: 0 with its value, -ENOENT, or
 * -EBADMSG when the fields do not parse. */
int aux_find(const uint8_t *aux, size_t len, uint8_t tag, const uint8_t **val, size_t *vlen);
int aux_get_producer(const uint8_t *aux, size_t len, uint64_t *id, uint64_t *seq);
/* The KAFKA field, decoded and checked (lengths against the field);
 * -ENOENT when there is none. */
int aux_get_kafka(const uint8_t *aux, size_t len, struct rec_kafka *k);

/* Whether a record's bytes (value + '\n') are one plain line: no '\n'
 * before the last byte. */
bool rec_is_line(const void *bytes, size_t len);

#endif
