/*
 * Fuzz target: the incremental UTF-8 validator (ws_utf8.c), fed in random
 * splits.
 *
 * Input: 8 bytes that seed the splitting, then the text.  The text is fed
 * to the validator whole, byte by byte, and in pieces whose sizes come from
 * the seed, and each way is compared with a reference validator written
 * here from the Unicode table of well-formed byte sequences (3.9, table
 * 3-7), which knows the index of the first byte no continuation can make
 * valid.
 *
 * Beyond "no crash", it checks that:
 *   - whole, byte-by-byte and split feeding all give the reference's
 *     verdict, both "still valid" and "complete";
 *   - byte by byte, the first byte refused is exactly the reference's
 *     first invalid byte: the validator fails fast, never late or early;
 *   - once refused, every later feed is refused too, until ws_utf8_init;
 *   - a validator that refused is never complete.
 */
#include <stdbool.h>
#include <string.h>

#include "fuzz_check.h"
#include "ws_utf8.h"

#define FUZZ_SEED_BYTES 8

/*
 * fuzz_ref_scan returns the index of the first byte that no continuation
 * can make valid UTF-8, or len if there is none; *complete tells whether
 * the text ends on a character boundary with nothing invalid.
 */
static size_t
fuzz_ref_scan(const uint8_t *p, size_t len, bool *complete)
{
    size_t i = 0;

    while (i < len) {
        uint8_t b = p[i];
        uint8_t lo = 0x80;
        uint8_t hi = 0xBF;
        size_t tails;

        if (b <= 0x7F) {
            i++;
            continue;
        } else if (b >= 0xC2 && b <= 0xDF) {
            tails = 1;
        } else if (b >= 0xE0 && b <= 0xEF) {
            tails = 2;
            lo = b == 0xE0 ? 0xA0 : 0x80;
            hi = b == 0xED ? 0x9F : 0xBF;
        } else if (b >= 0xF0 && b <= 0xF4) {
            tails = 3;
            lo = b == 0xF0 ? 0x90 : 0x80;
            hi = b == 0xF4 ? 0x8F : 0xBF;
        } else {
            *complete = false;
            return i;
        }
        for (size_t k = 1; k <= tails; k++) {
            if (i + k == len) {
                *complete = false;
                return len;
            }
            if (p[i + k] < lo || p[i + k] > hi) {
                *complete = false;
                return i + k;
            }
            lo = 0x80;
            hi = 0xBF;
        }
        i += 1 + tails;
    }
    *complete = true;
    return len;
}

/* A small generator of split sizes, so one input replays the same way. */
static uint64_t
fuzz_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ws_utf8 v;
    const uint8_t *text;
    size_t len;
    size_t bad;
    bool ref_complete = false;
    bool ok;
    uint64_t seed = 0x9E3779B97F4A7C15u;

    if (size < FUZZ_SEED_BYTES) {
        return 0;
    }
    for (size_t i = 0; i < FUZZ_SEED_BYTES; i++) {
        seed = (seed << 8 | seed >> 56) ^ data[i];
    }
    if (seed == 0) {
        seed = 1;
    }
    text = data + FUZZ_SEED_BYTES;
    len = size - FUZZ_SEED_BYTES;
    bad = fuzz_ref_scan(text, len, &ref_complete);

    /* Whole. */
    ws_utf8_init(&v);
    ok = ws_utf8_feed(&v, len > 0 ? text : NULL, len);
    FUZZ_CHECK(ok == (bad == len), "whole feed agrees with the reference");
    FUZZ_CHECK(ws_utf8_complete(&v) == ref_complete,
               "whole feed: complete agrees with the reference");

    /* Byte by byte: the first refusal is at the reference's bad byte. */
    ws_utf8_init(&v);
    for (size_t i = 0; i < len; i++) {
        ok = ws_utf8_feed(&v, text + i, 1);
        FUZZ_CHECK(ok == (i < bad),
                   "byte-by-byte feed fails exactly at the first invalid byte");
        if (!ok) {
            FUZZ_CHECK(!ws_utf8_complete(&v),
                       "a failed validator is never complete");
            FUZZ_CHECK(!ws_utf8_feed(&v, (const uint8_t *)"a", 1)
                           && !ws_utf8_feed(&v, NULL, 0),
                       "a failed validator refuses every later feed");
            break;
        }
    }
    if (bad == len) {
        FUZZ_CHECK(ws_utf8_complete(&v) == ref_complete,
                   "byte-by-byte feed: complete agrees with the reference");
    }

    /* Random splits, empty pieces included. */
    ws_utf8_init(&v);
    {
        size_t at = 0;
        bool all_ok = true;

        while (at < len) {
            size_t piece = (size_t)(fuzz_next(&seed) % 17);

            if (piece > len - at) {
                piece = len - at;
            }
            ok = ws_utf8_feed(&v, piece > 0 ? text + at : NULL, piece);
            if (!ok) {
                FUZZ_CHECK(
                    bad < at + piece && bad >= (all_ok ? at : 0),
                    "a split feed fails in the piece holding the first invalid byte");
                all_ok = false;
            } else {
                FUZZ_CHECK(
                    all_ok && bad >= at + piece,
                    "a split feed accepts only pieces before the first invalid byte");
            }
            at += piece;
        }
        FUZZ_CHECK(all_ok == (bad == len),
                   "split feed agrees with the whole feed");
        FUZZ_CHECK(ws_utf8_complete(&v) == ref_complete,
                   "split feed: complete agrees with the reference");
    }
    return 0;
}
