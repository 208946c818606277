/*
 * permessage-deflate at run time: the zlib streams, decompressing what
 * clients send and compressing what the server sends.  See ws_deflate.h.
 *
 * Without context takeover every message stands alone, so one inflater
 * and one deflater per window size serve every connection of a thread:
 * they live in a struct ws_zthread that the thread makes on first use
 * (found again through a pthread key) and that ws_deflate_stop frees.
 * Memory per thread, with zlib's formulas: inflate 2^15 + ~7 KiB, deflate
 * 2^(bits+2) + 2^(8+9) per window size in use (256 KiB at 15 bits), and a
 * 16 KiB output scratch; nothing per connection.
 *
 * With context takeover a connection owns its streams (struct
 * ws_deflate_conn in its in-progress record, which then stays while the
 * connection lives): its deflater uses memLevel bits - 7, so 2^(bits+3)
 * bytes, and its inflater 2^bits + ~7 KiB.
 *
 * A broadcast frame is compressed at most once per window size: the
 * variants hang off the plain frame, each a frame of its own with its own
 * references, so a queue can hold a variant after the plain frame is gone.
 */
#include "ws.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

/* Inflated bytes that fit without a heap buffer. */
#define WS_INFLATE_SCRATCH_BYTES 16384

/* memLevel of the shared deflaters: zlib's default. */
#define WS_DEFLATE_SHARED_MEM_LEVEL 8

/* A compressed frame with this much slack is trimmed to size. */
#define WS_DEFLATE_TRIM_BYTES 4096

#define WS_DEFLATE_N_BITS (WS_DEFLATE_BITS_MAX - WS_DEFLATE_SERVER_BITS_MIN + 1)

/* What RFC 7692 7.2.1 strips from the end of every compressed message. */
static const uint8_t ws_deflate_tail[4] = {0x00, 0x00, 0xff, 0xff};

/* One thread's shared streams, used by one message at a time. */
struct ws_zthread {
    struct ws_zthread *next; /* in ws_deflate_threads.all, under lock */
    bool inflate_ready;
    bool deflate_ready[WS_DEFLATE_N_BITS];
    uint8_t deflate_level[WS_DEFLATE_N_BITS];
    z_stream inflate;
    z_stream deflate[WS_DEFLATE_N_BITS];
    uint8_t scratch[WS_INFLATE_SCRATCH_BYTES];
};

struct ws_deflate_threads {
    pthread_key_t key; /* this thread's struct ws_zthread */
    pthread_mutex_t lock;
    struct ws_zthread *all;
};

/*
 * A connection's own streams, while context takeover is agreed.
 * Missing: these streams are not part of the connection's serialisable record, so a restart that hands sockets over cannot keep such a connection.
 */
struct ws_deflate_conn {
    bool deflate_ready;
    bool inflate_ready;
    z_stream deflate;
    z_stream inflate;
};

const struct ws_deflate_config *
ws_deflate_config_for(const struct ws_state *ws, const torpor_bytes *route)
{
    (void)route;
    return &ws->cfg.deflate;
}

torpor_err
ws_deflate_start(struct ws_state *ws)
{
    struct ws_deflate_threads *t = calloc(1, sizeof(*t));

    if (t == NULL) {
        return TORPOR_ENOMEM;
    }
    if (pthread_key_create(&t->key, NULL) != 0) {
        free(t);
        return TORPOR_ENOMEM;
    }
    if (pthread_mutex_init(&t->lock, NULL) != 0) {
        pthread_key_delete(t->key);
        free(t);
        return TORPOR_ENOMEM;
    }
    ws->zthreads = t;
    return TORPOR_OK;
}

void
ws_deflate_stop(struct ws_state *ws)
{
    struct ws_deflate_threads *t = ws->zthreads;

    if (t == NULL) {
        return;
    }
    while (t->all != NULL) {
        struct ws_zthread *z = t->all;

        t->all = z->next;
        if (z->inflate_ready) {
            inflateEnd(&z->inflate);
        }
        for (size_t i = 0; i < WS_DEFLATE_N_BITS; i++) {
            if (z->deflate_ready[i]) {
                deflateEnd(&z->deflate[i]);
            }
        }
        free(z);
    }
    pthread_key_delete(t->key);
    pthread_mutex_destroy(&t->lock);
    free(t);
    ws->zthreads = NULL;
}

/* ws_zthread_get finds or makes the calling thread's streams. */
static struct ws_zthread *
ws_zthread_get(struct ws_state *ws)
{
    struct ws_deflate_threads *t = ws->zthreads;
    struct ws_zthread *z = pthread_getspecific(t->key);

    if (z != NULL) {
        return z;
    }
    z = calloc(1, sizeof(*z));
    if (z == NULL) {
        return NULL;
    }
    if (pthread_setspecific(t->key, z) != 0) {
        free(z);
        return NULL;
    }
    pthread_mutex_lock(&t->lock);
    z->next = t->all;
    t->all = z;
    pthread_mutex_unlock(&t->lock);
    return z;
}

void
ws_deflate_conn_set(struct ws_conn *c, const struct ws_deflate_params *p)
{
    c->deflate = WS_DEFLATE_ON;
    if (p->server_takeover) {
        c->deflate |= WS_DEFLATE_SERVER_TAKEOVER;
    }
    if (p->client_takeover) {
        c->deflate |= WS_DEFLATE_CLIENT_TAKEOVER;
    }
    c->deflate_bits = (uint8_t)((p->server_window_bits - 8) << 4
                                | (p->client_window_bits - 8));
}

void
ws_deflate_conn_params(const struct ws_conn *c, struct ws_deflate_params *p)
{
    p->server_takeover = (c->deflate & WS_DEFLATE_SERVER_TAKEOVER) != 0;
    p->client_takeover = (c->deflate & WS_DEFLATE_CLIENT_TAKEOVER) != 0;
    p->server_window_bits = (uint8_t)((c->deflate_bits >> 4) + 8);
    p->client_window_bits = (uint8_t)((c->deflate_bits & 0x0F) + 8);
}

/* ws_deflate_conn_get returns c's own streams, making the record if needed. */
static struct ws_deflate_conn *
ws_deflate_conn_get(struct ws_conn *c)
{
    struct ws_busy *b = ws_conn_busy(c);

    if (b == NULL) {
        return NULL;
    }
    if (b->zconn == NULL) {
        b->zconn = calloc(1, sizeof(*b->zconn));
    }
    return b->zconn;
}

void
ws_deflate_busy_free(struct ws_busy *b)
{
    struct ws_deflate_conn *zc = b->zconn;

    if (zc == NULL) {
        return;
    }
    if (zc->deflate_ready) {
        deflateEnd(&zc->deflate);
    }
    if (zc->inflate_ready) {
        inflateEnd(&zc->inflate);
    }
    free(zc);
    b->zconn = NULL;
}

/* ---- inbound ---- */

/* ws_inflater returns the stream that decompresses c's next message. */
static z_stream *
ws_inflater(struct ws_conn *c, struct ws_zthread *z)
{
    struct ws_deflate_params p;

    ws_deflate_conn_params(c, &p);
    if (p.client_takeover) {
        struct ws_deflate_conn *zc = ws_deflate_conn_get(c);

        if (zc == NULL) {
            return NULL;
        }
        if (!zc->inflate_ready) {
            /*
             * zlib never made raw DEFLATE with a 256-byte window (old
             * versions quietly used 512 bytes), so a client that agreed
             * to 8 bits may well send 9-bit data: accept it.
             */
            int bits = p.client_window_bits < WS_DEFLATE_SERVER_BITS_MIN
                           ? WS_DEFLATE_SERVER_BITS_MIN
                           : p.client_window_bits;

            if (inflateInit2(&zc->inflate, -bits) != Z_OK) {
                return NULL;
            }
            zc->inflate_ready = true;
        }
        return &zc->inflate;
    }
    if (!z->inflate_ready) {
        if (inflateInit2(&z->inflate, -WS_DEFLATE_BITS_MAX) != Z_OK) {
            return NULL;
        }
        z->inflate_ready = true;
    } else if (inflateReset(&z->inflate) != Z_OK) {
        return NULL;
    }
    return &z->inflate;
}

/*
 * ws_inflate_restart lets a kept context go on after a message that ended
 * its DEFLATE stream with a final block: the window is carried into a
 * fresh stream as its dictionary.
 */
static torpor_err
ws_inflate_restart(z_stream *s)
{
    uint8_t *window = malloc((size_t)1 << WS_DEFLATE_BITS_MAX);
    uInt len = 0;
    torpor_err err = TORPOR_ENOMEM;

    if (window != NULL && inflateGetDictionary(s, window, &len) == Z_OK
        && inflateReset(s) == Z_OK
        && (len == 0 || inflateSetDictionary(s, window, len) == Z_OK)) {
        err = TORPOR_OK;
    }
    free(window);
    return err;
}

/*
 * ws_inflate_grow gives s more output room, moving from the scratch to
 * the heap.  TORPOR_ELIMIT once more than limit bytes came out.
 */
static torpor_err
ws_inflate_grow(z_stream *s, uint8_t **buf, size_t *cap, uint8_t **heap,
                size_t limit)
{
    size_t used = *cap - s->avail_out;
    size_t want = *cap * 2;
    uint8_t *p;

    if (used > limit || *cap > limit) {
        return TORPOR_ELIMIT;
    }
    if (want > limit + 1) {
        want = limit + 1;
    }
    if (*heap == NULL) {
        p = malloc(want);
        if (p != NULL) {
            memcpy(p, *buf, used);
        }
    } else {
        p = realloc(*heap, want);
    }
    if (p == NULL) {
        return TORPOR_ENOMEM;
    }
    *heap = p;
    *buf = p;
    *cap = want;
    s->next_out = p + used;
    s->avail_out = (uInt)(want - used);
    return TORPOR_OK;
}

torpor_err
ws_deflate_inflate(struct ws_conn *c, const uint8_t *in, size_t len,
                   size_t limit, struct ws_inflated *out)
{
    struct ws_zthread *z = ws_zthread_get(c->ws);
    const uint8_t *seg[2] = {in, ws_deflate_tail};
    size_t seg_len[2] = {len, sizeof(ws_deflate_tail)};
    uint8_t *heap = NULL;
    uint8_t *buf;
    size_t cap;
    z_stream *s;
    torpor_err err = TORPOR_OK;

    if (len > UINT_MAX || limit >= UINT_MAX) {
        return TORPOR_ELIMIT;
    }
    s = z != NULL ? ws_inflater(c, z) : NULL;
    if (s == NULL) {
        return TORPOR_ENOMEM;
    }
    buf = z->scratch;
    cap = sizeof(z->scratch) <= limit ? sizeof(z->scratch) : limit + 1;
    s->next_out = buf;
    s->avail_out = (uInt)cap;
    for (int i = 0; i < 2 && err == TORPOR_OK; i++) {
        s->next_in = (Bytef *)(uintptr_t)seg[i];
        s->avail_in = (uInt)seg_len[i];
        for (;;) {
            int r;

            if (s->avail_out == 0) {
                err = ws_inflate_grow(s, &buf, &cap, &heap, limit);
                if (err != TORPOR_OK) {
                    break;
                }
            }
            r = inflate(s, Z_SYNC_FLUSH);
            if (r == Z_STREAM_END) {
                /* A final block: only our own tail may follow it. */
                if (i == 0 && s->avail_in > 0) {
                    err = TORPOR_EINVAL;
                } else if ((c->deflate & WS_DEFLATE_CLIENT_TAKEOVER) != 0) {
                    err = ws_inflate_restart(s);
                }
                i = 2;
                break;
            }
            if (r == Z_BUF_ERROR && s->avail_out > 0) {
                break; /* all input used: a message may end mid-block */
            }
            if (r == Z_MEM_ERROR) {
                err = TORPOR_ENOMEM;
                break;
            }
            if (r != Z_OK && r != Z_BUF_ERROR) {
                err = TORPOR_EINVAL;
                break;
            }
            if (s->avail_in == 0 && s->avail_out > 0) {
                break;
            }
        }
    }
    if (err == TORPOR_OK && cap - s->avail_out > limit) {
        err = TORPOR_ELIMIT;
    }
    if (err != TORPOR_OK) {
        free(heap);
        return err;
    }
    out->data = buf;
    out->len = cap - s->avail_out;
    out->heap = heap;
    return TORPOR_OK;
}

void
ws_deflate_inflated_free(struct ws_inflated *out)
{
    free(out->heap);
    out->heap = NULL;
}

/* ---- outbound ---- */

/*
 * ws_deflate_compress compresses one message payload with s, as it stands,
 * into a new RSV1 frame with one reference.  On failure s may be left
 * mid-message.
 */
static torpor_err
ws_deflate_compress(z_stream *s, uint8_t opcode, const uint8_t *payload,
                    size_t n, torpor_frame **out)
{
    uint8_t hdr[WS_FRAME_SERVER_HEADER_MAX];
    size_t room;
    size_t clen;
    size_t hlen;
    torpor_frame *f;

    if (n > UINT_MAX) {
        return TORPOR_ELIMIT;
    }
    /* deflateBound counts one Z_FINISH; a sync flush adds a few bytes. */
    room = (size_t)deflateBound(s, (uLong)n) + 16;
    f = ws_frame_alloc(WS_FRAME_SERVER_HEADER_MAX + room);
    if (f == NULL) {
        return TORPOR_ENOMEM;
    }
    s->next_in = (Bytef *)(uintptr_t)payload;
    s->avail_in = (uInt)n;
    s->next_out = f->data + WS_FRAME_SERVER_HEADER_MAX;
    s->avail_out = (uInt)room;
    for (;;) {
        int r = deflate(s, Z_SYNC_FLUSH);
        torpor_frame *g;
        size_t used;

        if ((r == Z_OK || r == Z_BUF_ERROR) && s->avail_out > 0
            && s->avail_in == 0) {
            break;
        }
        if (r != Z_OK && r != Z_BUF_ERROR) {
            free(f);
            return TORPOR_EIO;
        }
        /* Out of room: rare, since room is the bound; grow and go on. */
        used = room - s->avail_out;
        g = realloc(f, sizeof(*f) + WS_FRAME_SERVER_HEADER_MAX + room * 2);
        if (g == NULL) {
            free(f);
            return TORPOR_ENOMEM;
        }
        f = g;
        s->next_out = f->data + WS_FRAME_SERVER_HEADER_MAX + used;
        s->avail_out = (uInt)(room * 2 - used);
        room *= 2;
    }
    clen = room - s->avail_out;
    if (clen >= sizeof(ws_deflate_tail)
        && memcmp(f->data + WS_FRAME_SERVER_HEADER_MAX + clen
                      - sizeof(ws_deflate_tail),
                  ws_deflate_tail, sizeof(ws_deflate_tail))
               == 0) {
        clen -= sizeof(ws_deflate_tail);
    }
    hlen = ws_frame_header_encode(hdr, true, WS_RSV1, opcode, clen);
    memmove(f->data + hlen, f->data + WS_FRAME_SERVER_HEADER_MAX, clen);
    memcpy(f->data, hdr, hlen);
    f->len = hlen + clen;
    f->opcode = opcode;
    f->header_len = (uint8_t)hlen;
    if (room - clen > WS_DEFLATE_TRIM_BYTES && room - clen > room / 4) {
        torpor_frame *g = realloc(f, sizeof(*f) + f->len);

        if (g != NULL) {
            f = g;
        }
    }
    *out = f;
    return TORPOR_OK;
}

/* ws_deflater_shared readies this thread's deflater for a window size. */
static z_stream *
ws_deflater_shared(struct ws_zthread *z, uint8_t bits, int level)
{
    size_t i = (size_t)(bits - WS_DEFLATE_SERVER_BITS_MIN);
    z_stream *s = &z->deflate[i];

    if (!z->deflate_ready[i]) {
        if (deflateInit2(s, level, Z_DEFLATED, -(int)bits,
                         WS_DEFLATE_SHARED_MEM_LEVEL, Z_DEFAULT_STRATEGY)
            != Z_OK) {
            return NULL;
        }
        z->deflate_ready[i] = true;
    } else if (deflateReset(s) != Z_OK) {
        return NULL;
    }
    if (z->deflate_level[i] != level
        && deflateParams(s, level, Z_DEFAULT_STRATEGY) != Z_OK) {
        return NULL;
    }
    z->deflate_level[i] = (uint8_t)level;
    return s;
}

/*
 * ws_deflate_variant finds or makes plain's variant for a window size.
 * NULL if it cannot be made; then the plain frame goes out.  The list only
 * grows, by compare-and-swap, so a reader never sees a half-made entry.
 */
static torpor_frame *
ws_deflate_variant(struct ws_conn *c, torpor_frame *plain, uint8_t bits,
                   const struct ws_deflate_config *cfg)
{
    torpor_frame *head = __atomic_load_n(&plain->variants, __ATOMIC_ACQUIRE);
    size_t n = plain->len - plain->header_len;
    struct ws_zthread *z;
    torpor_frame *v = NULL;
    z_stream *s;

    for (torpor_frame *w = head; w != NULL; w = w->next_variant) {
        if (w->window_bits == bits) {
            return w;
        }
    }
    z = ws_zthread_get(c->ws);
    s = z != NULL ? ws_deflater_shared(z, bits, cfg->level) : NULL;
    if (s == NULL
        || ws_deflate_compress(s, plain->opcode,
                               plain->data + plain->header_len, n, &v)
               != TORPOR_OK) {
        return NULL;
    }
    v->window_bits = bits;
    /* Incompressible: remember that, so nobody tries again. */
    v->plain_wins = v->len >= plain->len;
    v->next_variant = head;
    while (!__atomic_compare_exchange_n(&plain->variants, &v->next_variant, v,
                                        false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
        for (torpor_frame *w = v->next_variant; w != NULL;
             w = w->next_variant) {
            if (w->window_bits == bits) {
                free(v);
                return w;
            }
        }
    }
    return v;
}

/* ws_deflater_own readies c's own deflater, for server context takeover. */
static z_stream *
ws_deflater_own(struct ws_conn *c, uint8_t bits, int level)
{
    struct ws_deflate_conn *zc = ws_deflate_conn_get(c);

    if (zc == NULL) {
        return NULL;
    }
    if (!zc->deflate_ready) {
        /* memLevel follows the window, so a small window is small. */
        if (deflateInit2(&zc->deflate, level, Z_DEFLATED, -(int)bits, bits - 7,
                         Z_DEFAULT_STRATEGY)
            != Z_OK) {
            return NULL;
        }
        zc->deflate_ready = true;
    }
    return &zc->deflate;
}

torpor_frame *
ws_deflate_wire(struct ws_conn *c, torpor_frame *frame)
{
    const struct ws_deflate_config *cfg;
    struct ws_deflate_params p;
    torpor_frame *v;

    if ((c->deflate & WS_DEFLATE_ON) == 0 || frame->opcode == 0) {
        ws_frame_ref(frame);
        return frame;
    }
    /* Missing: the connection keeps no route, so a route's own compression_threshold and compression_level would not apply after the handshake. */
    cfg = ws_deflate_config_for(c->ws, NULL);
    if (frame->len - frame->header_len < cfg->threshold_bytes) {
        ws_frame_ref(frame);
        return frame;
    }
    ws_deflate_conn_params(c, &p);
    if (p.server_takeover) {
        z_stream *s = ws_deflater_own(c, p.server_window_bits, cfg->level);

        if (s == NULL) {
            /* Nothing went into the context yet: plain is still right. */
            ws_frame_ref(frame);
            return frame;
        }
        if (ws_deflate_compress(s, frame->opcode,
                                frame->data + frame->header_len,
                                frame->len - frame->header_len, &v)
            != TORPOR_OK) {
            return NULL;
        }
        return v;
    }
    v = ws_deflate_variant(c, frame, p.server_window_bits, cfg);
    if (v == NULL || v->plain_wins) {
        v = frame;
    }
    ws_frame_ref(v);
    return v;
}

void
ws_deflate_frame_free(torpor_frame *frame)
{
    torpor_frame *v = frame->variants;

    while (v != NULL) {
        torpor_frame *next = v->next_variant;

        ws_frame_release(v);
        v = next;
    }
}
