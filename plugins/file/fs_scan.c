/*
 * Reading a segment back, record by record, at start.  Every record's
 * checksum is verified before anything of it is believed.
 *
 * A bad record (short, a length or magic that cannot be, a checksum that
 * does not match) is one of two things.  At the end of the last segment it
 * is a write that a crash cut short: no completion of it can have been
 * posted under fsync = always, so it is cut off and start goes on.
 * Anywhere else (a segment that was closed, or followed by a valid record)
 * the disk lost bytes that were acknowledged, and start refuses rather than
 * silently forget them.
 *
 * Missing: a crash that persists a later page of an unsynced write but not an earlier one looks like corruption in the middle, and start refuses until the segment is cut by hand.
 *
 * Runs on the main thread inside start, before the worker exists.
 */
#include "fs.h"
#include "fs_scan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Bytes read from a segment at a time while scanning. */
#define FS_SCAN_CHUNK (1u << 20)

void
fs_reader_free(struct fs_reader *r)
{
    free(r->buf);
    r->buf = NULL;
    r->cap = 0;
    r->len = 0;
}

/*
 * fs_reader_get makes [off, off + n) of the file addressable at *p; the
 * caller has checked that it lies within the file.  false: a read failed,
 * errno says why.
 */
static bool
fs_reader_get(struct fs_reader *r, uint64_t off, size_t n, const uint8_t **p)
{
    size_t want;

    if (off >= r->base && off + n <= r->base + r->len) {
        *p = r->buf + (off - r->base);
        return true;
    }
    want = n > FS_SCAN_CHUNK ? n : FS_SCAN_CHUNK;
    if (want > r->size - off) {
        want = (size_t)(r->size - off);
    }
    if (want > r->cap) {
        uint8_t *buf = realloc(r->buf, want);

        if (buf == NULL) {
            errno = ENOMEM;
            return false;
        }
        r->buf = buf;
        r->cap = want;
    }
    r->len = 0;
    if (!fs_read_all(r->fd, r->buf, want, off)) {
        return false;
    }
    r->base = off;
    r->len = want;
    *p = r->buf;
    return true;
}

/*
 * fs_reader_record reads the record at off.  FS_SCAN_OK with h and payload
 * set; FS_SCAN_BAD with *why when the bytes are not a whole valid record;
 * FS_SCAN_IO when reading failed.
 */
int
fs_reader_record(struct fs_reader *r, uint64_t off, struct fs_rec_header *h,
                 const uint8_t **payload, const char **why)
{
    const uint8_t *p;

    if (r->size - off < FS_REC_HEADER_BYTES) {
        *why = "short header";
        return FS_SCAN_BAD;
    }
    if (!fs_reader_get(r, off, FS_REC_HEADER_BYTES, &p)) {
        return FS_SCAN_IO;
    }
    if (!fs_rec_parse_header(p, h, why)) {
        return FS_SCAN_BAD;
    }
    if (r->size - off - FS_REC_HEADER_BYTES < h->len) {
        *why = "short record";
        return FS_SCAN_BAD;
    }
    if (!fs_reader_get(r, off, FS_REC_HEADER_BYTES + (size_t)h->len, &p)) {
        return FS_SCAN_IO;
    }
    if (!fs_rec_verify(h, p, p + FS_REC_HEADER_BYTES)) {
        *why = "bad checksum";
        return FS_SCAN_BAD;
    }
    *payload = p + FS_REC_HEADER_BYTES;
    return FS_SCAN_OK;
}

/* fs_scan_valid_after: the offset of a valid record past off, or 0. */
static uint64_t
fs_scan_valid_after(const uint8_t *tail, size_t len, uint64_t off)
{
    for (size_t i = 1; i + FS_REC_HEADER_BYTES <= len; i++) {
        struct fs_rec_header h;
        const char *why;

        if (fs_get_u32(tail + i) != FS_REC_MAGIC
            || !fs_rec_parse_header(tail + i, &h, &why)
            || len - i - FS_REC_HEADER_BYTES < h.len) {
            continue;
        }
        if (fs_rec_verify(&h, tail + i, tail + i + FS_REC_HEADER_BYTES)) {
            return off + i;
        }
    }
    return 0;
}

/*
 * fs_scan_tail decides about a bad record at off of the last segment: cut
 * it off when nothing valid follows, refuse when something does.
 */
static torpor_err
fs_scan_tail(struct fs_state *fs, struct fs_scan *s, uint64_t off,
             const char *why)
{
    size_t len = (size_t)(s->r.size - off);
    uint8_t *tail = malloc(len > 0 ? len : 1);
    uint64_t valid;

    if (tail == NULL) {
        return TORPOR_ENOMEM;
    }
    if (!fs_read_all(s->r.fd, tail, len, off)) {
        FS_LOG(fs, TORPOR_LOG_ERR, "could not read \"%s\": %s", s->path,
               strerror(errno));
        free(tail);
        return TORPOR_EIO;
    }
    valid = fs_scan_valid_after(tail, len, off);
    free(tail);
    if (valid != 0) {
        FS_LOG(
            fs, TORPOR_LOG_ERR,
            "could not recover \"%s\": corrupt record at offset %llu (%s) followed by a valid record at offset %llu",
            s->path, (unsigned long long)off, why, (unsigned long long)valid);
        return TORPOR_EIO;
    }
    if (ftruncate(s->r.fd, (off_t)off) != 0 || fsync(s->r.fd) != 0) {
        FS_LOG(fs, TORPOR_LOG_ERR, "could not truncate \"%s\": %s", s->path,
               strerror(errno));
        return TORPOR_EIO;
    }
    FS_LOG(fs, TORPOR_LOG_WARN, "dropped %zu bytes of a torn tail of \"%s\"",
           len, s->path);
    s->r.size = off;
    s->r.len = 0;
    return TORPOR_OK;
}

/* fs_scan_one applies or notes one record found at off. */
static torpor_err
fs_scan_one(struct fs_state *fs, struct fs_scan *s, uint64_t off,
            const struct fs_rec_header *h, const uint8_t *payload)
{
    bool snap = s->kind == FS_SEG_SNAPSHOT;

    s->end_seen = false;
    switch (h->type) {
    case FS_REC_SEGMENT:
        return off == 0 ? TORPOR_OK : TORPOR_EIO;
    case FS_REC_COMMIT:
    case FS_REC_SNAPSHOT:
        if (snap != (h->type == FS_REC_SNAPSHOT)) {
            return TORPOR_EIO;
        }
        if (!s->apply) {
            return TORPOR_OK;
        }
        return fs_index_apply(&fs->ix, payload, h->len, s->no,
                              off + FS_REC_HEADER_BYTES);
    case FS_REC_DROP:
        if (snap || h->len != 16) {
            return TORPOR_EIO;
        }
        if (s->apply) {
            fs_index_drop(&fs->ix, payload);
        }
        return TORPOR_OK;
    case FS_REC_SNAPSHOT_END:
        if (!snap || !fs_rec_snap_end_decode(payload, h->len, &s->end)) {
            return TORPOR_EIO;
        }
        s->end_seen = true;
        return TORPOR_OK;
    default:
        return TORPOR_EIO;
    }
}

torpor_err
fs_scan_segment(struct fs_state *fs, struct fs_scan *s)
{
    uint64_t off = 0;
    torpor_err err;

    while (off < s->r.size) {
        struct fs_rec_header h;
        const uint8_t *payload;
        const char *why = "";
        int r = fs_reader_record(&s->r, off, &h, &payload, &why);

        if (r == FS_SCAN_IO) {
            FS_LOG(fs, TORPOR_LOG_ERR, "could not read \"%s\": %s", s->path,
                   strerror(errno));
            return errno == ENOMEM ? TORPOR_ENOMEM : TORPOR_EIO;
        }
        if (r == FS_SCAN_BAD) {
            if (s->last && off > 0) {
                return fs_scan_tail(fs, s, off, why);
            }
            FS_LOG(
                fs, TORPOR_LOG_ERR,
                "could not recover \"%s\": corrupt record at offset %llu (%s)",
                s->path, (unsigned long long)off, why);
            return TORPOR_EIO;
        }
        err = fs_scan_one(fs, s, off, &h, payload);
        if (err == TORPOR_ENOMEM) {
            FS_LOG(fs, TORPOR_LOG_ERR,
                   "could not recover \"%s\": out of memory", s->path);
            return err;
        }
        if (err != TORPOR_OK) {
            FS_LOG(
                fs, TORPOR_LOG_ERR,
                "could not recover \"%s\": malformed record of type %u at offset %llu",
                s->path, (unsigned)h.type, (unsigned long long)off);
            return err;
        }
        off += FS_REC_HEADER_BYTES + (uint64_t)h.len;
    }
    return TORPOR_OK;
}
