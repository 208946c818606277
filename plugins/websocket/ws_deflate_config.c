/*
 * The compression keys of [transport.websocket] (permessage-deflate, RFC
 * 7692).  Each may differ by route (route.NAME.compression, see
 * ws_route.c).  Keys arrive one by one on the main thread, before start.
 *
 * compression = on
 *     on: take permessage-deflate with clients that offer it (every
 *     browser does); off: never, and RSV1 frames are refused.  In
 *     the default mode (no context takeover) it costs no memory per
 *     connection: about 300 KiB of zlib streams per event loop thread.  It
 *     costs CPU: zlib compresses JSON at about 80 MB/s per core at level 6
 *     (240 MB/s at level 1) and inflates it at about 900 MB/s, and a
 *     message of a few hundred bytes costs a few microseconds; a
 *     broadcast is compressed once for all its recipients.
 *
 * compression_threshold = 128
 *     Messages shorter than this many bytes go out uncompressed.  Below
 *     about a hundred bytes deflate saves a handful of bytes at most
 *     (its block header and Huffman codes eat most of the gain) while the
 *     per-message cost stays; JSON of a few hundred bytes already shrinks
 *     by a third or more.
 *
 * compression_level = 6
 *     zlib's level, 1 (fastest) to 9 (smallest); 6 is zlib's default.  On
 *     JSON, level 1 is about three times faster and its output a fifth
 *     larger than level 6's.
 *
 * compression_context_takeover = no
 *     no: the server always answers server_no_context_takeover and
 *     client_no_context_takeover, so no connection keeps zlib state.  yes:
 *     a client that does not ask otherwise keeps a compression context per
 *     direction across messages, which compresses a stream of similar
 *     messages better but costs each such connection its own zlib streams,
 *     made on first use and kept until it closes, even while idle: about
 *     2^(bits+3) bytes to compress and 2^bits + 7 KiB to decompress,
 *     295 KiB per connection at 15 bits, 43 KiB at 12.  Each compressed
 *     message is then compressed once per such recipient.
 *
 * compression_max_window_bits = 15
 *     Largest LZ77 window, as log2 of its bytes (9..15), that the server
 *     compresses with, and, with context takeover, that it asks clients
 *     to use when they allow it.  Smaller windows use less memory and
 *     compress a little worse.
 */
#include "ws_deflate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
ws_deflate_config_defaults(struct ws_deflate_config *cfg)
{
    cfg->enabled = true;
    cfg->context_takeover = false;
    cfg->level = 6;
    cfg->max_window_bits = WS_DEFLATE_BITS_MAX;
    cfg->threshold_bytes = 128;
}

/* ws_deflate_config_flag parses one of two words into *out. */
static torpor_err
ws_deflate_config_flag(const char *value, const char *yes, const char *no,
                       bool *out, char *why, size_t why_size)
{
    if (strcmp(value, yes) == 0) {
        *out = true;
        return TORPOR_OK;
    }
    if (strcmp(value, no) == 0) {
        *out = false;
        return TORPOR_OK;
    }
    if (why != NULL && why_size > 0) {
        snprintf(why, why_size, "expected \"%s\" or \"%s\"", yes, no);
    }
    return TORPOR_EINVAL;
}

/* ws_deflate_config_uint parses a plain decimal integer in [min, max]. */
static torpor_err
ws_deflate_config_uint(const char *value, uint64_t min, uint64_t max,
                       uint64_t *out, char *why, size_t why_size)
{
    unsigned long long v;
    char *end;

    if (value[0] >= '0' && value[0] <= '9') {
        errno = 0;
        v = strtoull(value, &end, 10);
        if (errno == 0 && *end == '\0' && v >= min && v <= max) {
            *out = v;
            return TORPOR_OK;
        }
    }
    if (why != NULL && why_size > 0) {
        snprintf(why, why_size, "expected an integer from %llu to %llu",
                 (unsigned long long)min, (unsigned long long)max);
    }
    return TORPOR_EINVAL;
}

torpor_err
ws_deflate_config_set(struct ws_deflate_config *cfg, const char *key,
                      const char *value, char *why, size_t why_size)
{
    uint64_t v;
    torpor_err err;

    if (strcmp(key, "compression") == 0) {
        return ws_deflate_config_flag(value, "on", "off", &cfg->enabled, why,
                                      why_size);
    }
    if (strcmp(key, "compression_context_takeover") == 0) {
        return ws_deflate_config_flag(value, "yes", "no",
                                      &cfg->context_takeover, why, why_size);
    }
    if (strcmp(key, "compression_threshold") == 0) {
        err = ws_deflate_config_uint(value, 0, UINT64_C(1) << 30, &v, why,
                                     why_size);
        if (err == TORPOR_OK) {
            cfg->threshold_bytes = (size_t)v;
        }
        return err;
    }
    if (strcmp(key, "compression_level") == 0) {
        err = ws_deflate_config_uint(value, 1, 9, &v, why, why_size);
        if (err == TORPOR_OK) {
            cfg->level = (uint8_t)v;
        }
        return err;
    }
    if (strcmp(key, "compression_max_window_bits") == 0) {
        err = ws_deflate_config_uint(value, WS_DEFLATE_SERVER_BITS_MIN,
                                     WS_DEFLATE_BITS_MAX, &v, why, why_size);
        if (err == TORPOR_OK) {
            cfg->max_window_bits = (uint8_t)v;
        }
        return err;
    }
    return TORPOR_ENOKEY;
}

void
ws_deflate_config_copy_key(struct ws_deflate_config *dst,
                           const struct ws_deflate_config *src,
                           const char *key)
{
    if (strcmp(key, "compression") == 0) {
        dst->enabled = src->enabled;
    } else if (strcmp(key, "compression_context_takeover") == 0) {
        dst->context_takeover = src->context_takeover;
    } else if (strcmp(key, "compression_threshold") == 0) {
        dst->threshold_bytes = src->threshold_bytes;
    } else if (strcmp(key, "compression_level") == 0) {
        dst->level = src->level;
    } else if (strcmp(key, "compression_max_window_bits") == 0) {
        dst->max_window_bits = src->max_window_bits;
    }
}
