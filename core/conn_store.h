/*
 * core/conn_store.h: where a loop keeps its connection records.
 *
 * A record is one slot: the transport's part (the conn_bytes of its
 * transport ops, rounded up to 8; for a transport without conn_bytes, a
 * pointer to its own record) followed by the core's struct torpor_conn.
 * Slots of one transport are carved out of 64 KiB blocks aligned to their
 * size, so a record finds its block, and through it its transport and
 * loop, from its own address: it stores neither, and has no malloc header.
 * Only the loop's thread allocates and frees; there are no locks.
 */
#ifndef TORPOR_CORE_CONN_STORE_H
#define TORPOR_CORE_CONN_STORE_H

#include <torpor/plugin.h>

struct tpr_shard;
struct tpr_conn_store;

/* tpr_conn_store_new makes the store of shard.  TORPOR_ENOMEM. */
torpor_err tpr_conn_store_new(struct tpr_shard *shard,
                              struct tpr_conn_store **out);

/*
 * tpr_conn_store_free frees every block.  Records still in it are those
 * whose transport had not released them: their transport's conn_discard
 * frees what they hold first.  Once no loop runs and the objects are
 * freed, before the transports are destroyed.
 */
void tpr_conn_store_free(struct tpr_conn_store *store);

/*
 * tpr_conn_new makes a zeroed record of transport: with conn_bytes, its
 * transport part is a copy of tconn's first conn_bytes; without, it holds
 * tconn itself.  TORPOR_ENOMEM, TORPOR_ELIMIT past the transports a store
 * can hold.  On the store's loop.
 */
torpor_err tpr_conn_new(struct tpr_conn_store *store,
                        struct torpor_plugin_ctx *transport, void *tconn,
                        torpor_conn **out);

/* tpr_conn_delete gives conn's slot back.  On conn's loop. */
void tpr_conn_delete(torpor_conn *conn);

/*
 * tpr_conn_ref names conn in 32 bits, never 0, within its store: a block
 * number and a slot.  tpr_conn_near gives back the record that ref names
 * in the store of near, NULL for 0.  On conn's loop.
 */
uint32_t tpr_conn_ref(const torpor_conn *conn);
torpor_conn *tpr_conn_near(const torpor_conn *near, uint32_t ref);

/*
 * tpr_conn_store_walk is the host's conn_walk over one store: it visits
 * the records of transport that it is not done with, from *cursor on, at
 * most max, and returns true at the end of the store.  cb may free
 * records, or make them.  On the store's loop.
 */
bool tpr_conn_store_walk(struct tpr_conn_store *store,
                         const struct torpor_plugin_ctx *transport,
                         uint64_t *cursor, uint32_t max,
                         torpor_conn_walk_cb cb, void *arg);

/* tpr_conn_shard: the shard conn lives on.  Any thread. */
struct tpr_shard *tpr_conn_shard(const torpor_conn *conn);

/* tpr_conn_transport: conn's transport. */
struct torpor_plugin_ctx *tpr_conn_transport(const torpor_conn *conn);

/* tpr_conn_tconn: what the transport's ops take for conn. */
void *tpr_conn_tconn(const torpor_conn *conn);

#endif /* TORPOR_CORE_CONN_STORE_H */
