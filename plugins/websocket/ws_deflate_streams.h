/*
 * The zlib streams of permessage-deflate, shared by ws_deflate.c (threads,
 * connections, decompressing) and ws_deflate_send.c (compressing).  Private
 * to those two files.
 *
 * Without context takeover every message stands alone, so one inflater
 * and one deflater per window size serve every connection of a thread:
 * they live in a struct ws_zthread that the thread makes on first use
 * (found again through a pthread key) and that ws_deflate_stop frees.
 * Memory per thread, with zlib's formulas: inflate 2^15 + ~7 KiB, deflate
 * 2^(bits+2) + 2^(8+9) per window size in use (256 KiB at 15 bits), and a
 * 16 KiB output scratch; nothing per connection.
 *
 * With context takeover a connection owns its streams (struct
 * ws_deflate_conn in its in-progress record, which then stays while the
 * connection lives): its deflater uses memLevel bits - 7, so 2^(bits+3)
 * bytes, and its inflater 2^bits + ~7 KiB.
 */
#ifndef TORPOR_PLUGINS_WS_DEFLATE_STREAMS_H
#define TORPOR_PLUGINS_WS_DEFLATE_STREAMS_H

#include <stdbool.h>
#include <stdint.h>

#include <zlib.h>

#include "ws.h"

/* Inflated bytes that fit without a heap buffer. */
#define WS_INFLATE_SCRATCH_BYTES 16384

#define WS_DEFLATE_N_BITS (WS_DEFLATE_BITS_MAX - WS_DEFLATE_SERVER_BITS_MIN + 1)

/* One thread's shared streams, used by one message at a time. */
struct ws_zthread {
    struct ws_zthread *next; /* in ws_deflate_threads.all, under lock */
    bool inflate_ready;
    bool deflate_ready[WS_DEFLATE_N_BITS];
    uint8_t deflate_level[WS_DEFLATE_N_BITS];
    z_stream inflate;
    z_stream deflate[WS_DEFLATE_N_BITS];
    uint8_t scratch[WS_INFLATE_SCRATCH_BYTES];
};

/*
 * A connection's own streams, while context takeover is agreed.
 * Missing: these streams are not part of the connection's serialisable record, so a restart that hands sockets over cannot keep such a connection.
 */
struct ws_deflate_conn {
    bool deflate_ready;
    bool inflate_ready;
    z_stream deflate;
    z_stream inflate;
};

/*
 * ws_zthread_get finds or makes the calling thread's streams; NULL when
 * memory runs out.
 */
struct ws_zthread *ws_zthread_get(struct ws_state *ws);

/*
 * ws_deflate_conn_get returns c's own streams, making its in-progress
 * record and them if needed; NULL when memory runs out.  c's loop.
 */
struct ws_deflate_conn *ws_deflate_conn_get(struct ws_conn *c);

#endif /* TORPOR_PLUGINS_WS_DEFLATE_STREAMS_H */
