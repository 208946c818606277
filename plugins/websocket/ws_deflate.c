/*
 * permessage-deflate at run time: the registry of per-thread zlib streams,
 * what each connection negotiated, and decompressing what clients send.
 * Compressing is in ws_deflate_send.c; the streams are described in
 * ws_deflate_streams.h.
 */
#include "ws_deflate_streams.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

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

torpor_err
ws_deflate_inflate(struct ws_conn *c, const uint8_t *in, size_t len,
                   size_t limit, struct ws_inflated *out)
{
    struct ws_zthread *z = ws_zthread_get(ws_of(c));
    z_stream *s = z != NULL ? ws_inflater(c, z) : NULL;

    if (s == NULL) {
        return TORPOR_ENOMEM;
    }
    return ws_inflate_message(s, in, len, limit, z->scratch,
                              sizeof(z->scratch),
                              (c->deflate & WS_DEFLATE_CLIENT_TAKEOVER) != 0,
                              out);
}

void
ws_deflate_inflated_free(struct ws_inflated *out)
{
    free(out->heap);
    out->heap = NULL;
}
