/*
 * torpor-storage-bench: drives commits against the storage backend a
 * config file names and prints their rate and latency.  Not installed;
 * `make bench-storage` builds and runs it.
 *
 *   torpor-storage-bench --config FILE --objects N --value-bytes B
 *                        --seconds S --window W [--max-commits M]
 *
 * Each commit is one put, key "k/<seq % 64>", of a B-byte value, to object
 * seq % N: the objects take turns.  At most W commits are in flight; a
 * completion queues the next one, so W = 1 measures what one client that
 * waits for each commit sees.  The run ends after S seconds or M commits,
 * whichever comes first, and waits for what is in flight.
 *
 * One unmeasured commit per object comes first, so that the objects exist
 * before the clock starts.  Latency runs from just before the commit is
 * queued to the start of its completion, on CLOCK_MONOTONIC, into an array
 * allocated (and touched) before the run: nothing is allocated per commit
 * by this program.  CPU time is the process's, every thread included (the
 * file store's worker), from getrusage; a PostgreSQL server's is not.
 *
 * Output, one line:
 *   commits=N seconds=S commits_per_s=R p50_us=A p99_us=B p999_us=C cpu_s=D
 */
#include "build-config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench/bench_util.h"
#include "core/config.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/runtime.h"
#include "core/storage.h"

#define BENCH_KEYS 64
#define BENCH_MAX_COMMITS 5000000u
#define BENCH_WARMUP_S 60
/* A run that has not drained this long after its end is taken as hung. */
#define BENCH_GRACE_S 30

struct bench;

/* One commit in flight: the completion's arg. */
struct bench_slot {
    struct bench *b;
    uint64_t start_ns;
};

struct bench {
    struct tpr_runtime *rt;
    torpor_storage_object *objects;
    char (*names)[32];
    size_t nobjects;
    char key_text[BENCH_KEYS][8];
    torpor_bytes keys[BENCH_KEYS];
    uint8_t *value;
    size_t value_bytes;
    struct bench_slot *slots;
    unsigned window;

    /* The current phase. */
    uint64_t seq;         // commits queued, all phases
    uint64_t limit;       // queue none once seq reaches it
    uint64_t deadline_ns; // nor once a completion sees this time
    bool stopping;
    bool record;
    unsigned in_flight;

    uint64_t *lat_ns; // one per measured commit
    uint64_t nlat;
    uint64_t failed;
    torpor_err first_err;
};

static double
bench_cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
           + (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void
bench_fail(struct bench *b, torpor_err err)
{
    if (b->failed++ == 0) {
        b->first_err = err;
    }
    b->stopping = true;
}

static void bench_on_done(void *arg, torpor_err err);

/* bench_issue queues the next commit on slot; false when none is due. */
static bool
bench_issue(struct bench *b, struct bench_slot *slot)
{
    if (b->stopping || b->seq >= b->limit) {
        return false;
    }
    uint64_t seq = b->seq;
    torpor_write w = {.kind = TORPOR_WRITE_PUT,
                      .key = b->keys[seq % BENCH_KEYS],
                      .value = {.data = b->value, .len = b->value_bytes}};
    slot->start_ns = bench_now_ns();
    torpor_err err = tpr_storage_commit(&b->rt->storage, b->rt->loop,
                                        &b->objects[seq % b->nobjects], &w, 1,
                                        bench_on_done, slot);
    if (err != TORPOR_OK) {
        bench_fail(b, err);
        return false;
    }
    b->seq++;
    b->in_flight++;
    return true;
}

/* bench_on_done runs on the main loop: record, then reuse the slot. */
static void
bench_on_done(void *arg, torpor_err err)
{
    struct bench_slot *slot = arg;
    struct bench *b = slot->b;
    uint64_t end_ns = bench_now_ns();

    b->in_flight--;
    if (err != TORPOR_OK) {
        bench_fail(b, err);
    } else if (b->record) {
        b->lat_ns[b->nlat++] = end_ns - slot->start_ns;
    }
    if (end_ns >= b->deadline_ns) {
        b->stopping = true;
    }
    if (!bench_issue(b, slot) && b->in_flight == 0) {
        tpr_loop_break(b->rt->loop);
    }
}

static void
bench_on_hang(torpor_timer *timer, void *arg)
{
    struct bench *b = arg;

    (void)timer;
    fprintf(
        stderr,
        "torpor-storage-bench: could not finish the run: %u commits still in flight %d s after its end\n",
        b->in_flight, BENCH_GRACE_S);
    exit(1);
}

/*
 * bench_phase queues up to count commits for at most seconds, keeping the
 * window full, and returns once all have completed.  Returns the wall time
 * it took, in seconds.
 */
static double
bench_phase(struct bench *b, uint64_t count, unsigned seconds, bool record)
{
    torpor_timer *watchdog;
    uint64_t start_ns = bench_now_ns();

    b->limit = b->seq + count;
    b->deadline_ns = start_ns + (uint64_t)seconds * 1000000000u;
    b->stopping = false;
    b->record = record;
    if (tpr_timer_open(b->rt->loop, bench_on_hang, b, &watchdog) != TORPOR_OK) {
        bench_fail(b, TORPOR_ENOMEM);
        return 0;
    }
    tpr_timer_arm(watchdog, ((uint64_t)seconds + BENCH_GRACE_S) * 1000u);
    for (unsigned i = 0; i < b->window; i++) {
        if (!bench_issue(b, &b->slots[i])) {
            break;
        }
    }
    if (b->in_flight > 0 && tpr_loop_run(b->rt->loop) != TORPOR_OK) {
        bench_fail(b, TORPOR_EIO);
    }
    tpr_timer_close(watchdog);
    return (double)(bench_now_ns() - start_ns) / 1e9;
}

static struct tpr_runtime *
bench_open(const char *path)
{
    struct tpr_diag diag = {0};
    struct tpr_config *cfg;
    struct tpr_runtime *rt = NULL;
    const char *plugins = getenv("TORPOR_PLUGIN_PATH");

    if (tpr_config_load(path, &cfg, &diag) != TORPOR_OK
        || tpr_config_storage_only(cfg) != TORPOR_OK
        || (plugins != NULL
            && tpr_config_set_plugin_path(cfg, plugins) != TORPOR_OK)
        || tpr_runtime_new(cfg, &diag, &rt) != TORPOR_OK
        || tpr_runtime_start(rt) != TORPOR_OK) {
        tpr_diag_log(&diag, TORPOR_LOG_ERR, "bench");
        tpr_diag_free(&diag);
        if (rt != NULL) {
            tpr_runtime_free(rt);
        }
        return NULL;
    }
    return rt;
}

/*
 * bench_setup makes the objects, keys, value and slots.  The value is
 * pseudo-random so that a backend that compresses (PostgreSQL's TOAST
 * does, from about 2 KiB) stores all of its bytes.
 */
static bool
bench_setup(struct bench *b, size_t nobjects, size_t value_bytes,
            unsigned window, uint64_t max_commits)
{
    b->nobjects = nobjects;
    b->objects = calloc(nobjects, sizeof(*b->objects));
    b->names = calloc(nobjects, sizeof(*b->names));
    b->value_bytes = value_bytes;
    b->value = malloc(value_bytes > 0 ? value_bytes : 1);
    b->window = window;
    b->slots = calloc(window, sizeof(*b->slots));
    b->lat_ns = malloc(max_commits * sizeof(*b->lat_ns));
    if (b->objects == NULL || b->names == NULL || b->value == NULL
        || b->slots == NULL || b->lat_ns == NULL) {
        return false;
    }
    /* Fault every page in now rather than during the run. */
    memset(b->lat_ns, 0, max_commits * sizeof(*b->lat_ns));
    for (size_t i = 0; i < nobjects; i++) {
        int len = snprintf(b->names[i], sizeof(b->names[i]), "o-%zu", i);
        tpr_storage_object_init(&b->objects[i], "bench", b->names[i],
                                (size_t)len);
    }
    for (unsigned i = 0; i < BENCH_KEYS; i++) {
        int len = snprintf(b->key_text[i], sizeof(b->key_text[i]), "k/%u", i);
        b->keys[i] = (torpor_bytes){.data = b->key_text[i], .len = (size_t)len};
    }
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < value_bytes; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b->value[i] = (uint8_t)x;
    }
    for (unsigned i = 0; i < window; i++) {
        b->slots[i].b = b;
    }
    return true;
}

static void
bench_usage(void)
{
    fprintf(
        stderr,
        "usage: torpor-storage-bench --config FILE --objects N --value-bytes B --seconds S --window W [--max-commits M]\n");
}

/* BENCH_ARG reads option NAME's value, optarg, or exits with the usage. */
#define BENCH_ARG(name, min, max) \
    bench_arg("torpor-storage-bench", (name), optarg, (min), (max), bench_usage)

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"objects", required_argument, NULL, 'n'},
        {"value-bytes", required_argument, NULL, 'b'},
        {"seconds", required_argument, NULL, 's'},
        {"window", required_argument, NULL, 'w'},
        {"max-commits", required_argument, NULL, 'm'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL;
    uint64_t nobjects = 1, value_bytes = 100, seconds = 5, window = 1;
    uint64_t max_commits = BENCH_MAX_COMMITS;
    int c;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'n':
            nobjects = BENCH_ARG("objects", 1, 1000000);
            break;
        case 'b':
            value_bytes = BENCH_ARG("value-bytes", 0, 64u << 20);
            break;
        case 's':
            seconds = BENCH_ARG("seconds", 1, 3600);
            break;
        case 'w':
            window = BENCH_ARG("window", 1, 65536);
            break;
        case 'm':
            max_commits =
                BENCH_ARG("max-commits", 1, BENCH_MAX_COMMITS);
            break;
        default:
            bench_usage();
            return 2;
        }
    }
    if (config == NULL || optind != argc) {
        bench_usage();
        return 2;
    }

    struct bench b = {0};
    if (!bench_setup(&b, nobjects, value_bytes, (unsigned)window,
                     max_commits)) {
        fprintf(stderr, "torpor-storage-bench: could not allocate the run\n");
        return 1;
    }
    b.rt = bench_open(config);
    if (b.rt == NULL) {
        return 1;
    }

    bench_phase(&b, nobjects, BENCH_WARMUP_S, false);
    double cpu0 = bench_cpu_s();
    double wall = 0;
    if (b.failed == 0) {
        wall = bench_phase(&b, max_commits, (unsigned)seconds, true);
    }
    double cpu = bench_cpu_s() - cpu0;
    int status = 0;
    if (b.failed > 0) {
        fprintf(stderr,
                "torpor-storage-bench: %" PRIu64
                " commits failed, the first with \"%s\"\n",
                b.failed, tpr_strerror(b.first_err));
        status = 1;
    } else {
        bench_sort_u64(b.lat_ns, b.nlat);
        printf("commits=%" PRIu64 " seconds=%.2f commits_per_s=%.0f"
               " p50_us=%.1f p99_us=%.1f p999_us=%.1f cpu_s=%.2f\n",
               b.nlat, wall, wall > 0 ? (double)b.nlat / wall : 0.0,
               bench_pct_us(b.lat_ns, b.nlat, 500),
               bench_pct_us(b.lat_ns, b.nlat, 990),
               bench_pct_us(b.lat_ns, b.nlat, 999), cpu);
    }
    tpr_runtime_free(b.rt);
    free(b.lat_ns);
    free(b.slots);
    free(b.value);
    free(b.names);
    free(b.objects);
    return status;
}
