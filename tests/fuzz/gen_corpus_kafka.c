/*
 * gen_corpus_kafka — writes the seed corpus of fuzz_kafka, DIR/seed-*: a
 * valid request of every API and every version the port advertises
 * (broker/kafka/api.c's apis[]), built with the codec's own writer
 * (codec.h kw_*, kbatch_build_*) and, for Produce, RecordBatches
 * uncompressed and compressed with gzip, snappy (raw and xerial-framed),
 * lz4 and zstd through the libraries themselves; pipelined sequences (a
 * producer's, a consumer's, a group member's); the same requests cut in
 * pieces and with the peer leaving early; and near misses (sizes out of
 * range, headers that do not parse, versions never advertised, batches
 * with a bad CRC, a wrong count, a v1 message set, corrupt compressed
 * payloads, a Fetch waiting for data, 520 of them to reach back pressure).
 * Each file is one fuzz_kafka input: a mode byte, a fixes byte (FIX_CRC:
 * the harness rewrites the batches' CRCs, so that mutations inside them get
 * past the checksum; not for the bad-CRC seed), then the stream (the
 * format is at the top of fuzz_kafka.c).
 * Given CRASHDIR, also the reproducers of the known findings (README.md).
 * Usage: gen_corpus_kafka DIR [CRASHDIR] (make fuzz-corpus).  Deterministic: the same
 * bytes on every run (for the same versions of the compression libraries).
 * Files whose name does not start with "seed-" are left alone.
 */
#include "broker/kafka/codec.h"
#include "broker/kafka/crc32c.h"

#include <errno.h>
#include <lz4frame.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>
#include <zstd.h>

/* fuzz_kafka's mode byte */
#define CUT(n)      (n) /* pieces: index into fuzz_kafka's CUT[] (1: 1 byte ... 14) */
#define CUT_LIST    15
#define SMALL       0x10 /* small socket buffers */
#define END_AT_ONCE 0x20
#define END_UNREAD  0x40
#define END_HALF    0x60
#define NUDGE       0x80
#define FIX_CRC     0x01 /* fuzz_kafka's second byte: it rewrites the batches' CRCs */

enum {
    PRODUCE = 0,
    FETCH = 1,
    LIST_OFFSETS = 2,
    METADATA = 3,
    OFFSET_COMMIT = 8,
    OFFSET_FETCH = 9,
    FIND_COORDINATOR = 10,
    JOIN_GROUP = 11,
    HEARTBEAT = 12,
    LEAVE_GROUP = 13,
    SYNC_GROUP = 14,
    API_VERSIONS = 18,
    CREATE_TOPICS = 19,
    DELETE_TOPICS = 20,
    INIT_PRODUCER_ID = 22,
};

#define TS 1764547200000ll /* 2025-12-01, the records' timestamps */

static const char *dir;
static struct kw s; /* the stream of the seed being built */
static int files;
static size_t bytes;
static int32_t corr;
static uint8_t fix = FIX_CRC; /* the next seed's second byte (then back to FIX_CRC) */

static void die(const char *what)
{
    fprintf(stderr, "gen_corpus_kafka: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void need(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "gen_corpus_kafka: %s failed\n", what);
        exit(1);
    }
}

/* Writes DIR/seed-NAME: the mode byte (and, for CUT_LIST, the cut list),
 * then the stream; starts the next one. */
static void seed_cuts(const char *name, uint8_t mode, const uint16_t *cuts, size_t ncuts)
{
    need(s.err == 0, name);
    char path[4096];
    snprintf(path, sizeof(path), "%s/seed-%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        die(path);
    fputc(mode, f);
    fputc(fix, f);
    if ((mode & 0x0f) == CUT_LIST) {
        fputc((int)ncuts, f);
        for (size_t i = 0; i < ncuts; i++) {
            fputc(cuts[i] & 0xff, f);
            fputc(cuts[i] >> 8, f);
        }
    }
    if (s.len && fwrite(s.p, 1, s.len, f) != s.len)
        die(path);
    if (fclose(f) != 0)
        die(path);
    files++;
    bytes += 2 + s.len;
    kw_free(&s);
    corr = 0;
    fix = FIX_CRC;
}

static void seed(const char *name, uint8_t mode)
{
    seed_cuts(name, mode, NULL, 0);
}

/* Writes CRASHDIR/NAME, a reproducer (mode 0, no fixes, then the stream). */
static void reproducer(const char *crashdir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", crashdir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        die(path);
    fputc(0, f);
    fputc(0, f);
    if (fwrite(s.p, 1, s.len, f) != s.len || fclose(f) != 0)
        die(path);
    kw_free(&s);
    corr = 0;
}

/* ------------------------------------------------------------ frames */

static size_t frame_at;

/* Opens a request frame: size (filled by end), header v1 (v2 for
 * ApiVersions v3: its tags). */
static void req(int16_t api, int16_t v)
{
    frame_at = kw_reserve(&s, 4);
    kw_i16(&s, api);
    kw_i16(&s, v);
    kw_i32(&s, ++corr);
    kw_string(&s, "fuzz", 4);
    if (api == API_VERSIONS && v == 3)
        kw_empty_tags(&s);
}

static void end(void)
{
    kw_put_i32_at(&s, frame_at, (int32_t)(s.len - frame_at - 4));
}

static void str(const char *v)
{
    kw_string(&s, v, v ? (int32_t)strlen(v) : -1);
}

/* ------------------------------------------------------------ batches */

/* An encoded header section of one record header. */
static size_t headers(uint8_t *out, size_t cap)
{
    struct kw w;
    kw_init(&w);
    kw_record_header(&w, "trace", 5, "t-17", 4);
    kw_record_header(&w, "empty", 5, NULL, -1);
    need(w.err == 0 && w.len <= cap, "headers");
    memcpy(out, w.p, w.len);
    size_t n = w.len;
    kw_free(&w);
    return n;
}

static size_t compress_gzip(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    z_stream z = {0};
    need(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK, "deflateInit2");
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    need(deflate(&z, Z_FINISH) == Z_STREAM_END, "deflate");
    size_t len = z.total_out;
    deflateEnd(&z);
    return len;
}

/* Two gzip members, one after the other (the decoder reads both). */
static size_t compress_gzip2(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    size_t a = compress_gzip(in, n / 2, out, cap);
    return a + compress_gzip(in + n / 2, n - n / 2, out + a, cap - a);
}

static size_t compress_snappy(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    size_t len = cap;
    need(snappy_compress((const char *)in, n, (char *)out, &len) == SNAPPY_OK, "snappy_compress");
    return len;
}

/* The xerial framing of the Java client: magic, version 1, compatible 1,
 * then blocks of [i32 length][raw snappy], here two. */
static size_t compress_xerial(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    static const uint8_t magic[16] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0,
                                      0,    0,   0,   1,   0,   0,   0,   1};
    memcpy(out, magic, sizeof(magic));
    size_t at = sizeof(magic), half = n / 2;
    for (int i = 0; i < 2; i++) {
        const uint8_t *p = i ? in + half : in;
        size_t len = i ? n - half : half;
        size_t clen = compress_snappy(p, len, out + at + 4, cap - at - 4);
        out[at] = (uint8_t)(clen >> 24);
        out[at + 1] = (uint8_t)(clen >> 16);
        out[at + 2] = (uint8_t)(clen >> 8);
        out[at + 3] = (uint8_t)clen;
        at += 4 + clen;
    }
    return at;
}

static size_t compress_lz4(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    size_t len = LZ4F_compressFrame(out, cap, in, n, NULL);
    need(!LZ4F_isError(len), "LZ4F_compressFrame");
    return len;
}

static size_t compress_zstd(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    size_t len = ZSTD_compress(out, cap, in, n, 3);
    need(!ZSTD_isError(len), "ZSTD_compress");
    return len;
}

enum { C_NONE, C_GZIP, C_SNAPPY, C_LZ4, C_ZSTD, C_XERIAL, C_GZIP2 };

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Makes the batch of len bytes at b whole again after a change: its
 * batchLength and its CRC. */
static void batch_reseal(uint8_t *b, size_t len)
{
    put32(b + 8, (uint32_t)(len - 12));
    put32(b + KBATCH_CRC_AT, kcrc32c(0, b + KBATCH_CRC_FROM, len - KBATCH_CRC_FROM));
}

struct batch_opt {
    int codec;   /* C_* */
    int n;       /* records */
    int big;     /* bytes of each value, 0: a short text */
    bool keyed;  /* keys and headers */
    int64_t pid; /* producer id, -1: none */
    int16_t epoch;
    int32_t seq;
    int64_t base; /* base offset as sent (brokers ignore it) */
};

/* Writes a RecordBatch v2 per o into out (just the batch). */
static void batch_build(struct kw *out, struct batch_opt o)
{
    struct kw w;
    kw_init(&w);
    struct kbatch_builder bb;
    kbatch_build_begin(&bb, &w, o.base, TS);
    bb.producer_id = o.pid;
    bb.producer_epoch = o.pid >= 0 ? o.epoch : -1;
    bb.base_seq = o.pid >= 0 ? o.seq : -1;
    uint8_t hs[64];
    size_t hl = headers(hs, sizeof(hs));
    char *bigval = o.big ? malloc((size_t)o.big) : NULL;
    if (bigval)
        memset(bigval, 'a', (size_t)o.big);
    for (int i = 0; i < o.n; i++) {
        char key[16], val[64];
        int kl = snprintf(key, sizeof(key), "k%d", i);
        int vl = snprintf(val, sizeof(val), "record %d of the batch, some text to compress", i);
        if (i == 2) /* a null value among them */
            vl = -1;
        const char *v = vl < 0 ? NULL : val;
        if (bigval) {
            v = bigval;
            vl = o.big;
        }
        kbatch_build_add(&bb, o.base + i, TS + i, o.keyed ? key : NULL, o.keyed ? kl : -1, v, vl,
                         o.keyed ? 2 : 0, o.keyed ? hs : NULL, o.keyed ? hl : 0);
    }
    free(bigval);
    need(kbatch_build_end(&bb) == 0, "kbatch_build_end");
    if (o.codec == C_NONE) {
        kw_raw(out, w.p, w.len);
        kw_free(&w);
        return;
    }
    /* Compressed: the records after the header, then a new length,
     * attributes and CRC. */
    size_t rn = w.len - KBATCH_HDR, cap = rn * 2 + 1024;
    uint8_t *b = malloc(KBATCH_HDR + cap);
    need(b != NULL, "malloc");
    memcpy(b, w.p, KBATCH_HDR);
    const uint8_t *recs = w.p + KBATCH_HDR;
    uint8_t *dst = b + KBATCH_HDR;
    size_t cn = o.codec == C_GZIP     ? compress_gzip(recs, rn, dst, cap)
                : o.codec == C_GZIP2  ? compress_gzip2(recs, rn, dst, cap)
                : o.codec == C_SNAPPY ? compress_snappy(recs, rn, dst, cap)
                : o.codec == C_XERIAL ? compress_xerial(recs, rn, dst, cap)
                : o.codec == C_LZ4    ? compress_lz4(recs, rn, dst, cap)
                                      : compress_zstd(recs, rn, dst, cap);
    int codec = o.codec == C_XERIAL ? C_SNAPPY : o.codec == C_GZIP2 ? C_GZIP : o.codec;
    b[22] = (uint8_t)((b[22] & ~KBATCH_ATTR_CODEC) | codec);
    batch_reseal(b, KBATCH_HDR + cn);
    kw_raw(out, b, KBATCH_HDR + cn);
    free(b);
    kw_free(&w);
}

/* The batch as the BYTES field of the request being built. */
static void batch(struct batch_opt o)
{
    struct kw w;
    kw_init(&w);
    batch_build(&w, o);
    need(w.err == 0, "batch");
    kw_bytes(&s, w.p, (int32_t)w.len);
    kw_free(&w);
}

/* ------------------------------------------------------------ requests */

static void api_versions(int16_t v)
{
    req(API_VERSIONS, v);
    if (v == 3) {
        kw_compact_string(&s, "fuzz-client", 11);
        kw_compact_string(&s, "1.0", 3);
        kw_empty_tags(&s);
    }
    end();
}

/* Metadata of topics (NULL: null array = all, v1+; n 0: none or, in v0,
 * all). */
static void metadata(int16_t v, const char *const *topics, int n, bool auto_create)
{
    req(METADATA, v);
    kw_array(&s, topics ? n : -1);
    for (int i = 0; topics && i < n; i++)
        str(topics[i]);
    if (v >= 4)
        kw_i8(&s, auto_create);
    end();
}

struct part_batch {
    const char *topic;
    int32_t part;
    struct batch_opt b;
};

static void produce(int16_t v, int16_t acks, const struct part_batch *pb, int n)
{
    req(PRODUCE, v);
    if (v >= 3)
        str(NULL); /* transactional id */
    kw_i16(&s, acks);
    kw_i32(&s, 5000);
    /* one topic entry per distinct consecutive topic */
    int ntopics = 0;
    for (int i = 0; i < n; i++)
        ntopics += i == 0 || strcmp(pb[i].topic, pb[i - 1].topic) != 0;
    kw_array(&s, ntopics);
    for (int i = 0; i < n;) {
        int j = i;
        while (j < n && !strcmp(pb[j].topic, pb[i].topic))
            j++;
        str(pb[i].topic);
        kw_array(&s, j - i);
        for (int k = i; k < j; k++) {
            kw_i32(&s, pb[k].part);
            batch(pb[k].b);
        }
        i = j;
    }
    end();
}

/* Produce v0-2 carry message sets v0/v1: answered UNSUPPORTED_VERSION. */
static void produce_old(int16_t v)
{
    req(PRODUCE, v);
    kw_i16(&s, 1);
    kw_i32(&s, 5000);
    kw_array(&s, 1);
    str("t1");
    kw_array(&s, 1);
    kw_i32(&s, 0);
    /* a v1 message: offset, size, crc, magic 1, attributes, ts, key, value */
    struct kw m;
    kw_init(&m);
    kw_i64(&m, 0);
    kw_i32(&m, 4 + 1 + 1 + 8 + 4 + 4 + 5);
    kw_i32(&m, 0x12345678);
    kw_i8(&m, 1);
    kw_i8(&m, 0);
    kw_i64(&m, TS);
    kw_bytes(&m, NULL, -1);
    kw_bytes(&m, "hello", 5);
    kw_bytes(&s, m.p, (int32_t)m.len);
    kw_free(&m);
    end();
}

/* Produce v3+ of one batch given as bytes (a spoiled one). */
static void produce_raw(int16_t v, const char *topic, int32_t part, const uint8_t *b, size_t len)
{
    req(PRODUCE, v);
    str(NULL);
    kw_i16(&s, 1);
    kw_i32(&s, 5000);
    kw_array(&s, 1);
    str(topic);
    kw_array(&s, 1);
    kw_i32(&s, part);
    kw_bytes(&s, b, (int32_t)len);
    end();
}

struct fetch_part {
    const char *topic;
    int32_t part;
    int64_t offset;
};

static void fetch(int16_t v, int32_t max_wait, int32_t min_bytes, int32_t max_bytes,
                  const struct fetch_part *fp, int n)
{
    req(FETCH, v);
    kw_i32(&s, -1); /* replica id */
    kw_i32(&s, max_wait);
    kw_i32(&s, min_bytes);
    kw_i32(&s, max_bytes);
    kw_i8(&s, 0); /* isolation: read uncommitted */
    if (v >= 7) {
        kw_i32(&s, 0);  /* session id */
        kw_i32(&s, -1); /* session epoch */
    }
    int ntopics = 0;
    for (int i = 0; i < n; i++)
        ntopics += i == 0 || strcmp(fp[i].topic, fp[i - 1].topic) != 0;
    kw_array(&s, ntopics);
    for (int i = 0; i < n;) {
        int j = i;
        while (j < n && !strcmp(fp[j].topic, fp[i].topic))
            j++;
        str(fp[i].topic);
        kw_array(&s, j - i);
        for (int k = i; k < j; k++) {
            kw_i32(&s, fp[k].part);
            if (v >= 9)
                kw_i32(&s, -1); /* current leader epoch */
            kw_i64(&s, fp[k].offset);
            if (v >= 5)
                kw_i64(&s, -1); /* log start offset */
            kw_i32(&s, 1 << 20);
        }
        i = j;
    }
    if (v >= 7) {
        kw_array(&s, 1); /* forgotten topics */
        str("t2");
        kw_array(&s, 1);
        kw_i32(&s, 1);
    }
    if (v >= 11)
        str("rack-a");
    end();
}

static void list_offsets(int16_t v, const char *topic, int32_t part, const int64_t *ts, int n)
{
    req(LIST_OFFSETS, v);
    kw_i32(&s, -1);
    if (v >= 2)
        kw_i8(&s, 0);
    kw_array(&s, 1);
    str(topic);
    kw_array(&s, n);
    for (int i = 0; i < n; i++) {
        kw_i32(&s, part);
        kw_i64(&s, ts[i]);
        if (v == 0)
            kw_i32(&s, 1);
    }
    end();
}

struct new_topic {
    const char *name;
    int32_t parts;
    int16_t rf;
    bool assign;
    bool config;
};

static void create_topics(int16_t v, const struct new_topic *t, int n, bool validate)
{
    req(CREATE_TOPICS, v);
    kw_array(&s, n);
    for (int i = 0; i < n; i++) {
        str(t[i].name);
        kw_i32(&s, t[i].parts);
        kw_i16(&s, t[i].rf);
        kw_array(&s, t[i].assign ? 1 : 0);
        if (t[i].assign) {
            kw_i32(&s, 0);
            kw_array(&s, 1);
            kw_i32(&s, 1);
        }
        kw_array(&s, t[i].config ? 2 : 0);
        if (t[i].config) {
            str("retention.ms");
            str("60000");
            str("cleanup.policy");
            str(NULL);
        }
    }
    kw_i32(&s, 5000);
    if (v >= 1)
        kw_i8(&s, validate);
    end();
}

static void delete_topics(int16_t v, const char *const *names, int n)
{
    req(DELETE_TOPICS, v);
    kw_array(&s, n);
    for (int i = 0; i < n; i++)
        str(names[i]);
    kw_i32(&s, 5000);
    end();
}

static void init_producer_id(int16_t v, const char *tid)
{
    req(INIT_PRODUCER_ID, v);
    str(tid);
    kw_i32(&s, 60000);
    end();
}

static void find_coordinator(int16_t v, const char *key, int8_t type)
{
    req(FIND_COORDINATOR, v);
    str(key);
    if (v >= 1)
        kw_i8(&s, type);
    end();
}

/* The consumer protocol's subscription: version, topics, user data. */
static void subscription(void)
{
    struct kw m;
    kw_init(&m);
    kw_i16(&m, 0);
    kw_array(&m, 2);
    kw_string(&m, "t1", 2);
    kw_string(&m, "t2", 2);
    kw_bytes(&m, NULL, -1);
    kw_bytes(&s, m.p, (int32_t)m.len);
    kw_free(&m);
}

static void join_group(int16_t v, const char *group, const char *member, int32_t session)
{
    req(JOIN_GROUP, v);
    str(group);
    kw_i32(&s, session);
    if (v >= 1)
        kw_i32(&s, session);
    str(member);
    if (v >= 5)
        str(NULL); /* group instance id */
    str("consumer");
    kw_array(&s, 2);
    str("range");
    subscription();
    str("roundrobin");
    subscription();
    end();
}

static void sync_group(int16_t v, const char *group, int32_t gen, const char *member, bool assign)
{
    req(SYNC_GROUP, v);
    str(group);
    kw_i32(&s, gen);
    str(member);
    if (v >= 3)
        str(NULL);
    kw_array(&s, assign ? 1 : 0);
    if (assign) {
        str(member);
        /* version, [topic [partitions]], user data */
        struct kw m;
        kw_init(&m);
        kw_i16(&m, 0);
        kw_array(&m, 1);
        kw_string(&m, "t2", 2);
        kw_array(&m, 3);
        for (int i = 0; i < 3; i++)
            kw_i32(&m, i);
        kw_bytes(&m, NULL, -1);
        kw_bytes(&s, m.p, (int32_t)m.len);
        kw_free(&m);
    }
    end();
}

static void heartbeat(int16_t v, const char *group, int32_t gen, const char *member)
{
    req(HEARTBEAT, v);
    str(group);
    kw_i32(&s, gen);
    str(member);
    if (v >= 3)
        str(NULL);
    end();
}

static void leave_group(int16_t v, const char *group, const char *member)
{
    req(LEAVE_GROUP, v);
    str(group);
    str(member);
    end();
}

static void offset_commit(int16_t v, const char *group, int32_t gen, const char *member,
                          const char *topic, int nparts, const char *meta)
{
    req(OFFSET_COMMIT, v);
    str(group);
    if (v >= 1) {
        kw_i32(&s, gen);
        str(member);
    }
    if (v >= 7)
        str(NULL);
    if (v >= 2 && v <= 4)
        kw_i64(&s, -1); /* retention */
    kw_array(&s, 1);
    str(topic);
    kw_array(&s, nparts);
    for (int i = 0; i < nparts; i++) {
        kw_i32(&s, i);
        kw_i64(&s, 2 + i);
        if (v >= 6)
            kw_i32(&s, -1); /* leader epoch */
        if (v == 1)
            kw_i64(&s, TS); /* commit timestamp */
        str(meta);
    }
    end();
}

static void offset_fetch(int16_t v, const char *group, const char *topic, int nparts)
{
    req(OFFSET_FETCH, v);
    str(group);
    if (!topic) {
        kw_array(&s, -1); /* every committed offset (v2+) */
    } else {
        kw_array(&s, 1);
        str(topic);
        kw_array(&s, nparts);
        for (int i = 0; i < nparts; i++)
            kw_i32(&s, i);
    }
    end();
}

/* ------------------------------------------------------------ seeds */

static const struct batch_opt plain = {.codec = C_NONE, .n = 3, .pid = -1};

static void every_version(void)
{
    char name[64];
    for (int16_t v = 0; v <= 4; v++) { /* 4: never advertised, answered error 35 */
        api_versions(v);
        snprintf(name, sizeof(name), "api-versions-v%d", v);
        seed(name, 0);
    }
    static const char *const both[] = {"t1", "t2"};
    static const char *const with_new[] = {"t1", "auto-made", "bad name!"};
    for (int16_t v = 0; v <= 6; v++) {
        metadata(v, both, 2, false);
        snprintf(name, sizeof(name), "metadata-v%d", v);
        seed(name, 0);
        if (v >= 1) {
            metadata(v, NULL, 0, false);
            snprintf(name, sizeof(name), "metadata-all-v%d", v);
            seed(name, 0);
        }
        if (v >= 4) {
            metadata(v, with_new, 3, true);
            snprintf(name, sizeof(name), "metadata-auto-create-v%d", v);
            seed(name, 0);
        }
    }
    metadata(0, NULL, 0, false); /* v0: an empty array is every topic */
    seed("metadata-v0-empty", 0);

    for (int16_t v = 0; v <= 2; v++) {
        produce_old(v);
        snprintf(name, sizeof(name), "produce-v%d-message-set", v);
        seed(name, 0);
    }
    static const char *const codec_names[] = {"none", "gzip", "snappy", "lz4", "zstd", "xerial"};
    for (int16_t v = 3; v <= 7; v++) {
        for (int c = C_NONE; c <= C_XERIAL; c++) {
            if (c == C_ZSTD && v < 7)
                continue; /* below: the zstd-in-v3 near miss */
            struct part_batch pb[] = {
                {"t1", 0, {.codec = c, .n = 4, .keyed = true, .pid = -1}},
                {"t2", 1, {.codec = c, .n = 2, .keyed = false, .pid = -1}},
            };
            produce(v, 1, pb, 2);
            snprintf(name, sizeof(name), "produce-v%d-%s", v, codec_names[c]);
            seed(name, 0);
        }
    }
    for (int16_t v = 4; v <= 11; v++) {
        struct fetch_part fp[] = {{"t1", 0, 0}, {"t2", 0, 0}, {"t2", 2, 0}, {"none", 0, 0}};
        fetch(v, 100, 1, 1 << 20, fp, 4);
        snprintf(name, sizeof(name), "fetch-v%d", v);
        seed(name, 0);
    }
    static const int64_t times[] = {-1, -2, 0, TS};
    for (int16_t v = 0; v <= 3; v++) {
        list_offsets(v, "t1", 0, times, v == 0 ? 2 : 4);
        snprintf(name, sizeof(name), "list-offsets-v%d", v);
        seed(name, 0);
    }
    for (int16_t v = 0; v <= 4; v++) {
        struct new_topic t[] = {{"new1", 2, 1, false, true},  {"new2", -1, -1, false, false},
                                {"t1", 1, 1, false, false},   {"bad/name", 1, 1, false, false},
                                {"new3", 0, 1, false, false}, {"new4", 1, 3, false, false},
                                {"new5", 1, 1, true, false}};
        create_topics(v, t, 7, false);
        snprintf(name, sizeof(name), "create-topics-v%d", v);
        seed(name, 0);
    }
    struct new_topic vt = {"new1", 3, 1, false, false};
    create_topics(1, &vt, 1, true);
    seed("create-topics-v1-validate-only", 0);
    for (int16_t v = 0; v <= 3; v++) {
        static const char *const names[] = {"t2", "none", ""};
        delete_topics(v, names, 3);
        snprintf(name, sizeof(name), "delete-topics-v%d", v);
        seed(name, 0);
    }
    for (int16_t v = 0; v <= 1; v++) {
        init_producer_id(v, NULL);
        init_producer_id(v, "txn-1");
        snprintf(name, sizeof(name), "init-producer-id-v%d", v);
        seed(name, 0);
    }
    for (int16_t v = 0; v <= 2; v++) {
        find_coordinator(v, "g1", 0);
        if (v >= 1)
            find_coordinator(v, "txn-1", 1);
        snprintf(name, sizeof(name), "find-coordinator-v%d", v);
        seed(name, 0);
    }
    /* The group APIs after a FindCoordinator, as clients do: it makes the
     * offsets topic, without which they answer COORDINATOR_NOT_AVAILABLE
     * (the seeds without it keep that path). */
    for (int16_t v = 0; v <= 5; v++) {
        find_coordinator(0, "g1", 0);
        join_group(v, "g1", "", 10000);
        snprintf(name, sizeof(name), "join-group-v%d", v);
        seed(name, 0);
    }
    join_group(3, "g1", "", 10000);
    seed("join-group-no-coordinator", 0);
    find_coordinator(0, "g1", 0);
    join_group(1, "g1", "", 10); /* session timeout out of range: answered at once */
    seed("join-group-bad-session", 0);
    find_coordinator(0, "g1", 0);
    join_group(2, "g1", "member-unknown", 10000);
    seed("join-group-unknown-member", 0);
    /* Joins answered once the initial delay is over (the nudge bit waits). */
    find_coordinator(2, "g1", 0);
    join_group(1, "g1", "", 10000);
    join_group(3, "g1", "", 10000);
    seed("join-group-completes", NUDGE);
    find_coordinator(2, "g1", 0);
    join_group(5, "g1", "", 10000);
    seed("join-group-v5-completes", NUDGE);
    for (int16_t v = 0; v <= 3; v++) {
        find_coordinator(0, "g1", 0);
        sync_group(v, "g1", 1, "member-1", true);
        snprintf(name, sizeof(name), "sync-group-v%d", v);
        seed(name, 0);
        find_coordinator(0, "g1", 0);
        heartbeat(v, "g1", 1, "member-1");
        snprintf(name, sizeof(name), "heartbeat-v%d", v);
        seed(name, 0);
    }
    for (int16_t v = 0; v <= 1; v++) {
        find_coordinator(0, "g1", 0);
        leave_group(v, "g1", "member-1");
        snprintf(name, sizeof(name), "leave-group-v%d", v);
        seed(name, 0);
    }
    for (int16_t v = 0; v <= 7; v++) {
        /* generation -1 and no member: a commit outside the membership */
        find_coordinator(0, "g1", 0);
        offset_commit(v, "g1", -1, "", "t2", 3, "meta");
        offset_fetch(v < 6 ? v : 5, "g1", "t2", 3);
        snprintf(name, sizeof(name), "offset-commit-v%d", v);
        seed(name, 0);
    }
    for (int16_t v = 0; v <= 5; v++) {
        find_coordinator(0, "g1", 0);
        offset_commit(2, "g1", -1, "", "t2", 2, "m");
        offset_fetch(v, "g1", "t2", 2);
        if (v >= 2)
            offset_fetch(v, "g1", NULL, 0);
        snprintf(name, sizeof(name), "offset-fetch-v%d", v);
        seed(name, 0);
    }
}

/* Several requests on one connection, as clients pipeline them. */
static void sequences(void)
{
    /* librdkafka's producer: versions, metadata, an id, idempotent batches. */
    static const char *const t1[] = {"t1"};
    api_versions(3);
    metadata(4, t1, 1, true);
    init_producer_id(1, NULL);
    struct part_batch p0[] = {
        {"t1", 0, {.codec = C_LZ4, .n = 3, .keyed = true, .pid = 7, .seq = 0}}};
    produce(7, -1, p0, 1);
    struct part_batch p1[] = {
        {"t1", 0, {.codec = C_LZ4, .n = 2, .keyed = true, .pid = 7, .seq = 3}}};
    produce(7, -1, p1, 1);
    produce(7, -1, p1, 1); /* again: a duplicate, answered with its offset */
    struct part_batch p2[] = {{"t1", 0, {.codec = C_NONE, .n = 1, .pid = 7, .seq = 9}}};
    produce(7, -1, p2, 1); /* a gap: out of order */
    seed("seq-idempotent-producer", 0);

    /* A consumer: coordinator, offsets, list offsets, fetch, commit. */
    api_versions(2);
    metadata(1, NULL, 0, false);
    find_coordinator(2, "g2", 0);
    offset_fetch(5, "g2", "t1", 1);
    static const int64_t latest[] = {-2, -1};
    list_offsets(3, "t1", 0, latest, 2);
    struct fetch_part f0[] = {{"t1", 0, 0}};
    fetch(11, 500, 1, 1 << 20, f0, 1);
    offset_commit(7, "g2", -1, "", "t1", 1, NULL);
    seed("seq-consumer", 0);

    /* Produce acks 0 (no answer), then acks 1, then fetch it all back. */
    struct part_batch pz[] = {{"t2", 0, {.codec = C_GZIP, .n = 5, .keyed = true, .pid = -1}}};
    produce(5, 0, pz, 1);
    produce(5, 1, pz, 1);
    struct fetch_part f1[] = {{"t2", 0, 0}, {"t2", 1, 0}};
    fetch(8, 100, 1, 1 << 20, f1, 2);
    seed("seq-acks0-then-fetch", 0);

    /* Topics made, used and deleted on one connection. */
    struct new_topic nt[] = {{"made", 2, 1, false, false}};
    create_topics(4, nt, 1, false);
    struct part_batch pm[] = {{"made", 1, {.codec = C_ZSTD, .n = 3, .keyed = true, .pid = -1}}};
    produce(7, 1, pm, 1);
    struct fetch_part fm[] = {{"made", 1, 0}};
    fetch(10, 100, 1, 1 << 20, fm, 1);
    static const char *const made[] = {"made"};
    delete_topics(3, made, 1);
    fetch(10, 100, 1, 1 << 20, fm, 1);
    seed("seq-create-produce-fetch-delete", 0);

    /* A group member's calls in one go: join (held for the initial
     * delay), sync, heartbeat, leave, all before the join's answer. */
    find_coordinator(1, "g3", 0);
    join_group(5, "g3", "", 6000);
    sync_group(3, "g3", 0, "", false);
    heartbeat(3, "g3", 0, "");
    leave_group(1, "g3", "");
    seed("seq-group-member", 0);

    /* Commits to the offsets topic through Produce: groups folds them. */
    struct part_batch po[] = {
        {"__consumer_offsets", 0, {.codec = C_NONE, .n = 3, .keyed = true, .pid = -1}}};
    find_coordinator(0, "g4", 0);
    offset_commit(2, "g4", -1, "", "t1", 1, "x");
    produce(3, 1, po, 1);
    offset_fetch(3, "g4", NULL, 0);
    seed("seq-produce-to-offsets-topic", 0);
}

/* The same requests cut in pieces, the peer leaving early. */
static void cuts_and_ends(void)
{
    struct part_batch pb[] = {{"t1", 0, {.codec = C_GZIP, .n = 4, .keyed = true, .pid = -1}}};
    struct fetch_part f0[] = {{"t1", 0, 0}};
    static const char *const t[] = {"t1", "t2"};
    char name[64];
    for (int c = 1; c <= 14; c++) {
        api_versions(3);
        produce(3, 1, pb, 1);
        metadata(1, t, 2, false);
        snprintf(name, sizeof(name), "cut-%d", c);
        seed(name, (uint8_t)CUT(c));
    }
    /* Cut inside the size, inside the header, inside the batch. */
    produce(3, 1, pb, 1);
    static const uint16_t at[] = {1, 3, 4, 6, 9, 13, 30, 70, 71, 72, 120};
    seed_cuts("cut-list", CUT_LIST, at, sizeof(at) / sizeof(at[0]));

    produce(7, 1, pb, 1);
    fetch(4, 0, 1, 1 << 20, f0, 1);
    seed("end-at-once", END_AT_ONCE);
    produce(7, 1, pb, 1);
    fetch(4, 0, 1, 1 << 20, f0, 1);
    seed("end-at-once-cut-7", END_AT_ONCE | CUT(6));
    for (int i = 0; i < 40; i++)
        metadata(1, NULL, 0, false);
    seed("end-unread", END_UNREAD);
    produce(7, 1, pb, 1);
    fetch(4, 0, 1, 1 << 20, f0, 1);
    seed("end-half-close", END_HALF);

    /* Answers larger than the small socket buffers: they queue in libuv. */
    struct batch_opt big = {.codec = C_GZIP, .n = 200, .keyed = true, .pid = -1};
    struct part_batch pbig[] = {{"t2", 2, big}};
    produce(3, 1, pbig, 1);
    struct fetch_part f2[] = {{"t2", 2, 0}};
    for (int i = 0; i < 4; i++)
        fetch(6, 0, 1, 1 << 20, f2, 1);
    seed("small-buffers", SMALL | CUT(13));
    produce(3, 1, pbig, 1);
    for (int i = 0; i < 4; i++)
        fetch(6, 0, 1, 1 << 20, f2, 1);
    seed("small-buffers-unread", SMALL | END_UNREAD);
}

/* Fetch v4 of t2/1 from offset 0, client id null: the smallest that waits. */
static void small_fetch(int32_t max_wait)
{
    frame_at = kw_reserve(&s, 4);
    kw_i16(&s, FETCH);
    kw_i16(&s, 4);
    kw_i32(&s, ++corr);
    kw_string(&s, NULL, -1);
    kw_i32(&s, -1);
    kw_i32(&s, max_wait);
    kw_i32(&s, 1);
    kw_i32(&s, 1 << 20);
    kw_i8(&s, 0);
    kw_array(&s, 1);
    str("t2");
    kw_array(&s, 1);
    kw_i32(&s, 1);
    kw_i64(&s, 0);
    kw_i32(&s, 1 << 20);
    end();
}

/* Near misses: what the node must refuse, answer with an error, or close on. */
static void near_misses(void)
{
    static const uint8_t sizes[][4] = {{0, 0, 0, 0},
                                       {0, 0, 0, 7},
                                       {0x7f, 0xff, 0xff, 0xff},
                                       {0x06, 0x40, 0x00, 0x01},
                                       {0xff, 0xff, 0xff, 0xff}};
    static const char *const size_names[] = {"0", "7", "max", "100MiB+1", "negative"};
    char name[64];
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        api_versions(0);
        kw_raw(&s, sizes[i], 4);
        kw_raw(&s, "\0\x12\0\0\0\0\0\x09", 8);
        snprintf(name, sizeof(name), "bad-size-%s", size_names[i]);
        seed(name, 0);
    }
    /* A size of 8 MiB with only a few bytes of it: the peer leaves mid-frame. */
    kw_raw(&s, "\x00\x80\x00\x00\x00\x12\x00\x00\x00\x00\x00\x01", 12);
    seed("frame-cut-short-8MiB", END_AT_ONCE);
    /* A header without its client id; with one longer than the frame. */
    kw_raw(&s, "\0\0\0\x08\0\x12\0\0\0\0\0\x01", 12);
    seed("header-no-client-id", 0);
    kw_raw(&s, "\0\0\0\x0c\0\x12\0\0\0\0\0\x01\x7f\xff\0\0", 16);
    seed("header-client-id-too-long", 0);
    kw_raw(&s, "\0\0\0\x0c\0\x12\0\x03\0\0\0\x01\xff\xff\x05\x00", 16);
    seed("header-v2-bad-tags", 0);
    /* APIs and versions never advertised. */
    req(99, 0);
    end();
    seed("unknown-api", 0);
    req(PRODUCE, 8);
    kw_i16(&s, 1);
    end();
    seed("produce-v8", 0);
    req(FETCH, 3);
    end();
    seed("fetch-v3", 0);
    api_versions(9);
    seed("api-versions-v9", 0);
    req(API_VERSIONS, -1);
    end();
    seed("api-versions-v-1", 0);
    /* Bodies that do not parse. */
    req(METADATA, 1);
    kw_i32(&s, 1000);
    end();
    seed("metadata-count-too-big", 0);
    req(PRODUCE, 3);
    str(NULL);
    kw_i16(&s, 1);
    end();
    seed("produce-truncated", 0);

    /* Batches the handler refuses. */
    struct kw w;
    kw_init(&w);
    batch_build(&w, plain);
    w.p[w.len - 3] ^= 0x55; /* a record byte: the CRC no longer matches */
    produce_raw(3, "t1", 0, w.p, w.len);
    fix = 0; /* the harness would make it right */
    seed("batch-bad-crc", 0);
    batch_reseal(w.p, w.len); /* the CRC right again, a record's bytes not */
    produce_raw(3, "t1", 0, w.p, w.len);
    seed("batch-bad-record", 0);
    kw_free(&w);
    batch_build(&w, plain);
    put32(w.p + 57, 1000); /* recordsCount 1000 for 3 records */
    batch_reseal(w.p, w.len);
    produce_raw(3, "t1", 0, w.p, w.len);
    seed("batch-count-too-big", 0);
    put32(w.p + 57, 0);
    batch_reseal(w.p, w.len);
    produce_raw(3, "t1", 0, w.p, w.len);
    seed("batch-count-zero", 0);
    put32(w.p + 57, 3);
    w.p[16] = 1; /* magic 1: a v1 message set */
    produce_raw(3, "t1", 0, w.p, w.len);
    seed("batch-magic-1", 0);
    w.p[16] = 2;
    w.p[22] |= KBATCH_ATTR_TRANSACTIONAL;
    batch_reseal(w.p, w.len);
    produce_raw(3, "t1", 0, w.p, w.len);
    seed("batch-transactional", 0);
    w.p[22] = (uint8_t)((w.p[22] & ~(KBATCH_ATTR_TRANSACTIONAL | KBATCH_ATTR_CODEC)) | 5);
    batch_reseal(w.p, w.len);
    produce_raw(3, "t1", 0, w.p, w.len);
    seed("batch-codec-5", 0);
    kw_free(&w);
    struct part_batch pz[] = {{"t1", 0, {.codec = C_ZSTD, .n = 3, .pid = -1}}};
    produce(3, 1, pz, 1);
    seed("batch-zstd-in-v3", 0);
    /* One record of 200 KB (100 KB for snappy, which compresses runs less):
     * more than the 1 x (65536 + 64) + 4096 bytes the handler lets one
     * record decompress to: -EMSGSIZE, RECORD_LIST_TOO_LARGE. */
    static const char *const bomb_names[] = {"none", "gzip", "snappy", "lz4", "zstd", "xerial"};
    for (int c = C_GZIP; c <= C_XERIAL; c++) {
        int big = c == C_SNAPPY || c == C_XERIAL ? 100 << 10 : 200 << 10;
        struct part_batch pb1[] = {{"t1", 0, {.codec = c, .n = 1, .big = big, .pid = -1}}};
        produce(7, 1, pb1, 1);
        snprintf(name, sizeof(name), "batch-%s-bomb", bomb_names[c]);
        seed(name, 0);
    }
    struct part_batch pg2[] = {{"t2", 0, {.codec = C_GZIP2, .n = 6, .keyed = true, .pid = -1}}};
    produce(4, 1, pg2, 1);
    seed("batch-gzip-two-members", 0);
    /* Compressed payloads cut short, or with a byte changed (CRC redone). */
    static const char *const codec_names[] = {"none", "gzip", "snappy", "lz4", "zstd", "xerial"};
    for (int c = C_GZIP; c <= C_XERIAL; c++) {
        batch_build(&w, (struct batch_opt){.codec = c, .n = 5, .keyed = true, .pid = -1});
        batch_reseal(w.p, w.len - 5);
        produce_raw(7, "t1", 0, w.p, w.len - 5);
        snprintf(name, sizeof(name), "batch-%s-truncated", codec_names[c]);
        seed(name, 0);
        w.p[KBATCH_HDR + (w.len - KBATCH_HDR) / 2] ^= 0x20;
        batch_reseal(w.p, w.len);
        produce_raw(7, "t1", 0, w.p, w.len);
        snprintf(name, sizeof(name), "batch-%s-corrupt", codec_names[c]);
        seed(name, 0);
        kw_free(&w);
    }

    /* A Fetch at the end of an empty partition waits; the nudge brings data. */
    struct fetch_part fw[] = {{"t2", 1, 0}};
    fetch(11, 2000, 1, 1 << 20, fw, 1);
    api_versions(1);
    seed("fetch-waits-nudged", NUDGE);
    fetch(4, 0x7fffffff, 1000000, 1 << 20, fw, 1);
    seed("fetch-waits-forever", 0);
    /* 520 such Fetches: back pressure (512 in flight) stops reading. */
    for (int i = 0; i < 520; i++)
        small_fetch(1000);
    seed("fetch-back-pressure", 0);
}

/* The findings of README.md ("Findings"), one input each. */
static void crash_seeds(const char *crashdir)
{
    /* 3 (fixed): a Fetch that waits 2^31 - 1 ms kept the stopped port's
     * loop alive (the stall oracles of fuzz_kafka fail if it comes back). */
    struct fetch_part fw[] = {{"t2", 1, 0}};
    fetch(4, 0x7fffffff, 1000000, 1 << 20, fw, 1);
    reproducer(crashdir, "kafka-fetch-waits-at-stop");
    /* 4 (fixed): a null topic name reached memchr(NULL, 0, 0) in
     * groups_api.c's str_of (UBSan's nonnull-attribute check). */
    req(OFFSET_COMMIT, 2);
    str("g1");
    kw_i32(&s, -1);
    str("");
    kw_i64(&s, -1);
    kw_array(&s, 1);
    str(NULL);
    kw_array(&s, 1);
    kw_i32(&s, 0);
    kw_i64(&s, 5);
    str(NULL);
    end();
    reproducer(crashdir, "kafka-offset-commit-null-topic");
    req(OFFSET_FETCH, 1);
    str("g1");
    kw_array(&s, 1);
    str(NULL);
    kw_array(&s, 1);
    kw_i32(&s, 0);
    end();
    reproducer(crashdir, "kafka-offset-fetch-null-topic");
    /* 4 too: two null names in DeleteTopics, memcmp(NULL, NULL, 0) in
     * api.c's named_twice. */
    static const char *const nulls[] = {NULL, NULL};
    delete_topics(0, nulls, 2);
    reproducer(crashdir, "kafka-delete-topics-null-names");
    /* 5: 520 Fetches, the first waiting 2^31 - 1 ms: 512 in flight stop
     * the reading, the first holds the others' answers, and the node
     * never sees the peer leave (FUZZ_KAFKA_STRICT=1: the oracle fails). */
    small_fetch(0x7fffffff);
    for (int i = 1; i < 520; i++)
        small_fetch(1000);
    reproducer(crashdir, "kafka-back-pressure-hides-eof");
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: gen_corpus_kafka DIR [CRASHDIR] (writes DIR/seed-* and the known "
                        "findings' reproducers in CRASHDIR)\n");
        return 2;
    }
    if (!kcrc32c_available()) {
        fprintf(stderr, "gen_corpus_kafka: this CPU has no crc32 instruction\n");
        return 1;
    }
    dir = argv[1];
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        die(dir);
    kw_init(&s);
    every_version();
    sequences();
    cuts_and_ends();
    near_misses();
    if (argc == 3) {
        if (mkdir(argv[2], 0755) < 0 && errno != EEXIST)
            die(argv[2]);
        crash_seeds(argv[2]);
    }
    printf("gen_corpus_kafka: %d seed files, %zu bytes, in %s\n", files, bytes, dir);
    return 0;
}
