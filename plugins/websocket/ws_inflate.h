/*
 * Decompressing one permessage-deflate message with a caller's z_stream,
 * under a limit on the inflated size.  Needs only zlib, so a fuzz target
 * can drive it on its own.
 */
#ifndef TORPOR_PLUGINS_WS_INFLATE_H
#define TORPOR_PLUGINS_WS_INFLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#include <torpor/torpor.h>

/* What a sender strips from the end of each compressed message. */
extern const uint8_t ws_deflate_tail[4];

/* A decompressed message; data is either scratch or heap (then owned). */
struct ws_inflated {
    const uint8_t *data;
    size_t len;
    uint8_t *heap; /* to free with ws_deflate_inflated_free, or NULL */
};

/*
 * ws_inflate_message inflates in[0..len) plus the 0x00 0x00 0xff 0xff that
 * RFC 7692 7.2.2 strips, with s (raw DEFLATE, ready for this message),
 * into scratch[0..scratch_cap) and past it into the heap.  Output over
 * limit bytes stops decompression at once.  keep_context: s must go on
 * after a final block (context takeover), so its window is carried over.
 * Returns TORPOR_OK with *out set, TORPOR_ELIMIT past limit, TORPOR_EINVAL
 * for data that is not DEFLATE or that goes on after a final block,
 * TORPOR_ENOMEM.
 */
torpor_err ws_inflate_message(z_stream *s, const uint8_t *in, size_t len,
                              size_t limit, uint8_t *scratch,
                              size_t scratch_cap, bool keep_context,
                              struct ws_inflated *out);

#endif /* TORPOR_PLUGINS_WS_INFLATE_H */
