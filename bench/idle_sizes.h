/*
 * What the server keeps per connection and per room, as its own headers
 * lay it out; for torpor-idle-bench --sizes.
 */
#ifndef TORPOR_BENCH_IDLE_SIZES_H
#define TORPOR_BENCH_IDLE_SIZES_H

#include <stdio.h>

/*
 * idle_sizes_print writes one line of NAME=BYTES fields: the records of
 * an idle connection in the core and in the websocket transport, and the
 * record of a hibernating room.
 */
void idle_sizes_print(FILE *out);

#endif /* TORPOR_BENCH_IDLE_SIZES_H */
