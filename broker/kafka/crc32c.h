/*
 * crc32c — CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), the
 * checksum of Kafka's RecordBatch v2 (kafka-clients.md section 5).
 *
 * Computed only with the CPU's SSE4.2 crc32 instruction: the project keeps
 * no table-driven substitute.  A caller must check kcrc32c_available() once
 * before the first kcrc32c(); on a CPU without SSE4.2 (or not x86-64) it is
 * false and kcrc32c() must not be called (without SSE4.2 it faults).
 */
#ifndef MK_KAFKA_CRC32C_H
#define MK_KAFKA_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when this CPU has the SSE4.2 crc32 instruction. */
bool kcrc32c_available(void);

/* The CRC-32C of n bytes at p, continuing from crc: pass 0 to start, or the
 * result over the preceding bytes to chain, so that
 * kcrc32c(kcrc32c(0, a, na), b, nb) == the CRC of a followed by b.  The value
 * returned is final (pre- and post-inverted as the standard says), e.g.
 * kcrc32c(0, "123456789", 9) == 0xe3069283.  Any alignment of p. */
uint32_t kcrc32c(uint32_t crc, const void *p, size_t n);

#endif
