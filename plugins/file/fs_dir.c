/*
 * The data directory: creating it, locking it against a second process,
 * and the segment files in it.
 *
 * A segment is born as "NNNNNNNN.tmp", written and fsync'ed, and only then
 * renamed to "NNNNNNNN.seg" and the directory fsync'ed.  A .seg file
 * therefore always starts with a whole header record, and a .tmp file is
 * always unfinished work that recovery may delete.
 */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

const char *
fs_path(const struct fs_state *fs, const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", fs->cfg.dir, name);
    return buf;
}

void
fs_seg_name(char *buf, size_t size, uint32_t no, const char *ext)
{
    snprintf(buf, size, "%08x.%s", (unsigned)no, ext);
}

bool
fs_write_all(int fd, const void *data, size_t len, uint64_t off)
{
    const uint8_t *p = data;

    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            if (n == 0) {
                errno = ENOSPC;
            }
            return false;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return true;
}

bool
fs_read_all(int fd, void *data, size_t len, uint64_t off)
{
    uint8_t *p = data;

    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            if (n == 0) {
                errno = EIO; /* the file is shorter than the index says */
            }
            return false;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return true;
}

/* fs_mkdirs creates path and its missing parents, like mkdir -p. */
static int
fs_mkdirs(const char *path)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);

    if (len >= sizeof(buf)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0') {
            continue;
        }
        char c = buf[i];

        buf[i] = '\0';
        if (mkdir(buf, 0750) != 0 && errno != EEXIST) {
            return -1;
        }
        buf[i] = c;
    }
    return 0;
}

/* fs_lock_owner reads the pid the holder of the lock wrote; 0 if none. */
static long
fs_lock_owner(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

    if (n <= 0) {
        return 0;
    }
    buf[n] = '\0';
    return strtol(buf, NULL, 10);
}

/*
 * fs_lock takes the directory's LOCK file.  flock locks belong to the open
 * file description, so a second store in this very process is refused as
 * well as another process; fcntl locks would let the same process in.
 */
static torpor_err
fs_lock(struct fs_state *fs)
{
    char line[32];
    int fd = openat(fs->dir_fd, "LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0644);

    if (fd < 0) {
        FS_LOG(fs, TORPOR_LOG_ERR, "could not open \"%s/LOCK\": %s",
               fs->cfg.dir, strerror(errno));
        return TORPOR_EIO;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        long pid = fs_lock_owner(fd);

        close(fd);
        if (e == EWOULDBLOCK) {
            FS_LOG(
                fs, TORPOR_LOG_ERR,
                "could not lock data directory \"%s\": in use by another process (pid %ld)",
                fs->cfg.dir, pid);
            return TORPOR_EBUSY;
        }
        FS_LOG(fs, TORPOR_LOG_ERR, "could not lock data directory \"%s\": %s",
               fs->cfg.dir, strerror(e));
        return TORPOR_EIO;
    }
    snprintf(line, sizeof(line), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || !fs_write_all(fd, line, strlen(line), 0)) {
        FS_LOG(fs, TORPOR_LOG_ERR, "could not write \"%s/LOCK\": %s",
               fs->cfg.dir, strerror(errno));
        close(fd);
        return TORPOR_EIO;
    }
    fs->lock_fd = fd;
    return TORPOR_OK;
}

torpor_err
fs_dir_open(struct fs_state *fs)
{
    torpor_err err;

    if (fs_mkdirs(fs->cfg.dir) != 0) {
        FS_LOG(fs, TORPOR_LOG_ERR, "could not create data directory \"%s\": %s",
               fs->cfg.dir, strerror(errno));
        return TORPOR_EIO;
    }
    fs->dir_fd = open(fs->cfg.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fs->dir_fd < 0) {
        FS_LOG(fs, TORPOR_LOG_ERR, "could not open data directory \"%s\": %s",
               fs->cfg.dir, strerror(errno));
        return TORPOR_EIO;
    }
    err = fs_lock(fs);
    if (err != TORPOR_OK) {
        close(fs->dir_fd);
        fs->dir_fd = -1;
    }
    return err;
}

void
fs_dir_close(struct fs_state *fs)
{
    for (size_t i = 0; i < fs->nsegs; i++) {
        close(fs->segs[i].fd);
    }
    free(fs->segs);
    fs->segs = NULL;
    fs->nsegs = 0;
    fs->cap_segs = 0;
    if (fs->dir_fd >= 0) {
        close(fs->dir_fd);
        fs->dir_fd = -1;
    }
    /* Closing the only descriptor of the lock releases it. */
    if (fs->lock_fd >= 0) {
        close(fs->lock_fd);
        fs->lock_fd = -1;
    }
}

torpor_err
fs_dir_sync(struct fs_state *fs)
{
    if (fsync(fs->dir_fd) != 0) {
        FS_LOG(fs, TORPOR_LOG_ERR, "could not sync data directory \"%s\": %s",
               fs->cfg.dir, strerror(errno));
        return TORPOR_EIO;
    }
    return TORPOR_OK;
}

struct fs_seg *
fs_seg_find(struct fs_state *fs, uint32_t no)
{
    size_t lo = 0;
    size_t hi = fs->nsegs;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (fs->segs[mid].no < no) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < fs->nsegs && fs->segs[lo].no == no ? &fs->segs[lo] : NULL;
}

torpor_err
fs_seg_add(struct fs_state *fs, uint32_t no, uint8_t kind, int fd,
           uint64_t size)
{
    if (fs->nsegs == fs->cap_segs) {
        size_t cap = fs->cap_segs > 0 ? fs->cap_segs * 2 : 16;
        struct fs_seg *v = realloc(fs->segs, cap * sizeof(*v));

        if (v == NULL) {
            return TORPOR_ENOMEM;
        }
        fs->segs = v;
        fs->cap_segs = cap;
    }
    fs->segs[fs->nsegs++] =
        (struct fs_seg){.no = no, .kind = kind, .fd = fd, .size = size};
    fs->disk_bytes += size;
    if (no >= fs->next_seg) {
        fs->next_seg = no + 1;
    }
    return TORPOR_OK;
}

torpor_err
fs_seg_open_tmp(struct fs_state *fs, uint32_t *no, int *fd)
{
    char name[32];
    char path[4096];

    if (fs->next_seg == UINT32_MAX) {
        FS_LOG(
            fs, TORPOR_LOG_ERR,
            "could not create a segment in \"%s\": segment numbers exhausted",
            fs->cfg.dir);
        return TORPOR_EIO;
    }
    *no = fs->next_seg++;
    fs_seg_name(name, sizeof(name), *no, "tmp");
    *fd =
        openat(fs->dir_fd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (*fd < 0) {
        FS_LOG(fs, TORPOR_LOG_ERR, "could not create \"%s\": %s",
               fs_path(fs, name, path, sizeof(path)), strerror(errno));
        return TORPOR_EIO;
    }
    return TORPOR_OK;
}

torpor_err
fs_seg_publish(struct fs_state *fs, uint32_t no, int fd)
{
    char tmp[32];
    char seg[32];
    char path[4096];

    fs_seg_name(tmp, sizeof(tmp), no, "tmp");
    fs_seg_name(seg, sizeof(seg), no, "seg");
    if (fsync(fd) != 0) {
        FS_LOG(fs, TORPOR_LOG_ERR, "could not sync \"%s\": %s",
               fs_path(fs, tmp, path, sizeof(path)), strerror(errno));
        return TORPOR_EIO;
    }
    if (renameat(fs->dir_fd, tmp, fs->dir_fd, seg) != 0) {
        FS_LOG(fs, TORPOR_LOG_ERR, "could not rename \"%s\": %s",
               fs_path(fs, tmp, path, sizeof(path)), strerror(errno));
        return TORPOR_EIO;
    }
    return TORPOR_OK;
}

torpor_err
fs_seg_create(struct fs_state *fs)
{
    struct fs_rec_segment hdr = {.kind = FS_SEG_LOG};
    struct fs_buf b = {0};
    char name[32];
    char path[4096];
    torpor_err err;
    uint32_t no;
    int fd;

    err = fs_seg_open_tmp(fs, &no, &fd);
    if (err != TORPOR_OK) {
        return err;
    }
    hdr.no = no;
    fs_rec_put_segment(&b, &hdr);
    fs_seg_name(name, sizeof(name), no, "tmp");
    if (b.oom) {
        err = TORPOR_ENOMEM;
    } else if (!fs_write_all(fd, b.p, b.len, 0)) {
        FS_LOG(fs, TORPOR_LOG_ERR, "could not write \"%s\": %s",
               fs_path(fs, name, path, sizeof(path)), strerror(errno));
        err = TORPOR_EIO;
    } else {
        err = fs_seg_publish(fs, no, fd);
    }
    if (err == TORPOR_OK) {
        err = fs_dir_sync(fs);
    }
    if (err == TORPOR_OK) {
        err = fs_seg_add(fs, no, FS_SEG_LOG, fd, b.len);
    }
    if (err != TORPOR_OK) {
        char seg[32];

        close(fd);
        fs_seg_name(seg, sizeof(seg), no, "seg");
        (void)unlinkat(fs->dir_fd, name, 0);
        (void)unlinkat(fs->dir_fd, seg, 0);
    }
    fs_buf_free(&b);
    return err;
}
