/*
 * core/conn_store.c: a loop's connection records, in blocks of slots.
 *
 * Why not malloc: an idle connection is a few dozen bytes, and malloc
 * would add a header and round each record up, then scatter the records
 * of a room among the transient buffers of handshakes.  A block is mapped
 * on its own, aligned to its size, and hands out slots from a bump index
 * first, so only the pages that hold records count in RSS; freed slots go
 * on the block's free list.  A block that empties is unmapped, unless it
 * is the last one with room.
 */
#include "build-config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/conn_store.h"
#include "core/loader.h"
#include "core/object_internal.h"
#include "core/room_ops.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define STORE_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define STORE_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define STORE_POISON(p, n) ((void)(p), (void)(n))
#define STORE_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define STORE_BLOCK_BYTES ((size_t)65536)

/*
 * A record's ref: its block's number + 1 above its slot's index.  A slot
 * is at least 16 bytes, so a block has fewer than 4096.
 */
#define STORE_REF_SLOT_BITS 12
#define STORE_BLOCKS_MAX ((1u << (32 - STORE_REF_SLOT_BITS)) - 1)

/* Transports a store keeps records for; one in practice. */
#define STORE_KINDS_MAX 4

struct store_block;

/* The records of one transport in one store. */
struct store_kind {
    struct tpr_conn_store *store;
    struct torpor_plugin_ctx *transport;
    uint32_t span; /* the transport's part, before the core's */
    uint32_t slot_bytes;
    uint32_t slots_offset;       /* of slot 0 from the block's start */
    uint32_t nslots;             /* per block */
    struct store_block *partial; /* blocks with a free slot */
};

struct store_block {
    struct store_kind *kind;
    struct store_block *prev; /* in kind->partial */
    struct store_block *next;
    uint8_t *free;   /* freed slots, linked through word 0 */
    uint32_t number; /* index in store->blocks */
    uint32_t used;
    uint32_t fresh;    /* slots from here on were never used */
    uint64_t in_use[]; /* a bit per slot */
};

struct tpr_conn_store {
    struct tpr_shard *shard;
    struct store_kind kinds[STORE_KINDS_MAX];
    size_t nkinds;
    struct store_block **blocks; /* NULL where one was unmapped */
    uint32_t nblocks;
    uint32_t cap_blocks;
};

torpor_err
tpr_conn_store_new(struct tpr_shard *shard, struct tpr_conn_store **out)
{
    struct tpr_conn_store *store = calloc(1, sizeof(*store));

    *out = store;
    if (store == NULL) {
        return TORPOR_ENOMEM;
    }
    store->shard = shard;
    return TORPOR_OK;
}

static struct store_block *
store_block_of(const void *p)
{
    return (struct store_block *)((uintptr_t)p & ~(STORE_BLOCK_BYTES - 1));
}

static uint8_t *
store_slot(const struct store_block *b, uint32_t i)
{
    return (uint8_t *)b + b->kind->slots_offset
           + (size_t)i * b->kind->slot_bytes;
}

static uint32_t
store_index(const struct store_block *b, const uint8_t *slot)
{
    size_t off = (size_t)(slot - (const uint8_t *)b) - b->kind->slots_offset;

    return (uint32_t)(off / b->kind->slot_bytes);
}

/* store_kind_of finds transport's records, making their kind if new. */
static struct store_kind *
store_kind_of(struct tpr_conn_store *store, struct torpor_plugin_ctx *transport)
{
    for (size_t i = 0; i < store->nkinds; i++) {
        if (store->kinds[i].transport == transport) {
            return &store->kinds[i];
        }
    }
    if (store->nkinds == STORE_KINDS_MAX) {
        return NULL;
    }
    struct store_kind *k = &store->kinds[store->nkinds++];
    uint32_t bytes = transport->ops.transport.conn_bytes;
    size_t head = sizeof(struct store_block);
    uint32_t n;

    k->store = store;
    k->transport = transport;
    k->span = bytes > 0 ? (uint32_t)TORPOR_CONN_SPAN(bytes)
                        : (uint32_t)sizeof(void *);
    k->slot_bytes = k->span + (uint32_t)sizeof(torpor_conn);
    /* As many slots as fit beside a header with a bit for each. */
    n = (uint32_t)((STORE_BLOCK_BYTES - head) * 8 / (8 * k->slot_bytes + 1));
    for (;; n--) {
        size_t off = (head + (n + 63) / 64 * 8 + 15) & ~(size_t)15;
        if (off + (size_t)n * k->slot_bytes <= STORE_BLOCK_BYTES) {
            k->slots_offset = (uint32_t)off;
            break;
        }
    }
    k->nslots = n;
    _Static_assert(sizeof(torpor_conn) >= 16,
                   "a block must hold fewer slots than a ref can name");
    return k;
}

/* store_map_block maps one block, aligned to its size. */
static struct store_block *
store_map_block(void)
{
    size_t len = 2 * STORE_BLOCK_BYTES;
    uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED) {
        return NULL;
    }
    uint8_t *a = (uint8_t *)(((uintptr_t)p + STORE_BLOCK_BYTES - 1)
                             & ~(STORE_BLOCK_BYTES - 1));
    size_t head = (size_t)(a - p);
    if (head > 0) {
        munmap(p, head);
    }
    if (len - head - STORE_BLOCK_BYTES > 0) {
        munmap(a + STORE_BLOCK_BYTES, len - head - STORE_BLOCK_BYTES);
    }
    return (struct store_block *)a;
}

static void
store_partial_add(struct store_kind *k, struct store_block *b)
{
    b->prev = NULL;
    b->next = k->partial;
    if (k->partial != NULL) {
        k->partial->prev = b;
    }
    k->partial = b;
}

static void
store_partial_remove(struct store_kind *k, struct store_block *b)
{
    if (b->prev != NULL) {
        b->prev->next = b->next;
    } else {
        k->partial = b->next;
    }
    if (b->next != NULL) {
        b->next->prev = b->prev;
    }
    b->prev = NULL;
    b->next = NULL;
}

/* store_block_new maps a block for k and gives it a number. */
static struct store_block *
store_block_new(struct store_kind *k)
{
    struct tpr_conn_store *store = k->store;
    uint32_t number = 0;

    while (number < store->nblocks && store->blocks[number] != NULL) {
        number++;
    }
    if (number == STORE_BLOCKS_MAX) {
        return NULL;
    }
    if (number == store->cap_blocks) {
        uint32_t cap = store->cap_blocks == 0 ? 16 : store->cap_blocks * 2;
        struct store_block **t =
            realloc(store->blocks, (size_t)cap * sizeof(*t));
        if (t == NULL) {
            return NULL;
        }
        store->blocks = t;
        store->cap_blocks = cap;
    }
    struct store_block *b = store_map_block();
    if (b == NULL) {
        return NULL;
    }
    b->kind = k;
    b->number = number;
    store->blocks[number] = b;
    if (number == store->nblocks) {
        store->nblocks++;
    }
    /* Slots are poisoned until handed out; the header and map are not. */
    STORE_POISON((uint8_t *)b + k->slots_offset,
                 STORE_BLOCK_BYTES - k->slots_offset);
    store_partial_add(k, b);
    return b;
}

static void
store_block_unmap(struct tpr_conn_store *store, struct store_block *b)
{
    store->blocks[b->number] = NULL;
    while (store->nblocks > 0 && store->blocks[store->nblocks - 1] == NULL) {
        store->nblocks--;
    }
    /* The shadow of unmapped memory must not stay poisoned for its
     * next owner. */
    STORE_UNPOISON(b, STORE_BLOCK_BYTES);
    munmap(b, STORE_BLOCK_BYTES);
}

torpor_err
tpr_conn_new(struct tpr_conn_store *store, struct torpor_plugin_ctx *transport,
             void *tconn, torpor_conn **out)
{
    struct store_kind *k = store_kind_of(store, transport);
    struct store_block *b;
    uint8_t *slot;

    *out = NULL;
    if (k == NULL) {
        return TORPOR_ELIMIT;
    }
    b = k->partial != NULL ? k->partial : store_block_new(k);
    if (b == NULL) {
        return TORPOR_ENOMEM;
    }
    if (b->free != NULL) {
        slot = b->free;
        STORE_UNPOISON(slot, k->slot_bytes);
        memcpy(&b->free, slot, sizeof(b->free));
    } else {
        slot = store_slot(b, b->fresh++);
        STORE_UNPOISON(slot, k->slot_bytes);
    }
    memset(slot, 0, k->slot_bytes);
    uint32_t i = store_index(b, slot);
    b->in_use[i / 64] |= (uint64_t)1 << (i % 64);
    if (++b->used == k->nslots) {
        store_partial_remove(k, b);
    }
    if (transport->ops.transport.conn_bytes > 0) {
        memcpy(slot, tconn, transport->ops.transport.conn_bytes);
    } else {
        memcpy(slot, &tconn, sizeof(tconn));
    }
    *out = (torpor_conn *)(slot + k->span);
    return TORPOR_OK;
}

void
tpr_conn_delete(torpor_conn *conn)
{
    struct store_block *b = store_block_of(conn);
    struct store_kind *k = b->kind;
    uint8_t *slot = (uint8_t *)conn - k->span;
    uint32_t i = store_index(b, slot);

    b->in_use[i / 64] &= ~((uint64_t)1 << (i % 64));
    if (b->used-- == k->nslots) {
        store_partial_add(k, b);
    }
    if (b->used == 0 && (k->partial != b || b->next != NULL)) {
        /* Another block has room: this one goes back to the system. */
        store_partial_remove(k, b);
        store_block_unmap(k->store, b);
        return;
    }
    memcpy(slot, &b->free, sizeof(b->free));
    b->free = slot;
    STORE_POISON(slot, k->slot_bytes);
}

uint32_t
tpr_conn_ref(const torpor_conn *conn)
{
    const struct store_block *b = store_block_of(conn);
    uint32_t i = store_index(b, (const uint8_t *)conn - b->kind->span);

    return (b->number + 1) << STORE_REF_SLOT_BITS | i;
}

torpor_conn *
tpr_conn_near(const torpor_conn *near, uint32_t ref)
{
    if (ref == 0) {
        return NULL;
    }
    const struct tpr_conn_store *store = store_block_of(near)->kind->store;
    const struct store_block *b =
        store->blocks[(ref >> STORE_REF_SLOT_BITS) - 1];
    uint32_t i = ref & ((1u << STORE_REF_SLOT_BITS) - 1);

    return (torpor_conn *)(store_slot(b, i) + b->kind->span);
}

/*
 * store_walk_block visits the records of block number from slot *i on,
 * counting them in *seen up to max.  Returns false when max is reached
 * with *i the next slot to look at; true when the block is done, or gone.
 * The block is looked up again after each callback, which may unmap it.
 */
static bool
store_walk_block(struct tpr_conn_store *store,
                 const struct torpor_plugin_ctx *transport, uint32_t number,
                 uint32_t *i, uint32_t *seen, uint32_t max,
                 torpor_conn_walk_cb cb, void *arg)
{
    struct store_block *b = store->blocks[number];

    while (b != NULL && b->kind->transport == transport && *i < b->fresh) {
        uint64_t word = b->in_use[*i / 64] >> (*i % 64);

        if (word == 0) {
            /* Nothing more in this word: on to the next one. */
            *i = (*i / 64 + 1) * 64;
            continue;
        }
        *i += (uint32_t)__builtin_ctzll(word);
        if (*i >= b->fresh) {
            break;
        }
        uint8_t *slot = store_slot(b, *i);
        torpor_conn *conn = (torpor_conn *)(slot + b->kind->span);
        if (conn->transport_done) {
            (*i)++;
            continue;
        }
        if (*seen == max) {
            return false;
        }
        (*seen)++;
        (*i)++;
        cb(arg, tpr_conn_tconn(conn));
        b = store->blocks[number];
    }
    return true;
}

bool
tpr_conn_store_walk(struct tpr_conn_store *store,
                    const struct torpor_plugin_ctx *transport, uint64_t *cursor,
                    uint32_t max, torpor_conn_walk_cb cb, void *arg)
{
    uint32_t number = (uint32_t)(*cursor >> STORE_REF_SLOT_BITS);
    uint32_t i = (uint32_t)(*cursor & ((1u << STORE_REF_SLOT_BITS) - 1));
    uint32_t seen = 0;

    /* nblocks is read each round: a callback may map or unmap blocks. */
    for (; number < store->nblocks; number++, i = 0) {
        if (!store_walk_block(store, transport, number, &i, &seen, max, cb,
                              arg)) {
            *cursor = (uint64_t)number << STORE_REF_SLOT_BITS | i;
            return false;
        }
    }
    *cursor = 0;
    return true;
}

struct tpr_shard *
tpr_conn_shard(const torpor_conn *conn)
{
    if (conn->outside) {
        return conn->object->shard;
    }
    return store_block_of(conn)->kind->store->shard;
}

struct torpor_plugin_ctx *
tpr_conn_transport(const torpor_conn *conn)
{
    if (conn->outside) {
        return tpr_publish_transport(conn);
    }
    return store_block_of(conn)->kind->transport;
}

void *
tpr_conn_tconn(const torpor_conn *conn)
{
    if (conn->outside) {
        return tpr_publish_tconn(conn);
    }
    const struct store_kind *k = store_block_of(conn)->kind;
    uint8_t *part = (uint8_t *)conn - k->span;
    void *tconn;

    if (k->transport->ops.transport.conn_bytes > 0) {
        return part;
    }
    memcpy(&tconn, part, sizeof(tconn));
    return tconn;
}

void
tpr_conn_store_free(struct tpr_conn_store *store)
{
    if (store == NULL) {
        return;
    }
    for (uint32_t n = 0; n < store->nblocks; n++) {
        struct store_block *b = store->blocks[n];
        if (b == NULL) {
            continue;
        }
        const struct torpor_transport_ops *t =
            &b->kind->transport->ops.transport;
        for (uint32_t i = 0; i < b->fresh; i++) {
            if ((b->in_use[i / 64] & ((uint64_t)1 << (i % 64))) == 0) {
                continue;
            }
            torpor_conn *conn =
                (torpor_conn *)(store_slot(b, i) + b->kind->span);
            if (!conn->transport_done && t->conn_bytes > 0) {
                t->conn_discard(store_slot(b, i));
            }
            tpr_conn_extra_free(conn);
        }
        store_block_unmap(store, b);
    }
    free(store->blocks);
    free(store);
}
