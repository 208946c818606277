/*
 * Recovery: what start does between taking the lock and starting the
 * worker.  It lists the segments, settles what an interrupted compaction
 * left (see fs_compact.c for the scheme), reads every remaining segment in
 * order into the index and makes sure a log segment is there to append to.
 *
 * Main thread, inside start; the worker does not exist yet.
 *
 * Missing: no checkpoint of the index; start reads every segment, so it takes as long as reading the store's files.
 */
#include "fs.h"
#include "fs_scan.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* fs_recover_name parses "NNNNNNNN.seg" or "NNNNNNNN.tmp". */
static bool
fs_recover_name(const char *name, uint32_t *no, bool *tmp)
{
    uint32_t v = 0;

    if (strlen(name) != 12 || name[8] != '.') {
        return false;
    }
    for (int i = 0; i < 8; i++) {
        char c = name[i];

        if (c >= '0' && c <= '9') {
            v = v * 16 + (uint32_t)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            v = v * 16 + (uint32_t)(c - 'a' + 10);
        } else {
            return false;
        }
    }
    if (strcmp(name + 9, "seg") == 0) {
        *tmp = false;
    } else if (strcmp(name + 9, "tmp") == 0) {
        *tmp = true;
    } else {
        return false;
    }
    *no = v;
    return true;
}

static int
fs_recover_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a;
    uint32_t y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/*
 * fs_recover_list collects the numbers of the .seg files, sorted, and
 * deletes .tmp files: a segment is only ever unfinished under that name.
 */
static torpor_err
fs_recover_list(struct fs_state *fs, uint32_t **nums, size_t *n)
{
    size_t cap = 0;
    struct dirent *e;
    DIR *d;
    int fd = dup(fs->dir_fd);

    *nums = NULL;
    *n = 0;
    d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        FS_LOG(fs, TORPOR_LOG_ERR, "could not list data directory \"%s\": %s",
               fs->cfg.dir, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return TORPOR_EIO;
    }
    rewinddir(d);
    while ((e = readdir(d)) != NULL) {
        uint32_t no;
        bool tmp;

        if (!fs_recover_name(e->d_name, &no, &tmp)) {
            continue;
        }
        if (tmp) {
            FS_LOG(fs, TORPOR_LOG_WARN,
                   "removed \"%s/%s\", a segment left unfinished", fs->cfg.dir,
                   e->d_name);
            (void)unlinkat(fs->dir_fd, e->d_name, 0);
            continue;
        }
        if (*n == cap) {
            uint32_t *v;

            cap = cap > 0 ? cap * 2 : 16;
            v = realloc(*nums, cap * sizeof(*v));
            if (v == NULL) {
                closedir(d);
                return TORPOR_ENOMEM;
            }
            *nums = v;
        }
        (*nums)[(*n)++] = no;
    }
    closedir(d);
    if (*n > 0) {
        qsort(*nums, *n, sizeof(**nums), fs_recover_cmp);
    }
    return TORPOR_OK;
}

/* fs_recover_header opens segment no and checks its first record. */
static torpor_err
fs_recover_header(struct fs_state *fs, uint32_t no)
{
    struct fs_reader r = {.fd = -1};
    struct fs_rec_segment seg;
    struct fs_rec_header h;
    const uint8_t *payload;
    const char *why = "not a segment header";
    char name[32];
    char path[4096];
    struct stat st;
    torpor_err err;
    int rc;
    int fd;

    fs_seg_name(name, sizeof(name), no, "seg");
    fs_path(fs, name, path, sizeof(path));
    r.fd = openat(fs->dir_fd, name, O_RDWR | O_CLOEXEC);
    if (r.fd < 0 || fstat(r.fd, &st) != 0) {
        FS_LOG(fs, TORPOR_LOG_ERR, "could not open \"%s\": %s", path,
               strerror(errno));
        if (r.fd >= 0) {
            close(r.fd);
        }
        return TORPOR_EIO;
    }
    r.size = (uint64_t)st.st_size;
    rc = fs_reader_record(&r, 0, &h, &payload, &why);
    if (rc == FS_SCAN_OK
        && (h.type != FS_REC_SEGMENT
            || !fs_rec_segment_decode(payload, h.len, &seg) || seg.no != no)) {
        rc = FS_SCAN_BAD;
        why = "not this segment's header";
    }
    fd = r.fd;
    if (rc == FS_SCAN_IO) {
        why = strerror(errno);
    }
    fs_reader_free(&r);
    if (rc != FS_SCAN_OK) {
        FS_LOG(fs, TORPOR_LOG_ERR,
               "could not recover \"%s\": corrupt record at offset 0 (%s)",
               path, why);
        close(fd);
        return TORPOR_EIO;
    }
    err = fs_seg_add(fs, no, seg.kind, fd, (uint64_t)st.st_size);
    if (err != TORPOR_OK) {
        close(fd);
        return err;
    }
    fs->segs[fs->nsegs - 1].base = seg.base;
    return TORPOR_OK;
}

/* fs_recover_remove deletes segments [from, to) of the table. */
static torpor_err
fs_recover_remove(struct fs_state *fs, size_t from, size_t to)
{
    char name[32];
    char path[4096];

    for (size_t i = from; i < to; i++) {
        struct fs_seg *s = &fs->segs[i];

        fs_seg_name(name, sizeof(name), s->no, "seg");
        close(s->fd);
        fs->disk_bytes -= s->size;
        if (unlinkat(fs->dir_fd, name, 0) != 0) {
            FS_LOG(fs, TORPOR_LOG_ERR, "could not remove \"%s\": %s",
                   fs_path(fs, name, path, sizeof(path)), strerror(errno));
            return TORPOR_EIO;
        }
    }
    memmove(&fs->segs[from], &fs->segs[to],
            (fs->nsegs - to) * sizeof(*fs->segs));
    fs->nsegs -= to - from;
    return fs_dir_sync(fs);
}

/*
 * fs_recover_snapshot_end says whether segment i, the last of a snapshot
 * that starts at base, ends with that snapshot's end record.
 */
static torpor_err
fs_recover_snapshot_end(struct fs_state *fs, size_t i, bool *complete)
{
    struct fs_seg *seg = &fs->segs[i];
    struct fs_scan s = {.no = seg->no, .kind = seg->kind};
    char name[32];
    char path[4096];
    torpor_err err;

    fs_seg_name(name, sizeof(name), seg->no, "seg");
    s.path = fs_path(fs, name, path, sizeof(path));
    s.r.fd = seg->fd;
    s.r.size = seg->size;
    err = fs_scan_segment(fs, &s);
    fs_reader_free(&s.r);
    *complete = err == TORPOR_OK && s.end_seen && s.end.base == seg->base
                && s.end.last == seg->no;
    return err;
}

/*
 * fs_recover_snapshots keeps the newest complete snapshot and what came
 * after it.  A snapshot is complete when its segments are numbered base,
 * base + 1, ... without a gap and the last ends with its end record.  An
 * incomplete one is a compaction that crashed: nothing was appended after
 * it and the segments it meant to replace are all still there, so it goes.
 */
static torpor_err
fs_recover_snapshots(struct fs_state *fs)
{
    for (;;) {
        size_t top = fs->nsegs;
        size_t first;
        bool complete = true;
        torpor_err err;

        while (top > 0 && fs->segs[top - 1].kind != FS_SEG_SNAPSHOT) {
            top--;
        }
        if (top == 0) {
            return TORPOR_OK;
        }
        top--;
        first = top;
        while (first > 0 && fs->segs[first - 1].kind == FS_SEG_SNAPSHOT
               && fs->segs[first - 1].base == fs->segs[top].base) {
            first--;
        }
        for (size_t i = first; i <= top; i++) {
            if (fs->segs[i].no != fs->segs[top].base + (i - first)) {
                complete = false;
            }
        }
        if (complete) {
            err = fs_recover_snapshot_end(fs, top, &complete);
            if (err != TORPOR_OK) {
                return err;
            }
        }
        if (complete) {
            return first > 0 ? fs_recover_remove(fs, 0, first) : TORPOR_OK;
        }
        if (top + 1 != fs->nsegs) {
            FS_LOG(
                fs, TORPOR_LOG_ERR,
                "could not recover \"%s\": snapshot segments %08x to %08x are incomplete but newer segments follow",
                fs->cfg.dir, (unsigned)fs->segs[first].no,
                (unsigned)fs->segs[top].no);
            return TORPOR_EIO;
        }
        FS_LOG(
            fs, TORPOR_LOG_WARN,
            "removed segments %08x to %08x of \"%s\", a compaction left unfinished",
            (unsigned)fs->segs[first].no, (unsigned)fs->segs[top].no,
            fs->cfg.dir);
        err = fs_recover_remove(fs, first, top + 1);
        if (err != TORPOR_OK) {
            return err;
        }
    }
}

/* fs_recover_load reads every segment, oldest first, into the index. */
static torpor_err
fs_recover_load(struct fs_state *fs)
{
    for (size_t i = 0; i < fs->nsegs; i++) {
        struct fs_seg *seg = &fs->segs[i];
        struct fs_scan s = {.no = seg->no, .kind = seg->kind, .apply = true};
        char name[32];
        char path[4096];
        torpor_err err;

        fs_seg_name(name, sizeof(name), seg->no, "seg");
        s.path = fs_path(fs, name, path, sizeof(path));
        s.last = i + 1 == fs->nsegs;
        s.r.fd = seg->fd;
        s.r.size = seg->size;
        err = fs_scan_segment(fs, &s);
        fs_reader_free(&s.r);
        if (err != TORPOR_OK) {
            return err;
        }
        fs->disk_bytes -= seg->size - s.r.size;
        seg->size = s.r.size;
    }
    return TORPOR_OK;
}

torpor_err
fs_recover(struct fs_state *fs)
{
    uint32_t *nums;
    size_t n;
    torpor_err err = fs_recover_list(fs, &nums, &n);

    for (size_t i = 0; err == TORPOR_OK && i < n; i++) {
        err = fs_recover_header(fs, nums[i]);
    }
    free(nums);
    if (err == TORPOR_OK) {
        err = fs_recover_snapshots(fs);
    }
    if (err == TORPOR_OK) {
        err = fs_recover_load(fs);
    }
    if (err == TORPOR_OK
        && (fs->nsegs == 0 || fs->segs[fs->nsegs - 1].kind != FS_SEG_LOG)) {
        err = fs_seg_create(fs);
    }
    if (err != TORPOR_OK) {
        return err;
    }
    FS_LOG(
        fs, TORPOR_LOG_NOTICE,
        "loaded \"%s\": %zu objects, %llu keys, %zu alarms, %zu segments, %llu bytes",
        fs->cfg.dir, fs->ix.nobjs, (unsigned long long)fs->ix.nkeys,
        fs->ix.nheap, fs->nsegs, (unsigned long long)fs->disk_bytes);
    return TORPOR_OK;
}
