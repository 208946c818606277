/*
 * Incremental UTF-8 validation (RFC 3629) for text messages, which RFC 6455
 * 8.1 requires to be valid as a whole while they may arrive split across
 * frames and reads at any byte.
 */
#ifndef TORPOR_PLUGINS_WS_UTF8_H
#define TORPOR_PLUGINS_WS_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The validator's whole state is this one word, so it can sit in a
 * hibernated connection record as is.  Zero is the start state.
 */
struct ws_utf8 {
    uint32_t state;
};

/* ws_utf8_init puts v in the start state, ready for a new message. */
void ws_utf8_init(struct ws_utf8 *v);

/*
 * ws_utf8_feed validates the next n bytes of a message.  It returns false as
 * soon as p holds a byte that no continuation could make valid (an overlong
 * form, a surrogate, a code point above U+10FFFF, a stray continuation byte,
 * 0xC0, 0xC1, 0xF5-0xFF), and returns false on every later call until
 * ws_utf8_init.  A sequence cut off at the end of p is not an error: it may
 * complete in the next call; ws_utf8_complete tells at the end of the
 * message.  p may be NULL when n is 0.
 */
bool ws_utf8_feed(struct ws_utf8 *v, const uint8_t *p, size_t n);

/*
 * ws_utf8_complete tells whether everything fed so far is valid UTF-8 that
 * ends on a character boundary, which is what a final frame must reach.
 */
bool ws_utf8_complete(const struct ws_utf8 *v);

#endif /* TORPOR_PLUGINS_WS_UTF8_H */
