/*
 * The sizes of the server's per-connection and per-room records.  This
 * file alone reaches into the core's and the plugin's internal headers,
 * so that the bench reports the layout of the very tree it was built
 * from.
 */
#include "build-config.h"

#include "bench/idle_sizes.h"
#include "core/object_internal.h"
#include "plugins/websocket/ws.h"

void
idle_sizes_print(FILE *out)
{
    /* The core keeps the plugin's record and its own in one slot. */
    fprintf(
        out,
        "record_bytes=%zu (ws_conn %zu + torpor_conn %zu) ws_busy_bytes=%zu object_bytes=%zu\n",
        WS_CONN_SPAN + sizeof(struct torpor_conn), sizeof(struct ws_conn),
        sizeof(struct torpor_conn), sizeof(struct ws_busy),
        sizeof(struct torpor_object));
}
