/*
 * The record codec.  Every segment is a run of records, each a 16-byte
 * header and a payload:
 *
 *     offset 0   u32  magic "TFR1"
 *            4   u8   version (1)
 *            5   u8   type (enum fs_rec_type)
 *            6   u16  reserved, 0
 *            8   u32  payload length
 *           12   u32  CRC-32 (zlib) of header bytes 0..12, then the payload
 *
 * All integers are little-endian, whatever the host.  The checksum covers
 * the length, so a torn or flipped length cannot pass as another record.
 *
 * Payloads:
 *     SEGMENT       u32 number, u8 kind, u32 snapshot base
 *     COMMIT        object, u32 n, n writes
 *     SNAPSHOT      the same as COMMIT, with only puts and alarm sets
 *     DROP          id[16]
 *     SNAPSHOT_END  u32 base, u32 last, u64 objects
 *
 *     object        id[16], u32 class length, class, u32 name length, name
 *     write         u8 kind, u32 key length, key, then by kind:
 *                   PUT u32 value length, value; ALARM_SET u64 time_ms;
 *                   DELETE and ALARM_DELETE nothing
 *
 * A commit is one record, so it is on disk whole or cut off whole.
 */
#include "fs.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define FS_SEGMENT_PAYLOAD 9
#define FS_SNAP_END_PAYLOAD 16

void
fs_buf_free(struct fs_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

bool
fs_buf_reserve(struct fs_buf *b, size_t more)
{
    size_t cap;
    uint8_t *p;

    if (b->oom) {
        return false;
    }
    if (b->cap - b->len >= more) {
        return true;
    }
    if (more > SIZE_MAX / 2 - b->len) {
        b->oom = true;
        return false;
    }
    cap = b->cap > 0 ? b->cap : 256;
    while (cap < b->len + more) {
        cap *= 2;
    }
    p = realloc(b->p, cap);
    if (p == NULL) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void
fs_buf_bytes(struct fs_buf *b, const void *data, size_t len)
{
    if (len == 0 || !fs_buf_reserve(b, len)) {
        return;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
}

void
fs_buf_u8(struct fs_buf *b, uint8_t v)
{
    fs_buf_bytes(b, &v, 1);
}

void
fs_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

void
fs_buf_u32(struct fs_buf *b, uint32_t v)
{
    uint8_t p[4];

    fs_put_u32(p, v);
    fs_buf_bytes(b, p, sizeof(p));
}

void
fs_buf_u64(struct fs_buf *b, uint64_t v)
{
    uint8_t p[8];

    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
    fs_buf_bytes(b, p, sizeof(p));
}

uint32_t
fs_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16
           | (uint32_t)p[3] << 24;
}

uint64_t
fs_get_u64(const uint8_t *p)
{
    return (uint64_t)fs_get_u32(p) | (uint64_t)fs_get_u32(p + 4) << 32;
}

uint32_t
fs_rec_checksum(const uint8_t *header, const uint8_t *payload, size_t len)
{
    uLong crc = crc32(0L, header, 12);

    /* zlib takes 32-bit lengths; payloads stay below FS_REC_MAX_BYTES. */
    crc = crc32(crc, len > 0 ? payload : Z_NULL, (uInt)len);
    return (uint32_t)crc;
}

size_t
fs_rec_begin(struct fs_buf *b)
{
    static const uint8_t zero[FS_REC_HEADER_BYTES];
    size_t start = b->len;

    fs_buf_bytes(b, zero, sizeof(zero));
    return start;
}

void
fs_rec_finish(struct fs_buf *b, size_t start, uint8_t type)
{
    uint8_t *h;
    size_t len;

    if (b->oom) {
        return;
    }
    h = b->p + start;
    len = b->len - start - FS_REC_HEADER_BYTES;
    fs_put_u32(h, FS_REC_MAGIC);
    h[4] = FS_REC_VERSION;
    h[5] = type;
    h[6] = 0;
    h[7] = 0;
    fs_put_u32(h + 8, (uint32_t)len);
    fs_put_u32(h + 12, fs_rec_checksum(h, h + FS_REC_HEADER_BYTES, len));
}

bool
fs_rec_parse_header(const uint8_t *p, struct fs_rec_header *h, const char **why)
{
    h->magic = fs_get_u32(p);
    h->version = p[4];
    h->type = p[5];
    h->len = fs_get_u32(p + 8);
    h->crc = fs_get_u32(p + 12);
    if (h->magic != FS_REC_MAGIC) {
        *why = "bad magic";
        return false;
    }
    if (h->version != FS_REC_VERSION || p[6] != 0 || p[7] != 0) {
        *why = "unknown record version";
        return false;
    }
    if (h->type < FS_REC_SEGMENT || h->type > FS_REC_SNAPSHOT_END) {
        *why = "unknown record type";
        return false;
    }
    if (h->len > FS_REC_MAX_BYTES) {
        *why = "bad length";
        return false;
    }
    return true;
}

bool
fs_rec_verify(const struct fs_rec_header *h, const uint8_t *header,
              const uint8_t *payload)
{
    return fs_rec_checksum(header, payload, h->len) == h->crc;
}

void
fs_rec_put_segment(struct fs_buf *b, const struct fs_rec_segment *s)
{
    size_t start = fs_rec_begin(b);

    fs_buf_u32(b, s->no);
    fs_buf_u8(b, s->kind);
    fs_buf_u32(b, s->base);
    fs_rec_finish(b, start, FS_REC_SEGMENT);
}

void
fs_rec_put_snap_end(struct fs_buf *b, const struct fs_rec_snap_end *e)
{
    size_t start = fs_rec_begin(b);

    fs_buf_u32(b, e->base);
    fs_buf_u32(b, e->last);
    fs_buf_u64(b, e->objects);
    fs_rec_finish(b, start, FS_REC_SNAPSHOT_END);
}

void
fs_rec_put_drop(struct fs_buf *b, const uint8_t id[16])
{
    size_t start = fs_rec_begin(b);

    fs_buf_bytes(b, id, 16);
    fs_rec_finish(b, start, FS_REC_DROP);
}

size_t
fs_rec_put_object(struct fs_buf *b, const uint8_t id[16],
                  const void *class_name, uint32_t class_len, const void *name,
                  uint32_t name_len)
{
    size_t count_at;

    fs_buf_bytes(b, id, 16);
    fs_buf_u32(b, class_len);
    fs_buf_bytes(b, class_name, class_len);
    fs_buf_u32(b, name_len);
    fs_buf_bytes(b, name, name_len);
    count_at = b->len;
    fs_buf_u32(b, 0);
    return count_at;
}

size_t
fs_rec_write_bytes(uint8_t kind, size_t klen, size_t vlen)
{
    size_t n = 1 + 4 + klen;

    if (kind == TORPOR_WRITE_PUT) {
        n += 4 + vlen;
    } else if (kind == TORPOR_WRITE_ALARM_SET) {
        n += 8;
    }
    return n;
}

size_t
fs_rec_object_bytes(size_t class_len, size_t name_len)
{
    return 16 + 4 + class_len + 4 + name_len + 4;
}

size_t
fs_rec_commit_bytes(const torpor_storage_object *object,
                    const torpor_write *writes, size_t n, bool *bad_kind)
{
    /* Summed in 64 bits against the record limit, so nothing wraps. */
    uint64_t total;

    *bad_kind = false;
    if (object->name.len > FS_REC_MAX_BYTES
        || strlen(object->class_name) > FS_REC_MAX_BYTES) {
        return 0;
    }
    total = fs_rec_object_bytes(strlen(object->class_name), object->name.len);
    for (size_t i = 0; i < n; i++) {
        const torpor_write *w = &writes[i];

        if (w->kind < TORPOR_WRITE_PUT || w->kind > TORPOR_WRITE_ALARM_DELETE) {
            *bad_kind = true;
            return 0;
        }
        if (w->key.len > FS_REC_MAX_BYTES || w->value.len > FS_REC_MAX_BYTES) {
            return 0;
        }
        total += fs_rec_write_bytes((uint8_t)w->kind, w->key.len, w->value.len);
        if (total > FS_REC_MAX_BYTES) {
            return 0;
        }
    }
    return (size_t)total + FS_REC_HEADER_BYTES;
}

void
fs_rec_put_commit(struct fs_buf *b, const torpor_storage_object *object,
                  const torpor_write *writes, size_t n)
{
    size_t start = fs_rec_begin(b);
    size_t count_at;

    count_at = fs_rec_put_object(b, object->id, object->class_name,
                                 (uint32_t)strlen(object->class_name),
                                 object->name.data, (uint32_t)object->name.len);
    if (!b->oom) {
        fs_put_u32(b->p + count_at, (uint32_t)n);
    }
    for (size_t i = 0; i < n; i++) {
        const torpor_write *w = &writes[i];

        fs_buf_u8(b, (uint8_t)w->kind);
        fs_buf_u32(b, (uint32_t)w->key.len);
        fs_buf_bytes(b, w->key.data, w->key.len);
        if (w->kind == TORPOR_WRITE_PUT) {
            fs_buf_u32(b, (uint32_t)w->value.len);
            fs_buf_bytes(b, w->value.data, w->value.len);
        } else if (w->kind == TORPOR_WRITE_ALARM_SET) {
            fs_buf_u64(b, w->time_ms);
        }
    }
    fs_rec_finish(b, start, FS_REC_COMMIT);
}

bool
fs_rec_segment_decode(const uint8_t *p, size_t len, struct fs_rec_segment *s)
{
    if (len != FS_SEGMENT_PAYLOAD) {
        return false;
    }
    s->no = fs_get_u32(p);
    s->kind = p[4];
    s->base = fs_get_u32(p + 5);
    return s->kind == FS_SEG_LOG || s->kind == FS_SEG_SNAPSHOT;
}

bool
fs_rec_snap_end_decode(const uint8_t *p, size_t len, struct fs_rec_snap_end *e)
{
    if (len != FS_SNAP_END_PAYLOAD) {
        return false;
    }
    e->base = fs_get_u32(p);
    e->last = fs_get_u32(p + 4);
    e->objects = fs_get_u64(p + 8);
    return e->base <= e->last;
}

/* fs_rec_take hands out n bytes of the cursor, or NULL past the end. */
static const uint8_t *
fs_rec_take(struct fs_rec_cursor *c, size_t n)
{
    const uint8_t *p;

    if (c->len - c->off < n) {
        return NULL;
    }
    p = c->p + c->off;
    c->off += n;
    return p;
}

bool
fs_rec_object(const uint8_t *p, size_t len, struct fs_obj_view *o,
              struct fs_rec_cursor *c)
{
    const uint8_t *q;

    c->p = p;
    c->len = len;
    c->off = 0;
    if ((o->id = fs_rec_take(c, 16)) == NULL
        || (q = fs_rec_take(c, 4)) == NULL) {
        return false;
    }
    o->class_len = fs_get_u32(q);
    if ((o->class_name = fs_rec_take(c, o->class_len)) == NULL
        || (q = fs_rec_take(c, 4)) == NULL) {
        return false;
    }
    o->name_len = fs_get_u32(q);
    if ((o->name = fs_rec_take(c, o->name_len)) == NULL
        || (q = fs_rec_take(c, 4)) == NULL) {
        return false;
    }
    c->left = fs_get_u32(q);
    return true;
}

int
fs_rec_next_write(struct fs_rec_cursor *c, struct fs_write_view *w)
{
    const uint8_t *q;

    if (c->left == 0) {
        return c->off == c->len ? 0 : -1;
    }
    c->left--;
    memset(w, 0, sizeof(*w));
    if ((q = fs_rec_take(c, 5)) == NULL) {
        return -1;
    }
    w->kind = q[0];
    w->klen = fs_get_u32(q + 1);
    if ((w->key = fs_rec_take(c, w->klen)) == NULL) {
        return -1;
    }
    switch (w->kind) {
    case TORPOR_WRITE_PUT:
        if ((q = fs_rec_take(c, 4)) == NULL) {
            return -1;
        }
        w->vlen = fs_get_u32(q);
        w->value_off = c->off;
        if ((w->value = fs_rec_take(c, w->vlen)) == NULL) {
            return -1;
        }
        return 1;
    case TORPOR_WRITE_ALARM_SET:
        if ((q = fs_rec_take(c, 8)) == NULL) {
            return -1;
        }
        w->time_ms = fs_get_u64(q);
        return 1;
    case TORPOR_WRITE_DELETE:
    case TORPOR_WRITE_ALARM_DELETE:
        return 1;
    default:
        return -1;
    }
}
