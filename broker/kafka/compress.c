/*
 * compress — see compress.h for the formats and the limits.
 *
 * Every codec writes into one struct obuf that grows by doubling up to
 * limit = max_out + 1 bytes.  The streaming decoders (zlib, LZ4F, zstd) are
 * driven by the same loop shape: run a step into the free part of the
 * buffer; more than max_out bytes out is -EMSGSIZE; a full buffer grows; a
 * step that left room in the buffer with all input consumed and the frame
 * unfinished means the input was truncated (-EBADMSG).  Snappy is not
 * streamed: its block preamble gives the block's exact size, checked
 * against what is left of max_out before anything is allocated.
 */
#include "broker/kafka/compress.h"

#include <errno.h>
#include <limits.h>
#include <lz4frame.h>
#include <snappy-c.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

/* ---------------------------------------------------------------- output */

struct obuf {
    uint8_t *p;
    size_t len, cap;
    size_t max; /* max_out: len > max is -EMSGSIZE */
};

/* A first buffer of about 4x the input (Kafka batches of text compress by
 * 3-10x), at least 256 bytes, at most max + 1. */
static int ob_init(struct obuf *o, size_t in_len, size_t max)
{
    if (max > SIZE_MAX / 2)
        max = SIZE_MAX / 2;
    size_t cap = in_len > SIZE_MAX / 8 ? SIZE_MAX / 2 : in_len * 4;
    if (cap < 256)
        cap = 256;
    if (cap > max + 1)
        cap = max + 1;
    *o = (struct obuf){.p = malloc(cap), .cap = cap, .max = max};
    return o->p ? 0 : -ENOMEM;
}

/* Makes room after len: doubles cap, up to max + 1. */
static int ob_grow(struct obuf *o)
{
    size_t nc = o->cap > (o->max + 1) / 2 ? o->max + 1 : o->cap * 2;
    if (nc <= o->len)
        return -EMSGSIZE;
    uint8_t *np = realloc(o->p, nc);
    if (!np)
        return -ENOMEM;
    o->p = np;
    o->cap = nc;
    return 0;
}

/* Free bytes after len, as a count a 32-bit-length API can take. */
static size_t ob_room(const struct obuf *o, size_t api_max)
{
    size_t room = o->cap - o->len;
    return room > api_max ? api_max : room;
}

/* What a step left: an error, too much output, a buffer to grow, or
 * (truncated) nothing to do but wait for input that will never come. */
static int ob_after_step(struct obuf *o, bool in_done, bool frame_done)
{
    if (o->len > o->max)
        return -EMSGSIZE;
    if (o->len == o->cap)
        return ob_grow(o);
    if (in_done && !frame_done)
        return -EBADMSG;
    return 0;
}

/* ---------------------------------------------------------------- gzip */

static int zlib_err(int zr)
{
    return zr == Z_MEM_ERROR ? -ENOMEM : -EBADMSG;
}

static int gunzip(const uint8_t *in, size_t len, struct obuf *o)
{
    if (len > UINT_MAX)
        return -EMSGSIZE;
    z_stream zs = {.next_in = (Bytef *)in, .avail_in = (uInt)len};
    int zr = inflateInit2(&zs, 15 + 32); /* 32: detect a gzip or zlib header */
    if (zr != Z_OK)
        return zlib_err(zr);
    int rc = 0;
    for (;;) {
        zs.next_out = o->p + o->len;
        zs.avail_out = (uInt)ob_room(o, UINT_MAX);
        uInt before = zs.avail_out;
        zr = inflate(&zs, Z_NO_FLUSH);
        o->len += before - zs.avail_out;
        if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
            rc = zlib_err(zr); /* Z_DATA_ERROR, Z_NEED_DICT, Z_MEM_ERROR */
            break;
        }
        bool ended = zr == Z_STREAM_END;
        if (ended && zs.avail_in > 0) { /* another gzip member follows */
            zr = inflateReset(&zs);
            if (zr != Z_OK) {
                rc = zlib_err(zr);
                break;
            }
            ended = false;
        }
        if (ended && o->len <= o->max)
            break;
        rc = ob_after_step(o, zs.avail_in == 0, ended);
        if (rc)
            break;
    }
    inflateEnd(&zs);
    return rc;
}

/* ---------------------------------------------------------------- snappy */

static const uint8_t xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
#define XERIAL_HDR 16 /* magic, version i32, compatible version i32 */

/* One raw snappy block appended to o, sized by its preamble first. */
static int unsnappy_block(const uint8_t *in, size_t len, struct obuf *o)
{
    size_t n;
    if (snappy_uncompressed_length((const char *)in, len, &n) != SNAPPY_OK)
        return -EBADMSG;
    if (n > o->max - o->len)
        return -EMSGSIZE;
    if (n > o->cap - o->len) {
        size_t nc = o->len + n;
        uint8_t *np = realloc(o->p, nc ? nc : 1);
        if (!np)
            return -ENOMEM;
        o->p = np;
        o->cap = nc;
    }
    size_t got = n;
    if (snappy_uncompress((const char *)in, len, (char *)o->p + o->len, &got) != SNAPPY_OK ||
        got != n)
        return -EBADMSG;
    o->len += n;
    return 0;
}

static int unsnappy(const uint8_t *in, size_t len, struct obuf *o)
{
    if (len < XERIAL_HDR || memcmp(in, xerial_magic, sizeof(xerial_magic)) != 0)
        return unsnappy_block(in, len, o);
    size_t at = XERIAL_HDR;
    while (at < len) {
        if (len - at < 4)
            return -EBADMSG;
        uint32_t n = (uint32_t)in[at] << 24 | (uint32_t)in[at + 1] << 16 |
                     (uint32_t)in[at + 2] << 8 | in[at + 3];
        at += 4;
        if (n > len - at)
            return -EBADMSG;
        int rc = unsnappy_block(in + at, n, o);
        if (rc)
            return rc;
        at += n;
    }
    return 0;
}

/* ---------------------------------------------------------------- lz4 */

static int unlz4(const uint8_t *in, size_t len, struct obuf *o)
{
    LZ4F_dctx *dc;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&dc, LZ4F_VERSION)))
        return -ENOMEM;
    size_t at = 0;
    int rc = 0;
    for (;;) {
        size_t dst = ob_room(o, SIZE_MAX), src = len - at;
        size_t hint = LZ4F_decompress(dc, o->p + o->len, &dst, in + at, &src, NULL);
        if (LZ4F_isError(hint)) {
            rc = -EBADMSG;
            break;
        }
        at += src;
        o->len += dst;
        /* hint 0: a frame ended; what follows, if anything, is another */
        if (hint == 0 && at == len && o->len <= o->max)
            break;
        rc = ob_after_step(o, at == len, false);
        if (rc)
            break;
        if (src == 0 && dst == 0 && o->len < o->cap) { /* no progress: never loop */
            rc = -EBADMSG;
            break;
        }
    }
    LZ4F_freeDecompressionContext(dc);
    return rc;
}

/* ---------------------------------------------------------------- zstd */

/* max(2^23, max_out rounded up to a power of two), at most 2^27: enough for
 * any level up to 19 and for streams without a pledged size (the Java
 * client's), while a hostile frame header cannot make a single decompression
 * reserve more than 128 MiB of window. */
static int zstd_window_log(size_t max)
{
    int wl = 23;
    while (wl < 27 && ((size_t)1 << wl) < max)
        wl++;
    return wl;
}

static int zstd_err(size_t zr)
{
    switch (ZSTD_getErrorCode(zr)) {
    case ZSTD_error_memory_allocation:
        return -ENOMEM;
    case ZSTD_error_frameParameter_windowTooLarge:
        return -EMSGSIZE;
    default:
        return -EBADMSG;
    }
}

static int unzstd(const uint8_t *in, size_t len, struct obuf *o)
{
    ZSTD_DCtx *dc = ZSTD_createDCtx();
    if (!dc)
        return -ENOMEM;
    int rc = 0;
    size_t zr = ZSTD_DCtx_setParameter(dc, ZSTD_d_windowLogMax, zstd_window_log(o->max));
    if (ZSTD_isError(zr)) {
        rc = zstd_err(zr);
        goto out_free;
    }
    ZSTD_inBuffer ib = {in, len, 0};
    for (;;) {
        ZSTD_outBuffer ob = {o->p, o->cap, o->len};
        zr = ZSTD_decompressStream(dc, &ob, &ib);
        if (ZSTD_isError(zr)) {
            rc = zstd_err(zr);
            break;
        }
        o->len = ob.pos;
        /* zr 0: a frame ended and is flushed; input left is another frame */
        if (zr == 0 && ib.pos == ib.size && o->len <= o->max)
            break;
        rc = ob_after_step(o, ib.pos == ib.size, false);
        if (rc)
            break;
    }
out_free:
    ZSTD_freeDCtx(dc);
    return rc;
}

/* ---------------------------------------------------------------- entry */

int kdecompress(int codec, const uint8_t *in, size_t len, size_t max_out, uint8_t **out,
                size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (codec < KCODEC_GZIP || codec > KCODEC_ZSTD)
        return -ENOTSUP;
    struct obuf o;
    int rc = ob_init(&o, len, max_out);
    if (rc)
        return rc;
    switch (codec) {
    case KCODEC_GZIP:
        rc = gunzip(in, len, &o);
        break;
    case KCODEC_SNAPPY:
        rc = unsnappy(in, len, &o);
        break;
    case KCODEC_LZ4:
        rc = unlz4(in, len, &o);
        break;
    default:
        rc = unzstd(in, len, &o);
        break;
    }
    if (rc) {
        free(o.p);
        return rc;
    }
    *out = o.p;
    *out_len = o.len;
    return 0;
}
