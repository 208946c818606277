/*
 * Corking: the frames that one pass of a loop sends to a connection leave
 * in one system call at the end of the pass, not in one call each.
 *
 * A broadcast hands the same frame to every connection of a room, one
 * connection after the other, and a read from a busy sender brings many
 * messages at once.  Written at once, every frame costs every recipient
 * one send(), and the kernel's cost per call is most of the cost of a
 * delivered frame (BENCHMARKS.md, "Against the alternatives").  Held
 * until the loop has run what is ready, they go out with one sendmsg()
 * per connection and pass.
 *
 * Each loop has one struct ws_cork, made on first use and only touched on
 * that loop: a table from connection to its held frames, and one task
 * that the first held frame of a pass posts and that writes them all.
 * Nothing is kept per connection but the WS_F_CORKED flag: an idle
 * connection is as small as before.  A connection holds at most
 * WS_CORK_FRAMES frames and WS_CORK_BYTES bytes; what would go past
 * either is written at once, so a pass never holds more than that per
 * connection.
 *
 * Order: only a connection with nothing queued is corked (a queued one
 * appends to its queue, behind what waits there), and every write that is
 * not a corked frame (control frames, the 101, raw bytes) first writes
 * what the connection holds (ws_cork_release).
 */
#include "ws.h"

#include <stdlib.h>
#include <string.h>

/* Held frames per connection and pass; then they are written at once. */
#define WS_CORK_FRAMES 32

/* Held bytes per connection and pass, likewise; a larger frame goes now. */
#define WS_CORK_BYTES 65536

/*
 * Past these sizes a pass's tables are freed once written, so that one
 * burst does not keep its memory for good: 128 KiB of slots, 256 KiB of
 * entries.
 */
#define WS_CORK_KEEP_SLOTS 4096
#define WS_CORK_KEEP_ENTRIES 16384

struct ws_cork_entry {
    torpor_frame *frame;
    uint32_t next; /* the connection's next entry; 0 ends the chain */
};

/* One corked connection of this pass; c is NULL once written or dropped. */
struct ws_cork_slot {
    struct ws_conn *c;
    uint32_t head; /* first entry, 1-based */
    uint32_t tail; /* last entry, 1-based */
    uint32_t count;
    uint32_t pos; /* where the slot sits in index */
    size_t bytes;
};

struct ws_cork {
    torpor_task task;     /* first: the task is the cork */
    struct ws_cork *next; /* in ws_state.corks */
    torpor_loop *loop;
    bool posted;   /* task is queued on loop */
    bool orphaned; /* the plugin is gone: the task frees the cork, no more */

    /* Connections in the order their first frame came. */
    struct ws_cork_slot *slots;
    uint32_t n_slots;
    uint32_t cap_slots;

    /* Open addressing from connection to slot: slot number + 1, 0 free. */
    uint32_t *index;
    uint32_t index_cap; /* a power of two, over twice n_slots */

    /* Frames of every slot; entry i is entries[i - 1]. */
    struct ws_cork_entry *entries;
    uint32_t n_entries;
    uint32_t cap_entries;
};

static void ws_cork_run(torpor_task *task);

/* ws_cork_hash: c's home in an index of cap (a power of two, 2 or more). */
static uint32_t
ws_cork_hash(const struct ws_conn *c, uint32_t cap)
{
    /* Fibonacci hashing: the product's top bits mix every address bit. */
    uint64_t h = (uint64_t)(uintptr_t)c * UINT64_C(0x9E3779B97F4A7C15);

    return (uint32_t)(h >> (64 - __builtin_ctz(cap)));
}

/* ws_cork_find: c's slot in k, or NULL. */
static struct ws_cork_slot *
ws_cork_find(struct ws_cork *k, const struct ws_conn *c)
{
    if (k->index_cap == 0) {
        return NULL;
    }
    for (uint32_t pos = ws_cork_hash(c, k->index_cap);;
         pos = (pos + 1) & (k->index_cap - 1)) {
        uint32_t s = k->index[pos];

        if (s == 0) {
            return NULL;
        }
        if (k->slots[s - 1].c == c) {
            return &k->slots[s - 1];
        }
    }
}

/* ws_cork_of: the cork of c's loop, made on first use; NULL without memory. */
static struct ws_cork *
ws_cork_of(struct ws_conn *c)
{
    struct ws_state *ws = ws_of(c);
    torpor_loop *loop = ws_loop(c);
    struct ws_cork *k = __atomic_load_n(&ws->corks, __ATOMIC_ACQUIRE);

    /* A handful of loops: a scan beats any index. */
    for (; k != NULL; k = k->next) {
        if (k->loop == loop) {
            return k;
        }
    }
    k = calloc(1, sizeof(*k));
    if (k == NULL) {
        return NULL;
    }
    k->task.run = ws_cork_run;
    k->loop = loop;
    /* Only this loop pushes its own cork; others may push theirs. */
    k->next = __atomic_load_n(&ws->corks, __ATOMIC_RELAXED);
    while (!__atomic_compare_exchange_n(&ws->corks, &k->next, k, true,
                                        __ATOMIC_RELEASE, __ATOMIC_RELAXED)) {
    }
    return k;
}

/*
 * ws_cork_double gives arr, of *cap elements of size bytes, twice the room
 * (first when empty); NULL, arr untouched, without memory.
 */
static void *
ws_cork_double(void *arr, size_t size, uint32_t *cap, uint32_t first)
{
    uint32_t want = *cap == 0 ? first : *cap * 2;
    void *p;

    if (want < *cap) {
        return NULL;
    }
    p = realloc(arr, (size_t)want * size);
    if (p != NULL) {
        *cap = want;
    }
    return p;
}

/* ws_cork_grow makes room for one more slot and entry. */
static bool
ws_cork_grow(struct ws_cork *k)
{
    if (k->n_entries == k->cap_entries) {
        void *p = ws_cork_double(k->entries, sizeof(*k->entries),
                                 &k->cap_entries, 256);

        if (p == NULL) {
            return false;
        }
        k->entries = p;
    }
    if (k->n_slots == k->cap_slots) {
        void *p =
            ws_cork_double(k->slots, sizeof(*k->slots), &k->cap_slots, 64);

        if (p == NULL) {
            return false;
        }
        k->slots = p;
    }
    if ((k->n_slots + 1) * 2 >= k->index_cap) {
        uint32_t cap = k->index_cap == 0 ? 128 : k->index_cap * 2;
        uint32_t *index = calloc(cap, sizeof(*index));

        if (index == NULL) {
            return false;
        }
        /* Rehash; written and dropped slots go with the rest. */
        for (uint32_t i = 0; i < k->n_slots; i++) {
            uint32_t pos = ws_cork_hash(k->slots[i].c, cap);

            while (index[pos] != 0) {
                pos = (pos + 1) & (cap - 1);
            }
            index[pos] = i + 1;
            k->slots[i].pos = pos;
        }
        free(k->index);
        k->index = index;
        k->index_cap = cap;
    }
    return true;
}

/* ws_cork_new_slot opens c's slot; ws_cork_grow has made room. */
static struct ws_cork_slot *
ws_cork_new_slot(struct ws_cork *k, struct ws_conn *c)
{
    uint32_t pos = ws_cork_hash(c, k->index_cap);
    struct ws_cork_slot *s = &k->slots[k->n_slots];

    while (k->index[pos] != 0) {
        pos = (pos + 1) & (k->index_cap - 1);
    }
    k->index[pos] = ++k->n_slots;
    memset(s, 0, sizeof(*s));
    s->c = c;
    s->pos = pos;
    return s;
}

/*
 * ws_cork_take empties s into frames, in order, and closes it; returns how
 * many.  The references go to the caller.
 */
static size_t
ws_cork_take(struct ws_cork *k, struct ws_cork_slot *s,
             torpor_frame *frames[WS_CORK_FRAMES])
{
    size_t n = 0;

    for (uint32_t e = s->head; e != 0; e = k->entries[e - 1].next) {
        frames[n++] = k->entries[e - 1].frame;
    }
    s->c->flags &= (uint16_t)~WS_F_CORKED;
    /* The index keeps the slot as a tombstone, so that probes go past. */
    s->c = NULL;
    return n;
}

/* ws_cork_write writes what s holds now. */
static void
ws_cork_write(struct ws_cork *k, struct ws_cork_slot *s)
{
    torpor_frame *frames[WS_CORK_FRAMES];
    struct ws_conn *c = s->c;
    size_t n = ws_cork_take(k, s, frames);

    (void)ws_write_frames(c, frames, n);
}

torpor_err
ws_cork_add(struct ws_conn *c, torpor_frame *frame)
{
    struct ws_cork *k = ws_cork_of(c);
    struct ws_cork_slot *s = NULL;
    struct ws_cork_entry *e;

    if (k == NULL) {
        return TORPOR_ENOMEM;
    }
    /* Growing moves the slots: find c's after it. */
    if (!ws_cork_grow(k)) {
        return TORPOR_ENOMEM;
    }
    if ((c->flags & WS_F_CORKED) != 0) {
        s = ws_cork_find(k, c);
    }
    if (s == NULL) {
        s = ws_cork_new_slot(k, c);
        c->flags |= WS_F_CORKED;
    }
    e = &k->entries[k->n_entries++];
    e->frame = frame;
    e->next = 0;
    if (s->tail != 0) {
        k->entries[s->tail - 1].next = k->n_entries;
    } else {
        s->head = k->n_entries;
    }
    s->tail = k->n_entries;
    s->count++;
    s->bytes += frame->len;
    if (s->count == WS_CORK_FRAMES || s->bytes >= WS_CORK_BYTES) {
        ws_cork_write(k, s);
    }
    if (!k->posted) {
        k->posted = true;
        ws_of(c)->host->loop_post(k->loop, &k->task);
    }
    return TORPOR_OK;
}

void
ws_cork_release(struct ws_conn *c)
{
    struct ws_cork_slot *s;
    struct ws_cork *k;

    if ((c->flags & WS_F_CORKED) == 0) {
        return;
    }
    k = ws_cork_of(c);
    s = k != NULL ? ws_cork_find(k, c) : NULL;
    if (s != NULL) {
        ws_cork_write(k, s);
    } else {
        /* Never so; but a flag left set would hold c open for good. */
        c->flags &= (uint16_t)~WS_F_CORKED;
    }
}

void
ws_cork_forget(struct ws_conn *c)
{
    torpor_frame *frames[WS_CORK_FRAMES];
    struct ws_cork_slot *s;
    struct ws_cork *k;
    size_t n;

    if ((c->flags & WS_F_CORKED) == 0) {
        return;
    }
    k = ws_cork_of(c);
    s = k != NULL ? ws_cork_find(k, c) : NULL;
    if (s == NULL) {
        c->flags &= (uint16_t)~WS_F_CORKED;
        return;
    }
    n = ws_cork_take(k, s, frames);
    for (size_t i = 0; i < n; i++) {
        ws_frame_release(frames[i]);
    }
}

/* ws_cork_reset empties k's tables for the next pass. */
static void
ws_cork_reset(struct ws_cork *k)
{
    if (k->cap_slots > WS_CORK_KEEP_SLOTS
        || k->cap_entries > WS_CORK_KEEP_ENTRIES) {
        free(k->slots);
        free(k->index);
        free(k->entries);
        k->slots = NULL;
        k->index = NULL;
        k->entries = NULL;
        k->cap_slots = 0;
        k->index_cap = 0;
        k->cap_entries = 0;
    } else {
        for (uint32_t i = 0; i < k->n_slots; i++) {
            k->index[k->slots[i].pos] = 0;
        }
    }
    k->n_slots = 0;
    k->n_entries = 0;
}

/*
 * ws_cork_run is the end of a pass: it writes every connection's frames,
 * in the order the connections were first corked.  Runs on k's loop, as a
 * task, so no host call for any of them is on the stack.  A write here
 * that fails or goes over the output limit marks its connection as a
 * write from a broadcast would; the connection's own callbacks free it.
 */
static void
ws_cork_run(torpor_task *task)
{
    struct ws_cork *k = (struct ws_cork *)task;

    if (k->orphaned) {
        free(k);
        return;
    }
    /*
     * A write here calls no class, so nothing is corked meanwhile; were it
     * so, the new slot would be written by this loop, which reads n_slots
     * anew, and the task posted again would find nothing.
     */
    k->posted = false;
    for (uint32_t i = 0; i < k->n_slots; i++) {
        struct ws_cork_slot *s = &k->slots[i];

        if (s->c != NULL) {
            ws_cork_write(k, s);
        }
    }
    ws_cork_reset(k);
}

void
ws_cork_free_all(struct ws_state *ws)
{
    while (ws->corks != NULL) {
        struct ws_cork *k = ws->corks;

        ws->corks = k->next;
        /* Connections are gone; each dropped its own frames. */
        free(k->slots);
        free(k->index);
        free(k->entries);
        if (k->posted) {
            /* Its loop still runs the task once, which frees it. */
            k->orphaned = true;
        } else {
            free(k);
        }
    }
}
