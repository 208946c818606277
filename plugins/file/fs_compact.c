/*
 * Compaction: the live state replaces the segments once they hold more
 * than compact_ratio times as much.  It runs on the worker between
 * batches (or in start after recovery), so nothing changes underneath it.
 *
 * The scheme, and why a crash at any point loses nothing:
 *
 *  1. The active segment is fsync'ed: the old segments S_1..S_k are whole
 *     and durable, and stay untouched until step 4.
 *  2. The live state is written, object by object in id order, as
 *     SNAPSHOT records into new segments numbered above every old one
 *     (base, base + 1, ...), whose headers say "snapshot from base".
 *     Each is written as .tmp, fsync'ed and only then renamed to .seg.
 *     The last one ends with a SNAPSHOT_END record naming base and
 *     itself; then the directory is fsync'ed.
 *  3. A new, empty log segment is created above the snapshot; from here
 *     on commits go there.
 *  4. The old segments are deleted, oldest first, and the directory
 *     fsync'ed.
 *
 * Recovery (fs_recover.c) keeps the newest snapshot that is complete:
 * numbered without a gap and ending with its end record.  Segments below
 * it are what it replaced, and are deleted again.  A crash before the end
 * record is durable leaves an incomplete snapshot at the very top, with
 * every old segment still present: recovery deletes the snapshot and
 * reads the old segments.  A .tmp file is deleted in any case.  A failed
 * compaction removes its segments newest first, so the one with the end
 * record goes first and what is left can never look complete.
 *
 * The index learns the new value locations only after step 2 succeeded:
 * a second pass walks the same objects in the same order through the same
 * layout code without writing, which gives the same offsets.
 *
 * Missing: compaction runs on the worker, so every operation waits while the live data is rewritten; a large store stalls for that long.
 */
#include "fs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A snapshot record is closed once its payload reaches this. */
#define FS_SNAP_CHUNK_BYTES (UINT32_C(1) << 20)

/* Buffered snapshot bytes are written out past this, between records. */
#define FS_SNAP_FLUSH_BYTES (1u << 20)

struct fs_snap {
    struct fs_state *fs;
    bool write;           /* first pass: write; second: relocate keys */
    uint32_t base;        /* the snapshot's first segment */
    uint32_t no;          /* the segment being laid out */
    uint64_t seg_off;     /* its bytes so far */
    uint64_t rec_start;   /* file offset of the open record */
    uint64_t rec_payload; /* its payload bytes so far */
    uint32_t rec_n;       /* its writes so far */
    uint64_t objects;

    /* First pass only. */
    int fd;              /* the .tmp file of segment no, or -1 */
    struct fs_buf buf;   /* bytes not yet written */
    uint64_t buf_off;    /* file offset of buf.p[0] */
    size_t rec_at;       /* the open record's start in buf */
    size_t count_at;     /* its write count in buf */
    struct fs_seg *segs; /* finished segments, open */
    size_t nsegs;
    size_t cap_segs;
    torpor_err err;
};

bool
fs_compact_due(const struct fs_state *fs)
{
    if (fs->disk_bytes < fs->compact_hold_bytes
        || fs->disk_bytes <= fs->cfg.compact_min_bytes) {
        return false;
    }
    return (double)fs->disk_bytes
           > fs->cfg.compact_ratio * (double)fs->ix.live_bytes;
}

/* fs_snap_write sends the buffered bytes to the .tmp file. */
static void
fs_snap_write(struct fs_snap *s)
{
    char name[32];
    char path[4096];

    if (s->err != TORPOR_OK || s->buf.len == 0) {
        return;
    }
    if (s->buf.oom) {
        s->err = TORPOR_ENOMEM;
        return;
    }
    if (!fs_write_all(s->fd, s->buf.p, s->buf.len, s->buf_off)) {
        fs_seg_name(name, sizeof(name), s->no, "tmp");
        FS_LOG(s->fs, TORPOR_LOG_ERR, "could not write \"%s\": %s",
               fs_path(s->fs, name, path, sizeof(path)), strerror(errno));
        s->err = TORPOR_EIO;
        return;
    }
    s->buf_off += s->buf.len;
    s->buf.len = 0;
}

static void
fs_snap_begin_segment(struct fs_snap *s, uint32_t no)
{
    struct fs_rec_segment hdr = {
        .no = no, .kind = FS_SEG_SNAPSHOT, .base = s->base};
    uint32_t got;

    s->no = no;
    s->seg_off = FS_REC_HEADER_BYTES + 9;
    if (!s->write || s->err != TORPOR_OK) {
        return;
    }
    s->err = fs_seg_open_tmp(s->fs, &got, &s->fd);
    if (s->err != TORPOR_OK) {
        s->fd = -1;
        return;
    }
    s->buf_off = 0;
    s->buf.len = 0;
    fs_rec_put_segment(&s->buf, &hdr);
}

/* fs_snap_end_segment makes the segment durable under its final name. */
static void
fs_snap_end_segment(struct fs_snap *s)
{
    if (!s->write || s->fd < 0) {
        return;
    }
    fs_snap_write(s);
    if (s->err == TORPOR_OK && s->nsegs == s->cap_segs) {
        size_t cap = s->cap_segs > 0 ? s->cap_segs * 2 : 8;
        struct fs_seg *v = realloc(s->segs, cap * sizeof(*v));

        if (v == NULL) {
            s->err = TORPOR_ENOMEM;
        } else {
            s->segs = v;
            s->cap_segs = cap;
        }
    }
    if (s->err == TORPOR_OK) {
        s->err = fs_seg_publish(s->fs, s->no, s->fd);
    }
    if (s->err != TORPOR_OK) {
        char name[32];

        close(s->fd);
        s->fd = -1;
        fs_seg_name(name, sizeof(name), s->no, "tmp");
        (void)unlinkat(s->fs->dir_fd, name, 0);
        return;
    }
    s->segs[s->nsegs++] = (struct fs_seg){.no = s->no,
                                          .base = s->base,
                                          .kind = FS_SEG_SNAPSHOT,
                                          .fd = s->fd,
                                          .size = s->seg_off};
    s->fd = -1;
}

static void
fs_snap_open_record(struct fs_snap *s, const struct fs_obj *obj)
{
    if (s->seg_off >= s->fs->cfg.segment_bytes) {
        fs_snap_end_segment(s);
        fs_snap_begin_segment(s, s->no + 1);
    }
    s->rec_start = s->seg_off;
    s->rec_payload = fs_rec_object_bytes(obj->class_len, obj->name_len);
    s->rec_n = 0;
    if (s->write) {
        s->rec_at = fs_rec_begin(&s->buf);
        s->count_at =
            fs_rec_put_object(&s->buf, obj->id, obj->meta, obj->class_len,
                              obj->meta + obj->class_len + 1, obj->name_len);
    }
}

static void
fs_snap_close_record(struct fs_snap *s)
{
    s->seg_off += FS_REC_HEADER_BYTES + s->rec_payload;
    if (!s->write || s->buf.oom) {
        return;
    }
    fs_put_u32(s->buf.p + s->count_at, s->rec_n);
    fs_rec_finish(&s->buf, s->rec_at, FS_REC_SNAPSHOT);
    if (s->buf.len >= FS_SNAP_FLUSH_BYTES) {
        fs_snap_write(s);
    }
}

/* fs_snap_room closes a full record before a write of bytes is added. */
static void
fs_snap_room(struct fs_snap *s, const struct fs_obj *obj, size_t bytes)
{
    if (s->rec_n > 0 && s->rec_payload + bytes > FS_SNAP_CHUNK_BYTES) {
        fs_snap_close_record(s);
        fs_snap_open_record(s, obj);
    }
}

static void
fs_snap_key(struct fs_snap *s, const struct fs_obj *obj, struct fs_key *k)
{
    uint64_t value_off;

    fs_snap_room(s, obj,
                 fs_rec_write_bytes(TORPOR_WRITE_PUT, k->klen, k->vlen));
    value_off = s->rec_start + FS_REC_HEADER_BYTES + s->rec_payload + 1 + 4
                + k->klen + 4;
    s->rec_payload += fs_rec_write_bytes(TORPOR_WRITE_PUT, k->klen, k->vlen);
    s->rec_n++;
    if (!s->write) {
        k->seg = s->no;
        k->off = (uint32_t)value_off;
        return;
    }
    fs_buf_u8(&s->buf, TORPOR_WRITE_PUT);
    fs_buf_u32(&s->buf, k->klen);
    fs_buf_bytes(&s->buf, k->key, k->klen);
    fs_buf_u32(&s->buf, k->vlen);
    if (s->err == TORPOR_OK && fs_buf_reserve(&s->buf, k->vlen)) {
        s->err = fs_read_value(s->fs, k, s->buf.p + s->buf.len);
        s->buf.len += k->vlen;
    }
}

static void
fs_snap_alarm(struct fs_snap *s, const struct fs_obj *obj,
              const struct fs_alarm *a)
{
    size_t bytes = fs_rec_write_bytes(TORPOR_WRITE_ALARM_SET, a->nlen, 0);

    fs_snap_room(s, obj, bytes);
    s->rec_payload += bytes;
    s->rec_n++;
    if (s->write) {
        fs_buf_u8(&s->buf, TORPOR_WRITE_ALARM_SET);
        fs_buf_u32(&s->buf, a->nlen);
        fs_buf_bytes(&s->buf, a->name, a->nlen);
        fs_buf_u64(&s->buf, a->time_ms);
    }
}

/*
 * fs_snap_run lays out the whole index.  The first pass writes it; the
 * second, given the same index and order, only moves the keys' locations
 * to where the first pass put their values.
 */
static void
fs_snap_run(struct fs_snap *s, struct fs_obj **order, size_t n)
{
    fs_snap_begin_segment(s, s->base);
    for (size_t i = 0; i < n && s->err == TORPOR_OK; i++) {
        struct fs_obj *obj = order[i];

        fs_snap_open_record(s, obj);
        for (uint32_t j = 0; j < obj->nkeys; j++) {
            fs_snap_key(s, obj, obj->keys[j]);
        }
        for (uint32_t j = 0; j < obj->nalarms; j++) {
            fs_snap_alarm(s, obj, obj->alarms[j]);
        }
        fs_snap_close_record(s);
        s->objects++;
    }
    if (s->write) {
        struct fs_rec_snap_end end = {
            .base = s->base, .last = s->no, .objects = s->objects};

        fs_rec_put_snap_end(&s->buf, &end);
        s->seg_off += FS_REC_HEADER_BYTES + 16;
        fs_snap_end_segment(s);
    }
}

/* fs_snap_discard removes what a failed compaction made, newest first. */
static void
fs_snap_discard(struct fs_snap *s)
{
    char name[32];

    for (size_t i = s->nsegs; i > 0; i--) {
        fs_seg_name(name, sizeof(name), s->segs[i - 1].no, "seg");
        (void)unlinkat(s->fs->dir_fd, name, 0);
        close(s->segs[i - 1].fd);
    }
    if (s->fd >= 0) {
        close(s->fd);
        fs_seg_name(name, sizeof(name), s->no, "tmp");
        (void)unlinkat(s->fs->dir_fd, name, 0);
    }
    (void)fsync(s->fs->dir_fd);
    s->nsegs = 0;
}

/*
 * fs_compact_switch makes the snapshot and the new log segment (the last
 * of fs->segs) the only segments, and deletes the old ones, oldest first.
 */
static void
fs_compact_switch(struct fs_state *fs, struct fs_snap *s)
{
    struct fs_seg active = fs->segs[fs->nsegs - 1];
    char name[32];
    char path[4096];

    for (size_t i = 0; i + 1 < fs->nsegs; i++) {
        fs_seg_name(name, sizeof(name), fs->segs[i].no, "seg");
        close(fs->segs[i].fd);
        if (unlinkat(fs->dir_fd, name, 0) != 0) {
            /* Recovery deletes it: the complete snapshot supersedes it. */
            FS_LOG(fs, TORPOR_LOG_WARN, "could not remove \"%s\": %s",
                   fs_path(fs, name, path, sizeof(path)), strerror(errno));
        }
    }
    free(fs->segs);
    fs->segs = s->segs;
    fs->nsegs = s->nsegs;
    fs->cap_segs = s->cap_segs;
    s->segs = NULL;
    s->nsegs = 0;
    fs->disk_bytes = 0;
    for (size_t i = 0; i < fs->nsegs; i++) {
        fs->disk_bytes += fs->segs[i].size;
    }
    /* fs_compact made room for this one, so it cannot fail. */
    (void)fs_seg_add(fs, active.no, active.kind, active.fd, active.size);
    (void)fs_dir_sync(fs);
}

torpor_err
fs_compact(struct fs_state *fs)
{
    struct fs_snap s = {.fs = fs, .write = true, .fd = -1};
    struct fs_snap relocate = {.fs = fs, .fd = -1};
    uint64_t before = fs->disk_bytes;
    size_t nbefore = fs->nsegs;
    struct fs_obj **order;
    size_t n;

    s.err = fs_sync_active(fs);
    order = fs_index_sorted(&fs->ix, &n);
    if (order == NULL) {
        s.err = TORPOR_ENOMEM;
    }
    s.base = fs->next_seg;
    if (s.err == TORPOR_OK) {
        fs_snap_run(&s, order, n);
    }
    if (s.err == TORPOR_OK) {
        s.err = fs_dir_sync(fs);
    }
    if (s.err == TORPOR_OK && s.nsegs == s.cap_segs) {
        struct fs_seg *v = realloc(s.segs, (s.cap_segs + 1) * sizeof(*v));

        if (v == NULL) {
            s.err = TORPOR_ENOMEM;
        } else {
            s.segs = v;
            s.cap_segs++;
        }
    }
    if (s.err == TORPOR_OK) {
        s.err = fs_seg_create(fs);
    }
    if (s.err != TORPOR_OK) {
        FS_LOG(fs, TORPOR_LOG_ERR,
               "could not compact \"%s\": %s; keeping the old segments",
               fs->cfg.dir, fs->host->strerror(s.err));
        fs_snap_discard(&s);
        free(s.segs);
        fs_buf_free(&s.buf);
        fs->compact_hold_bytes = fs->disk_bytes + fs->cfg.compact_min_bytes;
        return s.err;
    }
    fs_buf_free(&s.buf);
    /* The same walk again, writing nothing: see the comment at the top. */
    relocate.base = s.base;
    fs_snap_run(&relocate, order, n);
    fs_compact_switch(fs, &s);
    free(s.segs);
    fs->compact_hold_bytes = 0;
    FS_LOG(
        fs, TORPOR_LOG_NOTICE,
        "compacted \"%s\": %llu bytes in %zu segments to %llu bytes in %zu segments",
        fs->cfg.dir, (unsigned long long)before, nbefore,
        (unsigned long long)fs->disk_bytes, fs->nsegs);
    return TORPOR_OK;
}
