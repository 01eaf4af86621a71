/*
 * compress — decompression of Kafka record-batch payloads (everything after
 * recordsCount when attributes & 7 is not 0; kafka-clients.md section 5).
 *
 * The input comes from the network: it may be corrupt, truncated, or a small
 * blob that expands without end.  So nothing is sized from what the input
 * claims (gzip's ISIZE, a zstd or lz4 frame's content size, a snappy
 * preamble) beyond the caller's max_out: the output buffer grows by doubling
 * up to max_out + 1 bytes, and producing that byte means -EMSGSIZE.
 *
 * Formats accepted, by Kafka codec number:
 *   1 gzip    zlib inflate with automatic gzip/zlib header detection;
 *             concatenated members are decoded one after the other
 *   2 snappy  raw snappy (librdkafka), or the xerial framing of the Java
 *             client and kafka-python: magic 82 'S' 'N' 'A' 'P' 'P' 'Y' 00,
 *             version i32, compatible version i32 (both ignored), then blocks
 *             of big-endian i32 length + one raw snappy block, to the end
 *   3 lz4     LZ4 frames (LZ4F; magic-2 batches carry a correct header
 *             checksum), concatenated frames one after the other
 *   4 zstd    zstd frames, streamed; the window may not exceed
 *             max(8 MiB, max_out rounded up to a power of two), at most
 *             128 MiB (zstd's default cap)
 */
#ifndef MK_KAFKA_COMPRESS_H
#define MK_KAFKA_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

enum kcodec {
    KCODEC_NONE = 0,
    KCODEC_GZIP = 1,
    KCODEC_SNAPPY = 2,
    KCODEC_LZ4 = 3,
    KCODEC_ZSTD = 4
};

/* Decompresses len bytes at in, compressed with codec (enum kcodec, 1..4).
 * On success returns 0, *out is a malloc'ed buffer the caller frees (never
 * NULL, even for an empty result) and *out_len its length (<= max_out).
 * On failure *out is NULL and the result is -EBADMSG (corrupt, truncated
 * or trailing input), -EMSGSIZE (the output would exceed max_out bytes, or
 * the frame needs a larger zstd window than allowed), -ENOTSUP (codec not
 * 1..4), or -ENOMEM. */
int kdecompress(int codec, const uint8_t *in, size_t len, size_t max_out, uint8_t **out,
                size_t *out_len);

#endif
