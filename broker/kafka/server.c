/*
 * server — the Kafka port: connections, frames and the order of answers.
 *
 * FRAMES
 *   A request is a big-endian int32 size, then that many bytes: the request
 *   header (api key, version, correlation id, client id[, tags]) and the
 *   body.  A size below 8 or above MAX_FRAME, a header that does not parse,
 *   or an API/version we never advertised closes the connection (that is
 *   what Kafka does with a request it cannot read), counted in bad_frames.
 *
 * ORDER
 *   Requests queue per connection in arrival order; an answer is written
 *   only when every earlier request on the connection has been answered
 *   (or needed no answer: Produce with acks 0).  While MAX_INFLIGHT
 *   requests wait, the connection is not read (back pressure).
 */
#include "broker/kafka/internal.h"
#include "broker/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/kafka/crc32c.h"

#define MAX_FRAME    (100u << 20) /* Kafka's socket.request.max.bytes */
#define MAX_INFLIGHT 512

struct kconn {
    uv_tcp_t tcp;
    struct kafka *k;
    struct kconn *next, **pprev;
    uint8_t *buf; /* bytes read, not yet a whole frame */
    size_t len, cap;
    struct kreq *head, *tail;
    int inflight;
    bool closing, paused;
    char peer[48];
};

struct kwrite {
    uv_write_t w;
    struct kafka *k;
    uint8_t *p;
};

static void conn_close(struct kconn *c, const char *why);
static void flush(struct kconn *c);
static void resume(struct kconn *c);

/* A handle of k's is closed: the last one after kafka_stop frees k. */
static void handle_gone(struct kafka *k)
{
    if (--k->handles == 0 && k->stopping)
        free(k);
}

/* ------------------------------------------------------------ requests */

static void req_free(struct kreq *r)
{
    if (r->state_free)
        r->state_free(r);
    kw_free(&r->out);
    free(r->frame);
    free(r);
}

void kreq_reset_out(struct kreq *r)
{
    kw_free(&r->out);
    kw_init(&r->out);
    kw_reserve(&r->out, 4);
    kresp_hdr_write(&r->out, r->h.correlation_id, kapi_flexible_response(r->h.api_key, r->h.api_version));
}

void kreq_done(struct kreq *r)
{
    r->done = true;
    if (r->c)
        flush(r->c);
    else if (r->holds == 0)
        req_free(r);
}

void kreq_hold(struct kreq *r)
{
    r->holds++;
}

void kreq_release(struct kreq *r)
{
    if (--r->holds == 0 && !r->c)
        req_free(r); /* its connection went away meanwhile */
}

/* ------------------------------------------------------------ writing */

static void on_written(uv_write_t *w, int status)
{
    struct kwrite *kw = (struct kwrite *)w;
    (void)status; /* a failed write shows as a read error / EOF too */
    free(kw->p);
    free(kw);
}

/* Sends the answers at the head of the queue that are complete. */
static void flush(struct kconn *c)
{
    while (c->head && c->head->done && !c->closing) {
        struct kreq *r = c->head;
        c->head = r->next;
        if (!c->head)
            c->tail = NULL;
        c->inflight--;
        if (!r->no_reply) {
            if (r->out.err) {
                mk_log(MK_WARN, "kafka %s: no memory for an answer", c->peer);
                r->c = NULL;
                req_free(r);
                conn_close(c, NULL);
                return;
            }
            kw_put_i32_at(&r->out, 0, (int32_t)(r->out.len - 4));
            struct kwrite *w = malloc(sizeof(*w));
            if (!w) {
                r->c = NULL;
                req_free(r);
                conn_close(c, NULL);
                return;
            }
            w->k = c->k;
            w->p = r->out.p; /* the write owns it now */
            uv_buf_t b = uv_buf_init((char *)r->out.p, (unsigned)r->out.len);
            r->out.p = NULL;
            r->out.len = r->out.cap = 0;
            if (uv_write(&w->w, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) {
                free(w->p);
                free(w);
                r->c = NULL;
                req_free(r);
                conn_close(c, NULL);
                return;
            }
        }
        r->c = NULL;
        if (r->holds == 0)
            req_free(r);
    }
    if (c->paused && c->inflight < MAX_INFLIGHT / 2 && !c->closing) {
        c->paused = false;
        resume(c); /* frames read before the pause may be whole already */
    }
}

/* ------------------------------------------------------------ reading */

static void bad(struct kconn *c, const char *why)
{
    c->k->bad_frames++;
    conn_close(c, why);
}

/* Takes the frame of `size` bytes at c->buf + 4 as a request. */
static int take_frame(struct kconn *c, size_t size)
{
    struct kreq *r = calloc(1, sizeof(*r));
    if (!r || !(r->frame = malloc(size))) {
        free(r);
        conn_close(c, "out of memory");
        return -1;
    }
    memcpy(r->frame, c->buf + 4, size);
    r->frame_len = size;
    r->k = c->k;
    kr_init(&r->body, r->frame, size);
    if (kreq_hdr_parse(&r->body, &r->h, false) < 0) {
        req_free(r);
        bad(c, "a request header that does not parse");
        return -1;
    }
    if (!kapi_known(r->h.api_key, r->h.api_version)) {
        c->k->unsupported++; /* a bad frame of its own kind: counted in both */
        c->k->bad_frames++;
        mk_log(MK_INFO, "kafka %s: api %d version %d is not served: closing", c->peer, r->h.api_key,
               r->h.api_version);
        req_free(r);
        conn_close(c, NULL);
        return -1;
    }
    if (kapi_flexible_request(r->h.api_key, r->h.api_version))
        kr_skip_tags(&r->body);
    if (r->body.err) {
        req_free(r);
        bad(c, "a request header that does not parse");
        return -1;
    }
    kreq_reset_out(r);
    r->c = c;
    if (c->tail)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    c->inflight++;
    c->k->requests++;
    /* Held while its handler runs: an answer sent at once frees it. */
    kreq_hold(r);
    int rc = kapi_dispatch(r);
    if (rc < 0)
        bad(c, "a request body that does not parse");
    kreq_release(r);
    return rc < 0 ? -1 : 0;
}

/* Handles the whole frames in c->buf. */
static void drain(struct kconn *c)
{
    size_t at = 0;
    while (!c->closing && !c->paused && c->len - at >= 4) {
        uint8_t *p = c->buf + at;
        uint32_t size = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (size < 8 || size > MAX_FRAME) {
            bad(c, "a frame size out of range");
            return;
        }
        if (c->len - at - 4 < size)
            break;
        /* take_frame reads at c->buf + 4: slide the frame there first. */
        if (at) {
            memmove(c->buf, c->buf + at, c->len - at);
            c->len -= at;
            at = 0;
        }
        if (take_frame(c, size) < 0)
            return;
        at = 4 + size;
        if (c->inflight >= MAX_INFLIGHT) {
            c->paused = true;
            uv_read_stop((uv_stream_t *)&c->tcp);
        }
    }
    if (at) {
        memmove(c->buf, c->buf + at, c->len - at);
        c->len -= at;
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct kconn *c = h->data;
    (void)hint;
    size_t want = 64 * 1024;
    if (c->len >= 4) {
        /* The frame being read, whole, once its size is known. */
        uint32_t size = (uint32_t)c->buf[0] << 24 | (uint32_t)c->buf[1] << 16 |
                        (uint32_t)c->buf[2] << 8 | c->buf[3];
        if (size <= MAX_FRAME && size + 4 > c->len && size + 4 - c->len > want)
            want = size + 4 - c->len;
    }
    if (c->cap - c->len < want) {
        uint8_t *nb = realloc(c->buf, c->len + want);
        if (!nb) {
            *b = uv_buf_init(NULL, 0);
            return;
        }
        c->buf = nb;
        c->cap = c->len + want;
    }
    *b = uv_buf_init((char *)c->buf + c->len, (unsigned)(c->cap - c->len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct kconn *c = s->data;
    (void)b;
    if (n < 0) {
        conn_close(c, n == UV_EOF ? NULL : uv_strerror((int)n));
        return;
    }
    if (n == 0)
        return; /* EAGAIN, or no buffer (ENOBUFS: retried) */
    c->len += (size_t)n;
    drain(c);
}

static void resume(struct kconn *c)
{
    drain(c);
    if (!c->paused && !c->closing)
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ------------------------------------------------------------ connections */

static void on_conn_closed(uv_handle_t *h)
{
    struct kconn *c = h->data;
    struct kafka *k = c->k;
    free(c->buf);
    free(c);
    handle_gone(k);
}

static void conn_close(struct kconn *c, const char *why)
{
    if (c->closing)
        return;
    c->closing = true;
    if (why)
        mk_log(MK_INFO, "kafka %s: closing: %s", c->peer, why);
    *c->pprev = c->next;
    if (c->next)
        c->next->pprev = c->pprev;
    /* Requests still at work finish on their own and go nowhere; one that
     * only waits (a Fetch at the end) is ended now. */
    struct kreq *r = c->head;
    while (r) {
        struct kreq *next = r->next;
        r->c = NULL;
        r->next = NULL;
        if (r->holds == 0) {
            req_free(r);
        } else if (r->abort) {
            void (*abort)(struct kreq *) = r->abort;
            r->abort = NULL;
            abort(r);
        }
        r = next;
    }
    c->head = c->tail = NULL;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

/* A connection of k, its handle initialized but not open yet (closed and
 * freed by conn_close); NULL when memory is short. */
static struct kconn *conn_new(struct kafka *k)
{
    struct kconn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->k = k;
    uv_tcp_init(k->loop, &c->tcp);
    c->tcp.data = c;
    k->handles++;
    c->next = k->conns;
    if (k->conns)
        k->conns->pprev = &c->next;
    c->pprev = &k->conns;
    k->conns = c;
    return c;
}

/* Starts serving c, whose handle is open (accepted). */
static void conn_serve(struct kconn *c)
{
    struct kafka *k = c->k;
    struct sockaddr_storage sa;
    int salen = sizeof(sa);
    snprintf(c->peer, sizeof(c->peer), "?");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &salen) == 0 && sa.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&sa;
        char ip[16];
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        snprintf(c->peer, sizeof(c->peer), "%s:%u", ip, ntohs(in->sin_port));
    }
    uv_tcp_nodelay(&c->tcp, 1);
    k->accepted++;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct kafka *k = server->data;
    if (status < 0 || k->stopping)
        return;
    struct kconn *c = conn_new(k);
    if (!c)
        return;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c, NULL);
        return;
    }
    conn_serve(c);
}

/* ------------------------------------------------------------ timers */

static void on_timer_closed(uv_handle_t *h)
{
    struct kafka *k = *(struct kafka **)((uv_timer_t *)h + 1);
    free(h);
    handle_gone(k);
}

uv_timer_t *kafka_timer_new(struct kafka *k, void *data)
{
    /* The owner rides behind the handle, for the close callback. */
    uv_timer_t *t = malloc(sizeof(uv_timer_t) + sizeof(struct kafka *));
    if (!t)
        return NULL;
    uv_timer_init(k->loop, t);
    *(struct kafka **)(t + 1) = k;
    t->data = data;
    k->handles++;
    return t;
}

void kafka_timer_free(uv_timer_t *t)
{
    if (t)
        uv_close((uv_handle_t *)t, on_timer_closed);
}

/* ------------------------------------------------------------ start/stop */

int kafka_start(struct kafka **out, struct broker *b, uv_loop_t *loop, const char *host,
                uint16_t port, const char *adv_host, uint16_t adv_port)
{
    if (!kcrc32c_available())
        return -ENOTSUP;
    struct kafka *k = calloc(1, sizeof(*k));
    if (!k)
        return -ENOMEM;
    k->b = b;
    k->loop = loop;
    snprintf(k->host, sizeof(k->host), "%s", host);
    k->port = port;
    snprintf(k->adv_host, sizeof(k->adv_host), "%s", adv_host && *adv_host ? adv_host : host);
    k->adv_port = adv_port ? adv_port : port;
    struct sockaddr_in sa;
    int rc = uv_ip4_addr(host, port, &sa);
    if (rc == 0)
        rc = uv_tcp_init(loop, &k->listener);
    if (rc < 0) {
        free(k);
        return rc;
    }
    k->listener.data = k;
    k->handles = 1;
    if ((rc = uv_tcp_bind(&k->listener, (const struct sockaddr *)&sa, 0)) < 0 ||
        (rc = uv_listen((uv_stream_t *)&k->listener, 128, on_connection)) < 0) {
        kafka_stop(k);
        return rc;
    }
    *out = k;
    return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
    handle_gone(h->data);
}

void kafka_stop(struct kafka *k)
{
    k->stopping = true;
    while (k->conns)
        conn_close(k->conns, NULL);
    uv_close((uv_handle_t *)&k->listener, on_listener_closed);
}

/* ------------------------------------------------------------ test hooks */

/* Only the harness calls these (tests/fuzz/fuzz_kafka.c); the port never
 * does.  An adopted descriptor goes through conn_serve and everything after
 * it, exactly as an accepted one: only uv_tcp_open takes uv_accept's place. */

int kafka_adopt_for_test(struct kafka *k, int fd)
{
    if (k->stopping) {
        close(fd);
        return -ESHUTDOWN;
    }
    struct kconn *c = conn_new(k);
    if (!c) {
        close(fd);
        return -ENOMEM;
    }
    int rc = uv_tcp_open(&c->tcp, fd);
    if (rc < 0) {
        conn_close(c, NULL); /* the handle does not own fd then */
        close(fd);
        return rc;
    }
    conn_serve(c);
    return 0;
}

void kafka_view_for_test(const struct kafka *k, struct kafka_test_view *v)
{
    *v = (struct kafka_test_view){.handles = k->handles,
                                  .requests = k->requests,
                                  .bad_frames = k->bad_frames,
                                  .unsupported = k->unsupported};
    for (const struct kconn *c = k->conns; c; c = c->next) {
        v->conns++;
        for (const struct kreq *r = c->head; r; r = r->next)
            v->owed++;
        if (uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp) > 0)
            v->owed++;
    }
}

char *kafka_status(const struct kafka *k)
{
    char *s = NULL;
    size_t conns = 0;
    for (struct kconn *c = k->conns; c; c = c->next)
        conns++;
    if (asprintf(&s,
                 "kafka.listen=%s:%u kafka.advertised=%s:%u kafka.connections=%zu"
                 " kafka.accepted=%" PRIu64 " kafka.requests=%" PRIu64 " kafka.bad_frames=%" PRIu64
                 " kafka.unsupported=%" PRIu64 "\n",
                 k->host, k->port, k->adv_host, k->adv_port, conns, k->accepted, k->requests,
                 k->bad_frames, k->unsupported) < 0)
        return NULL;
    return s;
}
