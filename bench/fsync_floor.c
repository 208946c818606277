/*
 * fsync-floor: the device's raw rate of synced appends, the floor that the
 * file store's group commit is measured against.  Not installed.
 *
 *   fsync-floor --dir DIR --record-bytes B --seconds S
 *
 * Appends B-byte records to a new file in DIR with pwrite at the end and
 * fdatasyncs after each, as the file store's worker does with one batch,
 * for S seconds (and at most a million appends); then removes the file.
 * Each append's latency, write plus sync, goes into an array allocated
 * before the run.
 *
 * Output, one line:
 *   appends=N seconds=S appends_per_s=R p50_us=A p99_us=B
 */
#include "build-config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FLOOR_MAX_APPENDS 1000000u

static uint64_t
floor_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
floor_cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, c = *(const uint64_t *)y;

    return (a > c) - (a < c);
}

/* floor_pct: the nearest-rank percentile of sorted v[0..n), in us. */
static double
floor_pct(const uint64_t *v, uint64_t n, uint64_t per_mille)
{
    if (n == 0) {
        return 0;
    }
    uint64_t rank = (per_mille * n + 999) / 1000;
    return (double)v[(rank > 0 ? rank : 1) - 1] / 1000.0;
}

/* floor_pwrite writes len bytes at off whole, resuming short writes. */
static int
floor_pwrite(int fd, const uint8_t *p, size_t len, off_t off)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

static void
floor_usage(void)
{
    fprintf(stderr,
            "usage: fsync-floor --dir DIR --record-bytes B --seconds S\n");
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"record-bytes", required_argument, NULL, 'b'},
        {"seconds", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL;
    long record_bytes = 100, seconds = 5;
    int c;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'b':
            record_bytes = strtol(optarg, NULL, 10);
            break;
        case 's':
            seconds = strtol(optarg, NULL, 10);
            break;
        default:
            floor_usage();
            return 2;
        }
    }
    if (dir == NULL || optind != argc || record_bytes < 1
        || record_bytes > (64L << 20) || seconds < 1 || seconds > 3600) {
        floor_usage();
        return 2;
    }

    char path[4096];
    snprintf(path, sizeof(path), "%s/fsync-floor-XXXXXX", dir);
    uint8_t *rec = malloc((size_t)record_bytes);
    uint64_t *lat = calloc(FLOOR_MAX_APPENDS, sizeof(*lat));
    if (rec == NULL || lat == NULL) {
        fprintf(stderr, "fsync-floor: could not allocate the run\n");
        return 1;
    }
    memset(rec, 0xa5, (size_t)record_bytes);
    memset(lat, 0, FLOOR_MAX_APPENDS * sizeof(*lat));
    int fd = mkstemp(path);
    if (fd < 0) {
        fprintf(stderr, "fsync-floor: could not create \"%s\": %s\n", path,
                strerror(errno));
        return 1;
    }

    uint64_t n = 0, start = floor_now_ns();
    uint64_t deadline = start + (uint64_t)seconds * 1000000000u;
    uint64_t now = start;
    int status = 0;
    while (n < FLOOR_MAX_APPENDS && now < deadline) {
        uint64_t t0 = floor_now_ns();
        if (floor_pwrite(fd, rec, (size_t)record_bytes,
                         (off_t)(n * (uint64_t)record_bytes))
                != 0
            || fdatasync(fd) != 0) {
            fprintf(stderr, "fsync-floor: could not append to \"%s\": %s\n",
                    path, strerror(errno));
            status = 1;
            break;
        }
        now = floor_now_ns();
        lat[n++] = now - t0;
    }
    double wall = (double)(now - start) / 1e9;
    close(fd);
    unlink(path);
    if (status == 0) {
        qsort(lat, n, sizeof(*lat), floor_cmp_u64);
        printf("appends=%" PRIu64 " seconds=%.2f appends_per_s=%.0f"
               " p50_us=%.1f p99_us=%.1f\n",
               n, wall, wall > 0 ? (double)n / wall : 0.0,
               floor_pct(lat, n, 500), floor_pct(lat, n, 990));
    }
    free(lat);
    free(rec);
    return status;
}
