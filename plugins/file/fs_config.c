/*
 * The [storage.file] section of the configuration.  Keys arrive one by one
 * through the configure hook, on the main thread, before start.
 *
 * dir = ./torpor-data
 *     The data directory, created at start if missing (with its parents).
 *     It holds a LOCK file, which one process at a time may hold, and the
 *     segment files.  A relative path is taken from torpord's working
 *     directory.
 *
 * fsync = always
 *     When a commit counts as done.  always: its completion waits until
 *     its bytes are on disk; commits queued together, of any object, share
 *     one fsync.  interval: the completion follows the write to the
 *     operating system, and the file is synced every fsync_interval_ms; a
 *     machine crash (not a process crash) loses at most that much.  never:
 *     the operating system decides; for tests and caches.
 *
 * fsync_interval_ms = 10
 *     With fsync = interval, the longest time written data waits for its
 *     fsync.
 *
 * segment_bytes = 67108864
 *     Size at which the active segment file is closed and a new one begun.
 *     A single commit larger than this gets a segment of its own.
 *
 * compact_ratio = 2
 *     Compaction rewrites the live data into new segments and deletes the
 *     old ones when the files take more than this many times the bytes of
 *     the live data.  A decimal number from 1.1.
 *
 * compact_min_bytes = 4194304
 *     No compaction while the files take less than this, whatever the
 *     ratio: rewriting a small store saves too little to be worth it.
 */
#include "fs.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FS_DEFAULT_DIR "./torpor-data"

static void
fs_config_why(char *why, size_t why_size, const char *text)
{
    if (why != NULL && why_size > 0) {
        snprintf(why, why_size, "%s", text);
    }
}

/*
 * fs_config_uint parses a decimal integer in [min, max].  strtoull alone
 * accepts a sign and leading blanks, so the first character is checked.
 */
static torpor_err
fs_config_uint(const char *value, uint64_t min, uint64_t max, uint64_t *out,
               char *why, size_t why_size)
{
    unsigned long long v;
    char *end;

    if (value[0] < '0' || value[0] > '9') {
        goto bad;
    }
    errno = 0;
    v = strtoull(value, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        goto bad;
    }
    *out = v;
    return TORPOR_OK;

bad:
    if (why != NULL && why_size > 0) {
        snprintf(why, why_size, "expected an integer from %llu to %llu",
                 (unsigned long long)min, (unsigned long long)max);
    }
    return TORPOR_EINVAL;
}

/*
 * fs_config_ratio parses a plain decimal such as 2 or 1.5.  Below 1.1 a
 * freshly compacted store would soon qualify again, since the snapshot
 * carries record headers the live count leaves out.
 */
static torpor_err
fs_config_ratio(const char *value, double *out, char *why, size_t why_size)
{
    char *end;
    double v;

    if (value[0] < '0' || value[0] > '9') {
        goto bad;
    }
    errno = 0;
    v = strtod(value, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v) || v < 1.1 || v > 1000) {
        goto bad;
    }
    *out = v;
    return TORPOR_OK;

bad:
    fs_config_why(why, why_size, "expected a number from 1.1 to 1000");
    return TORPOR_EINVAL;
}

static torpor_err
fs_config_dir(struct fs_config *cfg, const char *value, char *why,
              size_t why_size)
{
    char *copy;

    if (value[0] == '\0') {
        fs_config_why(why, why_size, "expected a directory path");
        return TORPOR_EINVAL;
    }
    if (strlen(value) > 3000) {
        fs_config_why(why, why_size, "path too long");
        return TORPOR_EINVAL;
    }
    copy = strdup(value);
    if (copy == NULL) {
        return TORPOR_ENOMEM;
    }
    free(cfg->dir);
    cfg->dir = copy;
    return TORPOR_OK;
}

static torpor_err
fs_config_sync(struct fs_config *cfg, const char *value, char *why,
               size_t why_size)
{
    if (strcmp(value, "always") == 0) {
        cfg->sync = FS_SYNC_ALWAYS;
    } else if (strcmp(value, "interval") == 0) {
        cfg->sync = FS_SYNC_INTERVAL;
    } else if (strcmp(value, "never") == 0) {
        cfg->sync = FS_SYNC_NEVER;
    } else {
        fs_config_why(why, why_size, "expected always, interval or never");
        return TORPOR_EINVAL;
    }
    return TORPOR_OK;
}

torpor_err
fs_config_defaults(struct fs_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->dir = strdup(FS_DEFAULT_DIR);
    if (cfg->dir == NULL) {
        return TORPOR_ENOMEM;
    }
    cfg->sync = FS_SYNC_ALWAYS;
    cfg->sync_interval_ms = 10;
    cfg->segment_bytes = 67108864;
    cfg->compact_ratio = 2;
    cfg->compact_min_bytes = 4194304;
    return TORPOR_OK;
}

void
fs_config_free(struct fs_config *cfg)
{
    free(cfg->dir);
    cfg->dir = NULL;
}

torpor_err
fs_config_set(struct fs_config *cfg, const char *key, const char *value,
              char *why, size_t why_size)
{
    if (strcmp(key, "dir") == 0) {
        return fs_config_dir(cfg, value, why, why_size);
    }
    if (strcmp(key, "fsync") == 0) {
        return fs_config_sync(cfg, value, why, why_size);
    }
    if (strcmp(key, "fsync_interval_ms") == 0) {
        return fs_config_uint(value, 1, 60000, &cfg->sync_interval_ms, why,
                              why_size);
    }
    if (strcmp(key, "segment_bytes") == 0) {
        /* Offsets within a segment are 32-bit; see struct fs_key. */
        return fs_config_uint(value, 4096, UINT64_C(1) << 30,
                              &cfg->segment_bytes, why, why_size);
    }
    if (strcmp(key, "compact_ratio") == 0) {
        return fs_config_ratio(value, &cfg->compact_ratio, why, why_size);
    }
    if (strcmp(key, "compact_min_bytes") == 0) {
        return fs_config_uint(value, 4096, UINT64_C(1) << 50,
                              &cfg->compact_min_bytes, why, why_size);
    }
    return TORPOR_ENOKEY;
}
