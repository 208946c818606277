/*
 * Incremental UTF-8 validator: see ws_utf8.h.
 *
 * The state packs what the next byte must be.  Bits 0-1 count the
 * continuation bytes still expected (0-3); bits 8-15 and 16-23 give the
 * lowest and highest value the next continuation byte may take.  Narrowing
 * the range of the byte right after the lead is what rejects overlongs
 * (E0, F0), surrogates (ED) and values over U+10FFFF (F4) at the first byte
 * that proves them, rather than after the whole sequence.  Every later
 * continuation byte is 0x80-0xBF.  A failed validator holds WS_UTF8_FAILED,
 * which no other state equals: they all leave bits 24-31 clear.
 */
#include "ws_utf8.h"

#include <stdint.h>
#include <string.h>

#define WS_UTF8_FAILED 0xFFFFFFFFu
#define WS_UTF8_ASCII_MASK UINT64_C(0x8080808080808080)

/*
 * ws_utf8_lead classifies a lead byte: sets how many continuation bytes
 * follow and the range of the first one, or returns false for a byte that
 * cannot start a character.
 */
static bool
ws_utf8_lead(uint8_t b, uint32_t *rem, uint32_t *lo, uint32_t *hi)
{
    *lo = 0x80;
    *hi = 0xBF;
    if (b < 0x80) {
        *rem = 0;
    } else if (b < 0xC2) {
        /* 0x80-0xBF continuation, 0xC0-0xC1 only ever overlong. */
        return false;
    } else if (b < 0xE0) {
        *rem = 1;
    } else if (b < 0xF0) {
        *rem = 2;
        if (b == 0xE0) {
            *lo = 0xA0;     // below is overlong: under U+0800
        } else if (b == 0xED) {
            *hi = 0x9F;     // above is a surrogate: U+D800-U+DFFF
        }
    } else if (b < 0xF5) {
        *rem = 3;
        if (b == 0xF0) {
            *lo = 0x90;     // below is overlong: under U+10000
        } else if (b == 0xF4) {
            *hi = 0x8F;     // above is over U+10FFFF
        }
    } else {
        /* 0xF5-0xFF only start values over U+10FFFF or 5/6-byte forms. */
        return false;
    }
    return true;
}

void
ws_utf8_init(struct ws_utf8 *v)
{
    v->state = 0;
}

bool
ws_utf8_feed(struct ws_utf8 *v, const uint8_t *p, size_t n)
{
    uint32_t rem;
    uint32_t lo;
    uint32_t hi;
    size_t i = 0;

    if (v->state == WS_UTF8_FAILED) {
        return false;
    }
    rem = v->state & 3;
    lo = (v->state >> 8) & 0xFF;
    hi = (v->state >> 16) & 0xFF;

    while (i < n) {
        uint8_t b;

        if (rem == 0) {
            /* Text is mostly ASCII: skip it a word at a time. */
            while (n - i >= 8) {
                uint64_t word;

                memcpy(&word, p + i, sizeof(word));
                if ((word & WS_UTF8_ASCII_MASK) != 0) {
                    break;
                }
                i += 8;
            }
            if (i == n) {
                break;
            }
            b = p[i++];
            if (b >= 0x80 && !ws_utf8_lead(b, &rem, &lo, &hi)) {
                v->state = WS_UTF8_FAILED;
                return false;
            }
            continue;
        }
        b = p[i++];
        if (b < lo || b > hi) {
            v->state = WS_UTF8_FAILED;
            return false;
        }
        rem--;
        lo = 0x80;
        hi = 0xBF;
    }

    v->state = rem == 0 ? 0 : (rem | (lo << 8) | (hi << 16));
    return true;
}

bool
ws_utf8_complete(const struct ws_utf8 *v)
{
    return v->state == 0;
}
