/*
 * Fuzz target: the inflate path of permessage-deflate (ws_inflate.c), the
 * code that turns a client's compressed message into bytes under a limit.
 *
 * Input: one byte of settings, then a compressed message as a client
 * would send it (raw DEFLATE without its 0x00 0x00 0xff 0xff tail).  The
 * settings pick the limit on the inflated size (from 0 bytes up), the size
 * of the scratch buffer (so both the scratch and the heap paths run) and
 * whether the context is kept (context takeover).
 *
 * Beyond "no crash", it checks that:
 *   - a message accepted under a limit is no longer than the limit;
 *   - the limit changes nothing but where inflating stops: what inflates
 *     under the limit inflates the same with a generous one, and what a
 *     generous limit inflates to at most the limit's size is accepted
 *     under the limit;
 *   - the input bytes themselves, compressed the way a client does it,
 *     come back exactly.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fuzz_check.h"
#include "ws_inflate.h"

#define FUZZ_GENEROUS_LIMIT (1u << 20)

struct fuzz_result {
    torpor_err err;
    uint8_t *bytes; /* a copy of what came out, when err is TORPOR_OK */
    size_t len;
};

/* fuzz_inflate inflates data with a fresh stream and keeps a copy. */
static struct fuzz_result
fuzz_inflate(const uint8_t *data, size_t len, size_t limit,
             size_t scratch_cap, bool keep_context)
{
    struct fuzz_result r = {TORPOR_ENOMEM, NULL, 0};
    uint8_t *scratch = malloc(scratch_cap);
    struct ws_inflated out;
    z_stream s;

    memset(&s, 0, sizeof(s));
    FUZZ_CHECK(scratch != NULL, "scratch allocated");
    FUZZ_CHECK(inflateInit2(&s, -15) == Z_OK, "inflateInit2");
    r.err = ws_inflate_message(&s, data, len, limit, scratch, scratch_cap,
                               keep_context, &out);
    if (r.err == TORPOR_OK) {
        r.len = out.len;
        r.bytes = malloc(out.len + 1);
        FUZZ_CHECK(r.bytes != NULL, "copy allocated");
        memcpy(r.bytes, out.data, out.len);
        free(out.heap);
    }
    inflateEnd(&s);
    free(scratch);
    return r;
}

/* fuzz_compress compresses data as a client does, without the tail. */
static uint8_t *
fuzz_compress(const uint8_t *data, size_t len, size_t *out_len)
{
    size_t cap = compressBound((uLong)len) + 64;
    uint8_t *buf = malloc(cap);
    z_stream s;

    memset(&s, 0, sizeof(s));
    FUZZ_CHECK(buf != NULL, "compress buffer allocated");
    FUZZ_CHECK(deflateInit2(&s, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY)
                   == Z_OK,
               "deflateInit2");
    s.next_in = (Bytef *)(uintptr_t)data;
    s.avail_in = (uInt)len;
    s.next_out = buf;
    s.avail_out = (uInt)cap;
    FUZZ_CHECK(deflate(&s, Z_SYNC_FLUSH) == Z_OK, "deflate");
    FUZZ_CHECK(s.avail_in == 0, "deflate took everything");
    *out_len = cap - s.avail_out;
    deflateEnd(&s);
    FUZZ_CHECK(*out_len >= 4 && memcmp(buf + *out_len - 4, ws_deflate_tail, 4)
                                    == 0,
               "a sync flush ends with the tail");
    *out_len -= 4;
    return buf;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    uint8_t settings = data[0];
    const uint8_t *msg = data + 1;
    size_t len = size - 1;
    /* 0, then powers of two up to 64 KiB: the edges of the limit. */
    size_t limit = (settings & 0x0F) == 0 ? 0 : (size_t)1 << (settings & 0x0F);
    size_t scratch_cap = (settings & 0x30) == 0 ? 1 : (size_t)16 << (settings >> 4 & 3);
    bool keep = (settings & 0x80) != 0;

    struct fuzz_result small = fuzz_inflate(msg, len, limit, scratch_cap, keep);
    struct fuzz_result big =
        fuzz_inflate(msg, len, FUZZ_GENEROUS_LIMIT, scratch_cap, keep);

    FUZZ_CHECK(small.err == TORPOR_OK || small.err == TORPOR_ELIMIT
                   || small.err == TORPOR_EINVAL,
               "only OK, ELIMIT or EINVAL");
    if (small.err == TORPOR_OK) {
        FUZZ_CHECK(small.len <= limit, "accepted output fits the limit");
        FUZZ_CHECK(big.err == TORPOR_OK && big.len == small.len
                       && memcmp(big.bytes, small.bytes, small.len) == 0,
                   "a generous limit inflates the same bytes");
    }
    if (big.err == TORPOR_OK && big.len <= limit) {
        FUZZ_CHECK(small.err == TORPOR_OK, "what fits the limit is accepted");
    }
    if (small.err == TORPOR_ELIMIT && big.err == TORPOR_OK) {
        FUZZ_CHECK(big.len > limit, "refused over the limit only past it");
    }
    free(small.bytes);
    free(big.bytes);

    /* The input as plain text: compressed and inflated, it comes back. */
    size_t clen;
    uint8_t *c = fuzz_compress(msg, len, &clen);
    struct fuzz_result back =
        fuzz_inflate(c, clen, len, scratch_cap, keep);
    FUZZ_CHECK(back.err == TORPOR_OK, "a client's message inflates");
    FUZZ_CHECK(back.len == len && (len == 0 || memcmp(back.bytes, msg, len) == 0),
               "a client's message comes back exactly");
    free(back.bytes);
    free(c);
    return 0;
}
