/*
 * crc32c — see crc32c.h.  Eight bytes per crc32q instruction, then the tail
 * a byte at a time.  Loads go through memcpy so any alignment is fine (the
 * compiler turns it into one unaligned load).  The functions carry
 * target("sse4.2") so the rest of the program needs no -msse4.2: only this
 * code uses the instruction, and only after kcrc32c_available().
 */
#include "broker/kafka/crc32c.h"

#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>

bool kcrc32c_available(void)
{
    return __builtin_cpu_supports("sse4.2");
}

__attribute__((target("sse4.2"))) uint32_t kcrc32c(uint32_t crc, const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t c = (uint32_t)~crc;
    for (; n >= 8; n -= 8, b += 8) {
        uint64_t v;
        memcpy(&v, b, 8);
        c = _mm_crc32_u64(c, v);
    }
    uint32_t c32 = (uint32_t)c;
    for (; n > 0; n--, b++)
        c32 = _mm_crc32_u8(c32, *b);
    return ~c32;
}

#else /* no crc32 instruction to use: kbatch_* answer -ENOTSUP */

bool kcrc32c_available(void)
{
    return false;
}

uint32_t kcrc32c(uint32_t crc, const void *p, size_t n)
{
    (void)p;
    (void)n;
    return crc;
}

#endif
