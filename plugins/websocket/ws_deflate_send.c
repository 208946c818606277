/*
 * permessage-deflate, outbound: picking the bytes each connection gets for
 * a frame, and compressing them with zlib.
 *
 * A broadcast frame is compressed at most once per window size and level:
 * the variants hang off the plain frame, each a frame of its own with its
 * own references, so a queue can hold a variant after the plain frame is
 * gone.
 * A connection whose server context carries over gets a frame compressed
 * with its own stream instead.
 */
#include "ws_deflate_streams.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* memLevel of the shared deflaters: zlib's default. */
#define WS_DEFLATE_SHARED_MEM_LEVEL 8

/* A compressed frame with this much slack is trimmed to size. */
#define WS_DEFLATE_TRIM_BYTES 4096

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

/* ws_deflate_find: plain's variant for a window size and level, or NULL. */
static torpor_frame *
ws_deflate_find(torpor_frame *head, uint8_t bits, uint8_t level)
{
    for (torpor_frame *w = head; w != NULL; w = w->next_variant) {
        if (w->window_bits == bits && w->level == level) {
            return w;
        }
    }
    return NULL;
}

/*
 * ws_deflate_variant finds or makes plain's variant for a window size and
 * the level of c's route: members of one room that came by routes with
 * different compression_level each get their own.  NULL if it cannot be
 * made; then the plain frame goes out.  The list only grows, by
 * compare-and-swap, so a reader never sees a half-made entry.
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

    v = ws_deflate_find(head, bits, cfg->level);
    if (v != NULL) {
        return v;
    }
    z = ws_zthread_get(ws_of(c));
    s = z != NULL ? ws_deflater_shared(z, bits, cfg->level) : NULL;
    if (s == NULL
        || ws_deflate_compress(s, plain->opcode,
                               plain->data + plain->header_len, n, &v)
               != TORPOR_OK) {
        return NULL;
    }
    v->window_bits = bits;
    v->level = cfg->level;
    /* Incompressible: remember that, so nobody tries again. */
    v->plain_wins = v->len >= plain->len;
    if (WS_DEBUG_ON(ws_of(c))) {
        WS_LOG(ws_of(c), TORPOR_LOG_DEBUG, ws_core(c),
               "compressed message for %u-bit windows: %zu to %zu bytes%s",
               (unsigned)bits, plain->len, v->len,
               v->plain_wins ? ", sending it plain" : "");
    }
    v->next_variant = head;
    while (!__atomic_compare_exchange_n(&plain->variants, &v->next_variant, v,
                                        false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
        torpor_frame *w = ws_deflate_find(v->next_variant, bits, cfg->level);

        if (w != NULL) {
            free(v);
            return w;
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
    cfg = ws_deflate_config_for(c);
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
