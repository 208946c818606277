/*
 * Inflating one permessage-deflate message (RFC 7692 7.2.2) under a limit
 * on its inflated size, so that a decompression bomb stops at the limit
 * instead of at the end of memory.  Output goes to a caller's scratch
 * buffer first and moves to the heap only for a message that outgrows it.
 */
#include "ws_inflate.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

const uint8_t ws_deflate_tail[4] = {0x00, 0x00, 0xff, 0xff};

/*
 * ws_inflate_restart lets a kept context go on after a message that ended
 * its DEFLATE stream with a final block: the window is carried into a
 * fresh stream as its dictionary.
 */
static torpor_err
ws_inflate_restart(z_stream *s)
{
    /* The largest window DEFLATE has: 2^15 bytes. */
    uint8_t *window = malloc((size_t)1 << 15);
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
ws_inflate_message(z_stream *s, const uint8_t *in, size_t len, size_t limit,
                   uint8_t *scratch, size_t scratch_cap, bool keep_context,
                   struct ws_inflated *out)
{
    const uint8_t *seg[2] = {in, ws_deflate_tail};
    size_t seg_len[2] = {len, sizeof(ws_deflate_tail)};
    uint8_t *heap = NULL;
    uint8_t *buf;
    size_t cap;
    torpor_err err = TORPOR_OK;

    if (len > UINT_MAX || limit >= UINT_MAX) {
        return TORPOR_ELIMIT;
    }
    buf = scratch;
    cap = scratch_cap <= limit ? scratch_cap : limit + 1;
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
                } else if (keep_context) {
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

