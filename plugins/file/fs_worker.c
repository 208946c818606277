/*
 * The worker thread: it owns the segment files and the index, and runs
 * every queued request.
 *
 * Group commit: the worker takes everything queued at once and runs it in
 * queue order.  Commit and drop records are gathered and written together
 * with one pwritev, then applied to the index; a read in between first
 * writes what was gathered before it, so it sees every commit queued
 * earlier.  Under fsync = always one fsync then covers the whole batch,
 * of every object, and only after it are the completions posted, all in
 * queue order, which keeps each object's completions in order too.  While
 * the worker syncs, new requests queue up and form the next batch.
 *
 * The index is changed only after a record is written, so a commit whose
 * write fails leaves nothing behind; the bytes of a failed write are cut
 * off again so that the next record does not follow garbage.  A failed
 * fsync leaves the file in a state nobody knows: the store then fails
 * every request with TORPOR_EIO until it is restarted and recovered.
 */
#include "fs.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* Records per pwritev call. */
#define FS_WORKER_IOV 64

/* What an empty segment holds: its header record. */
#define FS_SEG_HEADER_BYTES (FS_REC_HEADER_BYTES + 9)

void
fs_req_free(struct fs_req *req)
{
    free(req->out);
    fs_buf_free(&req->rec);
    free(req);
}

/* fs_req_done runs on the caller's loop: report, then free everything. */
static void
fs_req_done(torpor_task *task)
{
    struct fs_req *req = (struct fs_req *)task;

    switch (req->op) {
    case FS_OP_GET:
    case FS_OP_LIST:
        req->cb.rows(req->arg, req->err, req->out, req->nout);
        break;
    case FS_OP_ALARMS:
    case FS_OP_DUE:
        req->cb.alarms(req->arg, req->err, req->out, req->nout);
        break;
    case FS_OP_OBJECTS:
        req->cb.objects(req->arg, req->err, req->out, req->nout);
        break;
    default:
        req->cb.done(req->arg, req->err);
        break;
    }
    fs_req_free(req);
}

torpor_err
fs_sync_active(struct fs_state *fs)
{
    struct fs_seg *seg = &fs->segs[fs->nsegs - 1];
    char name[32];
    char path[4096];

    if (!fs->dirty) {
        return TORPOR_OK;
    }
    if (fdatasync(seg->fd) != 0) {
        fs_seg_name(name, sizeof(name), seg->no, "seg");
        FS_LOG(
            fs, TORPOR_LOG_ERR,
            "could not sync \"%s\": %s; failing every operation until restarted",
            fs_path(fs, name, path, sizeof(path)), strerror(errno));
        fs->failed = true;
        return TORPOR_EIO;
    }
    fs->dirty = false;
    fs->synced_ms = fs->host->now_ms();
    return TORPOR_OK;
}

/* fs_worker_writev writes iov[0..n) whole at off, resuming short writes. */
static bool
fs_worker_writev(int fd, struct iovec *iov, int n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = pwritev(fd, iov, n, (off_t)off);

        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            if (w == 0) {
                errno = ENOSPC;
            }
            return false;
        }
        off += (uint64_t)w;
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return true;
}

/* fs_worker_write_pending writes the gathered records; errno on false. */
static bool
fs_worker_write_pending(struct fs_state *fs, struct fs_seg *seg)
{
    struct iovec iov[FS_WORKER_IOV];
    uint64_t off = seg->size;

    for (size_t i = 0; i < fs->npending; i += FS_WORKER_IOV) {
        size_t n = fs->npending - i;
        uint64_t bytes = 0;

        n = n < FS_WORKER_IOV ? n : FS_WORKER_IOV;
        for (size_t j = 0; j < n; j++) {
            iov[j].iov_base = fs->pending[i + j]->rec.p;
            iov[j].iov_len = fs->pending[i + j]->rec.len;
            bytes += fs->pending[i + j]->rec.len;
        }
        if (!fs_worker_writev(seg->fd, iov, (int)n, off)) {
            return false;
        }
        off += bytes;
    }
    return true;
}

/* fs_worker_apply puts one written record into the index. */
static void
fs_worker_apply(struct fs_state *fs, struct fs_req *req, uint32_t seg)
{
    const uint8_t *payload = req->rec.p + FS_REC_HEADER_BYTES;
    size_t len = req->rec.len - FS_REC_HEADER_BYTES;
    torpor_err err;

    if (req->op == FS_OP_DROP) {
        fs_index_drop(&fs->ix, payload);
        return;
    }
    err = fs_index_apply(&fs->ix, payload, len, seg,
                         req->rec_off + FS_REC_HEADER_BYTES);
    if (err != TORPOR_OK) {
        /* The record is on disk but the index lacks part of it. */
        FS_LOG(
            fs, TORPOR_LOG_ERR,
            "could not apply a commit to the index: %s; failing every operation until restarted",
            fs->host->strerror(err));
        fs->failed = true;
        req->err = err;
    }
}

/* fs_worker_flush writes and applies the gathered commits and drops. */
static void
fs_worker_flush(struct fs_state *fs)
{
    struct fs_seg *seg = &fs->segs[fs->nsegs - 1];
    char name[32];
    char path[4096];

    if (fs->npending == 0) {
        return;
    }
    if (fs_worker_write_pending(fs, seg)) {
        seg->size += fs->pending_bytes;
        fs->disk_bytes += fs->pending_bytes;
        fs->dirty = true;
        for (size_t i = 0; i < fs->npending; i++) {
            fs_worker_apply(fs, fs->pending[i], seg->no);
        }
    } else {
        fs_seg_name(name, sizeof(name), seg->no, "seg");
        fs_path(fs, name, path, sizeof(path));
        FS_LOG(fs, TORPOR_LOG_ERR, "could not write \"%s\": %s", path,
               strerror(errno));
        for (size_t i = 0; i < fs->npending; i++) {
            fs->pending[i]->err = TORPOR_EIO;
        }
        if (ftruncate(seg->fd, (off_t)seg->size) != 0) {
            FS_LOG(
                fs, TORPOR_LOG_ERR,
                "could not truncate \"%s\": %s; failing every operation until restarted",
                path, strerror(errno));
            fs->failed = true;
        }
    }
    fs->npending = 0;
    fs->pending_bytes = 0;
}

/*
 * fs_worker_roll closes the active segment and begins the next.  The old
 * one is synced whatever the policy, so that only the newest segment can
 * ever end in a torn record.
 */
static torpor_err
fs_worker_roll(struct fs_state *fs)
{
    torpor_err err = fs_sync_active(fs);
    if (err == TORPOR_OK) {
        err = fs_seg_create(fs);
    }
    return err;
}

/* fs_worker_append gathers one commit or drop for the next write. */
static void
fs_worker_append(struct fs_state *fs, struct fs_req *req)
{
    struct fs_seg *seg = &fs->segs[fs->nsegs - 1];
    uint64_t end = seg->size + fs->pending_bytes;

    if (end + req->rec.len > fs->cfg.segment_bytes
        && end > FS_SEG_HEADER_BYTES) {
        fs_worker_flush(fs);
        if (fs->failed || fs_worker_roll(fs) != TORPOR_OK) {
            req->err = TORPOR_EIO;
            return;
        }
        seg = &fs->segs[fs->nsegs - 1];
        end = seg->size;
    }
    if (fs->npending == fs->cap_pending) {
        size_t cap = fs->cap_pending > 0 ? fs->cap_pending * 2 : 64;
        struct fs_req **v = realloc(fs->pending, cap * sizeof(*v));

        if (v == NULL) {
            req->err = TORPOR_ENOMEM;
            return;
        }
        fs->pending = v;
        fs->cap_pending = cap;
    }
    req->rec_off = end;
    fs->pending[fs->npending++] = req;
    fs->pending_bytes += req->rec.len;
}

/* fs_worker_batch runs a batch in queue order, then posts its results. */
static void
fs_worker_batch(struct fs_state *fs, struct fs_req *batch)
{
    struct fs_req *req;

    for (req = batch; req != NULL; req = req->next) {
        if (fs->failed) {
            req->err = TORPOR_EIO;
        } else if (req->op == FS_OP_COMMIT || req->op == FS_OP_DROP) {
            fs_worker_append(fs, req);
        } else {
            fs_worker_flush(fs);
            if (fs->failed) {
                req->err = TORPOR_EIO;
            } else {
                fs_read_exec(fs, req);
            }
        }
    }
    fs_worker_flush(fs);
    if (fs->cfg.sync == FS_SYNC_ALWAYS && fs->dirty
        && fs_sync_active(fs) != TORPOR_OK) {
        /* Nothing in this batch is known to be durable, reads included. */
        for (req = batch; req != NULL; req = req->next) {
            free(req->out);
            req->out = NULL;
            req->nout = 0;
            req->err = TORPOR_EIO;
        }
    }
    while (batch != NULL) {
        req = batch;
        batch = req->next; /* req may be freed once posted */
        req->task.run = fs_req_done;
        fs->host->loop_post(req->loop, &req->task);
    }
}

/* fs_worker_deadline: when an fsync is owed under fsync = interval. */
static bool
fs_worker_deadline(struct fs_state *fs, struct timespec *ts)
{
    uint64_t due = fs->synced_ms + fs->cfg.sync_interval_ms;
    uint64_t now = fs->host->now_ms();
    uint64_t wait = due > now ? due - now : 0;

    if (!fs->dirty || fs->cfg.sync != FS_SYNC_INTERVAL) {
        return false;
    }
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(wait / 1000);
    ts->tv_nsec += (long)(wait % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
    return true;
}

/* fs_worker_wait sleeps under mu until there is work or a sync is owed. */
static void
fs_worker_wait(struct fs_state *fs)
{
    struct timespec ts;

    while (fs->head == NULL && !fs->closing && !fs->sync_asked) {
        if (!fs_worker_deadline(fs, &ts)) {
            pthread_cond_wait(&fs->cv, &fs->mu);
        } else if (pthread_cond_timedwait(&fs->cv, &fs->mu, &ts) == ETIMEDOUT) {
            return;
        }
    }
}

static void *
fs_worker_main(void *arg)
{
    struct fs_state *fs = arg;
    sigset_t all;

    /* Signals belong to the loops; this thread only does file work. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    pthread_mutex_lock(&fs->mu);
    for (;;) {
        struct fs_req *batch;
        bool closing;
        bool sync;

        fs_worker_wait(fs);
        batch = fs->head;
        fs->head = NULL;
        fs->tail = NULL;
        closing = fs->closing;
        sync = fs->sync_asked;
        fs->sync_asked = false;
        pthread_mutex_unlock(&fs->mu);

        if (batch != NULL) {
            fs_worker_batch(fs, batch);
        }
        if (fs->dirty && !fs->failed
            && (sync || closing
                || (fs->cfg.sync == FS_SYNC_INTERVAL
                    && fs->host->now_ms() - fs->synced_ms
                           >= fs->cfg.sync_interval_ms))) {
            (void)fs_sync_active(fs);
        }
        if (!fs->failed && !closing && fs_compact_due(fs)) {
            (void)fs_compact(fs);
        }
        pthread_mutex_lock(&fs->mu);
        if (closing && batch == NULL && fs->head == NULL) {
            break;
        }
    }
    pthread_mutex_unlock(&fs->mu);
    return NULL;
}

torpor_err
fs_worker_start(struct fs_state *fs)
{
    int rc;

    fs->synced_ms = fs->host->now_ms();
    rc = pthread_create(&fs->thread, NULL, fs_worker_main, fs);
    if (rc != 0) {
        FS_LOG(fs, TORPOR_LOG_ERR, "could not start the storage thread: %s",
               strerror(rc));
        return TORPOR_ENOMEM;
    }
    fs->thread_started = true;
    pthread_mutex_lock(&fs->mu);
    fs->running = true;
    pthread_mutex_unlock(&fs->mu);
    return TORPOR_OK;
}

void
fs_worker_stop(struct fs_state *fs)
{
    if (!fs->thread_started) {
        return;
    }
    pthread_mutex_lock(&fs->mu);
    fs->closing = true;
    pthread_cond_signal(&fs->cv);
    pthread_mutex_unlock(&fs->mu);
    pthread_join(fs->thread, NULL);
    fs->thread_started = false;
}

torpor_err
fs_queue(struct fs_state *fs, struct fs_req *req)
{
    pthread_mutex_lock(&fs->mu);
    if (fs->closing || !fs->running) {
        torpor_err err = fs->closing ? TORPOR_ECLOSED : TORPOR_ESTATE;

        pthread_mutex_unlock(&fs->mu);
        return err;
    }
    req->next = NULL;
    if (fs->tail != NULL) {
        fs->tail->next = req;
    } else {
        fs->head = req;
        pthread_cond_signal(&fs->cv);
    }
    fs->tail = req;
    pthread_mutex_unlock(&fs->mu);
    return TORPOR_OK;
}
