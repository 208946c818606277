/*
 * The in-memory index: which keys and alarms each object has, and where on
 * disk each value lies.  Objects sit in a hash table on their 16-byte id;
 * an object's keys are a sorted array of pointers, searched by bisection.
 *
 * Memory: an object costs one struct fs_obj with its class and name in the
 * same allocation (about 80 bytes plus the names), a key one struct fs_key
 * with its bytes (16 plus the key) and a pointer.  Values are not kept:
 * reads fetch them with pread, so an idle object holds no value bytes.
 *
 * Missing: every key stays in memory; a store whose keys do not fit in RAM cannot be opened.
 * Missing: a new key in an object of n keys moves up to n pointers; objects with millions of keys get slow to write.
 *
 * Worker thread only, apart from start and destroy, which run before the
 * worker exists and after it has gone.
 */
#include "fs.h"

#include <stdlib.h>
#include <string.h>

#define FS_INDEX_BUCKETS_MIN 256

/* fs_index_hash mixes both halves: ids are hashes, but cheap to be safe. */
static size_t
fs_index_hash(const uint8_t *id)
{
    uint64_t a;
    uint64_t b;

    memcpy(&a, id, 8);
    memcpy(&b, id + 8, 8);
    a ^= b * UINT64_C(0x9e3779b97f4a7c15);
    a ^= a >> 31;
    a *= UINT64_C(0xd6e8feb86659fd93);
    a ^= a >> 32;
    return (size_t)a;
}

torpor_err
fs_index_init(struct fs_index *ix)
{
    memset(ix, 0, sizeof(*ix));
    ix->buckets = calloc(FS_INDEX_BUCKETS_MIN, sizeof(*ix->buckets));
    if (ix->buckets == NULL) {
        return TORPOR_ENOMEM;
    }
    ix->nbuckets = FS_INDEX_BUCKETS_MIN;
    return TORPOR_OK;
}

static void
fs_obj_free(struct fs_obj *obj)
{
    for (uint32_t i = 0; i < obj->nkeys; i++) {
        free(obj->keys[i]);
    }
    free(obj->keys);
    free(obj->alarms);
    free(obj);
}

void
fs_index_free(struct fs_index *ix)
{
    for (size_t i = 0; ix->buckets != NULL && i < ix->nbuckets; i++) {
        struct fs_obj *obj = ix->buckets[i];

        while (obj != NULL) {
            struct fs_obj *next = obj->next;

            fs_alarm_free_all(ix, obj);
            fs_obj_free(obj);
            obj = next;
        }
    }
    free(ix->buckets);
    free(ix->order);
    free(ix->heap);
    memset(ix, 0, sizeof(*ix));
}

struct fs_obj *
fs_index_find(const struct fs_index *ix, const uint8_t *id)
{
    struct fs_obj *obj = ix->buckets[fs_index_hash(id) & (ix->nbuckets - 1)];

    while (obj != NULL && memcmp(obj->id, id, 16) != 0) {
        obj = obj->next;
    }
    return obj;
}

/* fs_index_grow doubles the table; on ENOMEM the chains just get longer. */
static void
fs_index_grow(struct fs_index *ix)
{
    size_t n = ix->nbuckets * 2;
    struct fs_obj **b = calloc(n, sizeof(*b));

    if (b == NULL) {
        return;
    }
    for (size_t i = 0; i < ix->nbuckets; i++) {
        struct fs_obj *obj = ix->buckets[i];

        while (obj != NULL) {
            struct fs_obj *next = obj->next;
            size_t h = fs_index_hash(obj->id) & (n - 1);

            obj->next = b[h];
            b[h] = obj;
            obj = next;
        }
    }
    free(ix->buckets);
    ix->buckets = b;
    ix->nbuckets = n;
}

static torpor_err
fs_obj_create(struct fs_index *ix, const struct fs_obj_view *v,
              struct fs_obj **out)
{
    struct fs_obj *obj;
    size_t h;

    obj = calloc(1, sizeof(*obj) + v->class_len + 1 + v->name_len);
    if (obj == NULL) {
        return TORPOR_ENOMEM;
    }
    memcpy(obj->id, v->id, 16);
    obj->class_len = v->class_len;
    obj->name_len = v->name_len;
    memcpy(obj->meta, v->class_name, v->class_len);
    memcpy(obj->meta + v->class_len + 1, v->name, v->name_len);
    if (ix->nobjs >= ix->nbuckets) {
        fs_index_grow(ix);
    }
    h = fs_index_hash(obj->id) & (ix->nbuckets - 1);
    obj->next = ix->buckets[h];
    ix->buckets[h] = obj;
    ix->nobjs++;
    ix->order_valid = false;
    ix->live_bytes +=
        FS_REC_HEADER_BYTES + fs_rec_object_bytes(v->class_len, v->name_len);
    *out = obj;
    return TORPOR_OK;
}

/* fs_obj_remove unlinks and frees obj, which must hold nothing. */
static void
fs_obj_remove(struct fs_index *ix, struct fs_obj *obj)
{
    struct fs_obj **pp =
        &ix->buckets[fs_index_hash(obj->id) & (ix->nbuckets - 1)];

    while (*pp != obj) {
        pp = &(*pp)->next;
    }
    *pp = obj->next;
    ix->nobjs--;
    ix->order_valid = false;
    ix->live_bytes -= FS_REC_HEADER_BYTES
                      + fs_rec_object_bytes(obj->class_len, obj->name_len);
    fs_obj_free(obj);
}

int
fs_key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);

    if (c != 0) {
        return c;
    }
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

uint32_t
fs_obj_lower_bound(const struct fs_obj *obj, const void *key, size_t klen)
{
    uint32_t lo = 0;
    uint32_t hi = obj->nkeys;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const struct fs_key *k = obj->keys[mid];

        if (fs_key_cmp(k->key, k->klen, key, klen) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static torpor_err
fs_obj_put(struct fs_index *ix, struct fs_obj *obj,
           const struct fs_write_view *w, uint32_t seg, uint32_t off)
{
    uint32_t pos = fs_obj_lower_bound(obj, w->key, w->klen);
    struct fs_key *k;

    if (pos < obj->nkeys) {
        k = obj->keys[pos];
        if (fs_key_cmp(k->key, k->klen, w->key, w->klen) == 0) {
            ix->live_bytes = ix->live_bytes - k->vlen + w->vlen;
            k->seg = seg;
            k->off = off;
            k->vlen = w->vlen;
            return TORPOR_OK;
        }
    }
    if (obj->nkeys == obj->cap_keys) {
        uint32_t cap = obj->cap_keys > 0 ? obj->cap_keys * 2 : 2;
        struct fs_key **keys;

        if (cap < obj->cap_keys) {
            return TORPOR_ENOMEM;
        }
        keys = realloc(obj->keys, (size_t)cap * sizeof(*keys));
        if (keys == NULL) {
            return TORPOR_ENOMEM;
        }
        obj->keys = keys;
        obj->cap_keys = cap;
    }
    k = malloc(sizeof(*k) + w->klen);
    if (k == NULL) {
        return TORPOR_ENOMEM;
    }
    k->seg = seg;
    k->off = off;
    k->vlen = w->vlen;
    k->klen = w->klen;
    memcpy(k->key, w->key, w->klen);
    memmove(&obj->keys[pos + 1], &obj->keys[pos],
            (obj->nkeys - pos) * sizeof(*obj->keys));
    obj->keys[pos] = k;
    obj->nkeys++;
    ix->nkeys++;
    ix->live_bytes += fs_rec_write_bytes(TORPOR_WRITE_PUT, w->klen, w->vlen);
    return TORPOR_OK;
}

static void
fs_obj_delete(struct fs_index *ix, struct fs_obj *obj, const void *key,
              size_t klen)
{
    uint32_t pos = fs_obj_lower_bound(obj, key, klen);
    struct fs_key *k;

    if (pos == obj->nkeys) {
        return;
    }
    k = obj->keys[pos];
    if (fs_key_cmp(k->key, k->klen, key, klen) != 0) {
        return;
    }
    ix->live_bytes -= fs_rec_write_bytes(TORPOR_WRITE_PUT, k->klen, k->vlen);
    free(k);
    obj->nkeys--;
    ix->nkeys--;
    memmove(&obj->keys[pos], &obj->keys[pos + 1],
            (obj->nkeys - pos) * sizeof(*obj->keys));
    /* Give memory back as an object shrinks: idle objects are many. */
    if (obj->cap_keys > 8 && obj->nkeys <= obj->cap_keys / 4) {
        struct fs_key **keys =
            realloc(obj->keys, (size_t)obj->cap_keys / 2 * sizeof(*keys));

        if (keys != NULL) {
            obj->keys = keys;
            obj->cap_keys /= 2;
        }
    }
}

/* fs_index_check walks a payload once, so that a bad one changes nothing. */
static bool
fs_index_check(const uint8_t *payload, size_t len, uint64_t payload_off)
{
    struct fs_obj_view v;
    struct fs_rec_cursor c;
    struct fs_write_view w;
    int r;

    if (!fs_rec_object(payload, len, &v, &c)) {
        return false;
    }
    while ((r = fs_rec_next_write(&c, &w)) == 1) {
        if (w.kind == TORPOR_WRITE_PUT
            && payload_off + w.value_off > UINT32_MAX) {
            return false;
        }
    }
    return r == 0;
}

static torpor_err
fs_index_write(struct fs_index *ix, const struct fs_obj_view *v,
               struct fs_obj **obj, const struct fs_write_view *w, uint32_t seg,
               uint64_t payload_off)
{
    torpor_err err = TORPOR_OK;

    if (*obj == NULL
        && (w->kind == TORPOR_WRITE_PUT || w->kind == TORPOR_WRITE_ALARM_SET)) {
        err = fs_obj_create(ix, v, obj);
        if (err != TORPOR_OK) {
            return err;
        }
    }
    if (*obj == NULL) {
        return TORPOR_OK;
    }
    switch (w->kind) {
    case TORPOR_WRITE_PUT:
        err = fs_obj_put(ix, *obj, w, seg,
                         (uint32_t)(payload_off + w->value_off));
        break;
    case TORPOR_WRITE_DELETE:
        fs_obj_delete(ix, *obj, w->key, w->klen);
        break;
    case TORPOR_WRITE_ALARM_SET:
        err = fs_alarm_set(ix, *obj, w->key, w->klen, w->time_ms);
        break;
    case TORPOR_WRITE_ALARM_DELETE:
        fs_alarm_delete(ix, *obj, w->key, w->klen);
        break;
    }
    return err;
}

torpor_err
fs_index_apply(struct fs_index *ix, const uint8_t *payload, size_t len,
               uint32_t seg, uint64_t payload_off)
{
    struct fs_obj_view v;
    struct fs_rec_cursor c;
    struct fs_write_view w;
    struct fs_obj *obj;
    torpor_err err = TORPOR_OK;

    if (!fs_index_check(payload, len, payload_off)) {
        return TORPOR_EIO;
    }
    (void)fs_rec_object(payload, len, &v, &c);
    obj = fs_index_find(ix, v.id);
    while (err == TORPOR_OK && fs_rec_next_write(&c, &w) == 1) {
        err = fs_index_write(ix, &v, &obj, &w, seg, payload_off);
    }
    if (obj != NULL && obj->nkeys == 0 && obj->nalarms == 0) {
        fs_obj_remove(ix, obj);
    }
    return err;
}

void
fs_index_drop(struct fs_index *ix, const uint8_t *id)
{
    struct fs_obj *obj = fs_index_find(ix, id);

    if (obj == NULL) {
        return;
    }
    for (uint32_t i = 0; i < obj->nkeys; i++) {
        struct fs_key *k = obj->keys[i];

        ix->live_bytes -=
            fs_rec_write_bytes(TORPOR_WRITE_PUT, k->klen, k->vlen);
    }
    ix->nkeys -= obj->nkeys;
    fs_alarm_free_all(ix, obj);
    for (uint32_t i = 0; i < obj->nkeys; i++) {
        free(obj->keys[i]);
    }
    obj->nkeys = 0;
    fs_obj_remove(ix, obj);
}

static int
fs_index_order_cmp(const void *a, const void *b)
{
    const struct fs_obj *x = *(const struct fs_obj *const *)a;
    const struct fs_obj *y = *(const struct fs_obj *const *)b;

    return memcmp(x->id, y->id, 16);
}

/*
 * Missing: the id order is rebuilt with a sort whenever objects came or went, so paging through objects while they churn costs a sort per page.
 */
struct fs_obj **
fs_index_sorted(struct fs_index *ix, size_t *n)
{
    size_t j = 0;

    *n = ix->nobjs;
    if (ix->order_valid) {
        return ix->order;
    }
    free(ix->order);
    ix->order = malloc((ix->nobjs > 0 ? ix->nobjs : 1) * sizeof(*ix->order));
    if (ix->order == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < ix->nbuckets; i++) {
        for (struct fs_obj *obj = ix->buckets[i]; obj != NULL;
             obj = obj->next) {
            ix->order[j++] = obj;
        }
    }
    qsort(ix->order, j, sizeof(*ix->order), fs_index_order_cmp);
    ix->order_valid = true;
    return ix->order;
}
