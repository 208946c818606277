/*
 * Alarms.  Each object keeps its alarms in an array sorted by name, and
 * every alarm of every object also sits in one min-heap on its time, so
 * alarms_due looks at due alarms only and never at objects without any.
 * An alarm knows its heap slot, which makes a change or removal
 * logarithmic.
 *
 * Worker thread only, like the rest of the index.
 */
#include "fs.h"

#include <stdlib.h>
#include <string.h>

/* Ties on time go by object and name, so results do not depend on luck. */
static int
fs_alarm_cmp(const struct fs_alarm *a, const struct fs_alarm *b)
{
    int c;

    if (a->time_ms != b->time_ms) {
        return a->time_ms < b->time_ms ? -1 : 1;
    }
    c = memcmp(a->obj->id, b->obj->id, 16);
    if (c != 0) {
        return c;
    }
    return fs_key_cmp(a->name, a->nlen, b->name, b->nlen);
}

static void
fs_heap_place(struct fs_index *ix, size_t pos, struct fs_alarm *a)
{
    ix->heap[pos] = a;
    a->heap_pos = (uint32_t)pos;
}

static void
fs_heap_up(struct fs_index *ix, size_t pos)
{
    struct fs_alarm *a = ix->heap[pos];

    while (pos > 0) {
        size_t parent = (pos - 1) / 2;

        if (fs_alarm_cmp(ix->heap[parent], a) <= 0) {
            break;
        }
        fs_heap_place(ix, pos, ix->heap[parent]);
        pos = parent;
    }
    fs_heap_place(ix, pos, a);
}

static void
fs_heap_down(struct fs_index *ix, size_t pos)
{
    struct fs_alarm *a = ix->heap[pos];

    for (;;) {
        size_t child = 2 * pos + 1;

        if (child >= ix->nheap) {
            break;
        }
        if (child + 1 < ix->nheap
            && fs_alarm_cmp(ix->heap[child + 1], ix->heap[child]) < 0) {
            child++;
        }
        if (fs_alarm_cmp(a, ix->heap[child]) <= 0) {
            break;
        }
        fs_heap_place(ix, pos, ix->heap[child]);
        pos = child;
    }
    fs_heap_place(ix, pos, a);
}

static void
fs_heap_remove(struct fs_index *ix, struct fs_alarm *a)
{
    size_t pos = a->heap_pos;
    struct fs_alarm *last = ix->heap[--ix->nheap];

    if (last == a) {
        return;
    }
    fs_heap_place(ix, pos, last);
    fs_heap_up(ix, pos);
    fs_heap_down(ix, last->heap_pos);
}

size_t
fs_alarm_find(const struct fs_obj *obj, const void *name, size_t nlen,
              bool *found)
{
    size_t lo = 0;
    size_t hi = obj->nalarms;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct fs_alarm *a = obj->alarms[mid];

        if (fs_key_cmp(a->name, a->nlen, name, nlen) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found =
        lo < obj->nalarms
        && fs_key_cmp(obj->alarms[lo]->name, obj->alarms[lo]->nlen, name, nlen)
               == 0;
    return lo;
}

/* fs_alarm_room makes space for one more alarm in obj and in the heap. */
static torpor_err
fs_alarm_room(struct fs_index *ix, struct fs_obj *obj)
{
    if (obj->nalarms == obj->cap_alarms) {
        uint32_t cap = obj->cap_alarms > 0 ? obj->cap_alarms * 2 : 1;
        struct fs_alarm **v;

        if (cap < obj->cap_alarms) {
            return TORPOR_ENOMEM;
        }
        v = realloc(obj->alarms, (size_t)cap * sizeof(*v));
        if (v == NULL) {
            return TORPOR_ENOMEM;
        }
        obj->alarms = v;
        obj->cap_alarms = cap;
    }
    if (ix->nheap == ix->cap_heap) {
        size_t cap = ix->cap_heap > 0 ? ix->cap_heap * 2 : 64;
        struct fs_alarm **v;

        if (cap > UINT32_MAX) {
            return TORPOR_ENOMEM;
        }
        v = realloc(ix->heap, cap * sizeof(*v));
        if (v == NULL) {
            return TORPOR_ENOMEM;
        }
        ix->heap = v;
        ix->cap_heap = cap;
    }
    return TORPOR_OK;
}

torpor_err
fs_alarm_set(struct fs_index *ix, struct fs_obj *obj, const void *name,
             size_t nlen, uint64_t time_ms)
{
    bool found;
    size_t pos = fs_alarm_find(obj, name, nlen, &found);
    struct fs_alarm *a;
    torpor_err err;

    if (found) {
        a = obj->alarms[pos];
        a->time_ms = time_ms;
        fs_heap_up(ix, a->heap_pos);
        fs_heap_down(ix, a->heap_pos);
        return TORPOR_OK;
    }
    err = fs_alarm_room(ix, obj);
    if (err != TORPOR_OK) {
        return err;
    }
    a = malloc(sizeof(*a) + nlen);
    if (a == NULL) {
        return TORPOR_ENOMEM;
    }
    a->obj = obj;
    a->time_ms = time_ms;
    a->nlen = (uint32_t)nlen;
    memcpy(a->name, name, nlen);
    memmove(&obj->alarms[pos + 1], &obj->alarms[pos],
            (obj->nalarms - pos) * sizeof(*obj->alarms));
    obj->alarms[pos] = a;
    obj->nalarms++;
    fs_heap_place(ix, ix->nheap++, a);
    fs_heap_up(ix, a->heap_pos);
    ix->live_bytes += fs_rec_write_bytes(TORPOR_WRITE_ALARM_SET, nlen, 0);
    return TORPOR_OK;
}

void
fs_alarm_delete(struct fs_index *ix, struct fs_obj *obj, const void *name,
                size_t nlen)
{
    bool found;
    size_t pos = fs_alarm_find(obj, name, nlen, &found);
    struct fs_alarm *a;

    if (!found) {
        return;
    }
    a = obj->alarms[pos];
    fs_heap_remove(ix, a);
    ix->live_bytes -= fs_rec_write_bytes(TORPOR_WRITE_ALARM_SET, a->nlen, 0);
    free(a);
    obj->nalarms--;
    memmove(&obj->alarms[pos], &obj->alarms[pos + 1],
            (obj->nalarms - pos) * sizeof(*obj->alarms));
}

void
fs_alarm_free_all(struct fs_index *ix, struct fs_obj *obj)
{
    for (uint32_t i = 0; i < obj->nalarms; i++) {
        struct fs_alarm *a = obj->alarms[i];

        fs_heap_remove(ix, a);
        ix->live_bytes -=
            fs_rec_write_bytes(TORPOR_WRITE_ALARM_SET, a->nlen, 0);
        free(a);
    }
    obj->nalarms = 0;
}

/*
 * The earliest alarms of a heap are found best-first: the root, then
 * whichever child of an alarm already taken is earliest.  cand is a small
 * min-heap of heap slots that holds that frontier.
 */
static void
fs_cand_push(const struct fs_index *ix, size_t *cand, size_t *n, size_t slot)
{
    size_t pos = (*n)++;

    while (pos > 0) {
        size_t parent = (pos - 1) / 2;

        if (fs_alarm_cmp(ix->heap[cand[parent]], ix->heap[slot]) <= 0) {
            break;
        }
        cand[pos] = cand[parent];
        pos = parent;
    }
    cand[pos] = slot;
}

static size_t
fs_cand_pop(const struct fs_index *ix, size_t *cand, size_t *n)
{
    size_t top = cand[0];
    size_t last = cand[--*n];
    size_t pos = 0;

    for (;;) {
        size_t child = 2 * pos + 1;

        if (child >= *n) {
            break;
        }
        if (child + 1 < *n
            && fs_alarm_cmp(ix->heap[cand[child + 1]], ix->heap[cand[child]])
                   < 0) {
            child++;
        }
        if (fs_alarm_cmp(ix->heap[last], ix->heap[cand[child]]) <= 0) {
            break;
        }
        cand[pos] = cand[child];
        pos = child;
    }
    if (*n > 0) {
        cand[pos] = last;
    }
    return top;
}

size_t
fs_alarm_due(const struct fs_index *ix, uint64_t before_ms, uint32_t limit,
             struct fs_alarm **out)
{
    size_t want = limit < ix->nheap ? limit : ix->nheap;
    size_t *cand;
    size_t ncand = 0;
    size_t n = 0;

    if (want == 0) {
        return 0;
    }
    /* Each slot taken adds at most two: want + 1 never overflows. */
    cand = malloc((want + 2) * sizeof(*cand));
    if (cand == NULL) {
        return SIZE_MAX;
    }
    fs_cand_push(ix, cand, &ncand, 0);
    while (n < want && ncand > 0) {
        size_t slot = fs_cand_pop(ix, cand, &ncand);
        struct fs_alarm *a = ix->heap[slot];

        if (a->time_ms > before_ms) {
            break;
        }
        out[n++] = a;
        if (2 * slot + 1 < ix->nheap) {
            fs_cand_push(ix, cand, &ncand, 2 * slot + 1);
        }
        if (2 * slot + 2 < ix->nheap) {
            fs_cand_push(ix, cand, &ncand, 2 * slot + 2);
        }
    }
    free(cand);
    return n;
}
