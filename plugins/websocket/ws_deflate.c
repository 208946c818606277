/*
 * permessage-deflate at run time: the registry of per-thread zlib streams,
 * what each connection negotiated, and decompressing what clients send.
 * Compressing is in ws_deflate_send.c; the streams are described in
 * ws_deflate_streams.h.
 */
#include "ws_deflate_streams.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

const uint8_t ws_deflate_tail[4] = {0x00, 0x00, 0xff, 0xff};

struct ws_deflate_threads {
    pthread_key_t key; /* this thread's struct ws_zthread */
    pthread_mutex_t lock;
    struct ws_zthread *all;
};

const struct ws_deflate_config *
ws_deflate_config_for(const struct ws_conn *c)
{
    return &ws_conn_opts(c)->deflate;
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

struct ws_zthread *
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

struct ws_deflate_conn *
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
