/*
 * storage_tool: drives a storage backend directly, for the integration
 * tests of storage (crash, migration).  Not installed.
 *
 *   storage_tool fill CONFIG N        N objects with binary keys and alarms
 *   storage_tool dump CONFIG          every object, key and alarm, in hex
 *   storage_tool write CONFIG         commit batches until killed; prints
 *                                     "acked N" once batch N is durable
 *   storage_tool verify CONFIG        every batch whole or absent; prints
 *                                     the highest batch present
 *
 * A batch N of `write` puts ten keys "b/<N>/<i>" to value N and "last" to
 * N, in one commit: after any crash, either all eleven writes of a batch
 * are there or none.
 */
#include "build-config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/ctl/sync.h"
#include "core/log.h"
#include "core/runtime.h"
#include "core/storage.h"

#define WRITE_KEYS 10

static struct tpr_runtime *
tool_open(const char *path)
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
        tpr_diag_log(&diag, TORPOR_LOG_ERR, "tool");
        tpr_diag_free(&diag);
        if (rt != NULL) {
            tpr_runtime_free(rt);
        }
        exit(1);
    }
    return rt;
}

static void
tool_hex(const void *data, size_t len)
{
    const uint8_t *p = data;

    for (size_t i = 0; i < len; i++) {
        printf("%02x", p[i]);
    }
}

static int
tool_fill(struct tpr_runtime *rt, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        char name[32];
        uint8_t key[8], value[300];
        torpor_storage_object o;
        torpor_write w[6];
        size_t nw = 0;

        int len = snprintf(name, sizeof(name), "room-%u", i);
        name[len] = '\0';
        /* Every third name carries a NUL byte. */
        if (i % 3 == 0) {
            name[4] = '\0';
        }
        tpr_storage_object_init(&o, i % 2 ? "chat" : "game", name,
                                (size_t)len);
        for (unsigned k = 0; k < 4; k++) {
            key[0] = (uint8_t)k;
            key[1] = 0;
            key[2] = 0xff;
            memcpy(key + 3, &i, sizeof(i) < 5 ? sizeof(i) : 5);
            for (size_t b = 0; b < sizeof(value); b++) {
                value[b] = (uint8_t)(b * 7 + i + k);
            }
            w[nw] = (torpor_write){.kind = TORPOR_WRITE_PUT,
                                   .key = {.data = key, .len = 7},
                                   .value = {.data = value,
                                             .len = 10 + (i * 13 + k) % 290}};
            if (ctl_commit(&rt->storage, rt->loop, &o, &w[nw], 1)
                != TORPOR_OK) {
                return 1;
            }
        }
        w[0] = (torpor_write){.kind = TORPOR_WRITE_ALARM_SET,
                              .key = {.data = "tick", .len = 4},
                              .time_ms = 1700000000000ull + i};
        w[1] = (torpor_write){.kind = TORPOR_WRITE_ALARM_SET,
                              .key = {.data = "", .len = 0},
                              .time_ms = 1800000000000ull + i};
        if (ctl_commit(&rt->storage, rt->loop, &o, w, i % 4 ? 2 : 1)
            != TORPOR_OK) {
            return 1;
        }
    }
    return 0;
}

static int
tool_dump_object(struct tpr_runtime *rt, const torpor_storage_object *o)
{
    struct ctl_result r;
    torpor_range all = {0};

    printf("object ");
    tool_hex(o->id, 16);
    printf(" %s ", o->class_name);
    tool_hex(o->name.data, o->name.len);
    printf("\n");
    if (ctl_list(&rt->storage, rt->loop, o, &all, &r) != TORPOR_OK) {
        ctl_result_free(&r);
        return 1;
    }
    for (size_t i = 0; i < r.nrows; i++) {
        printf("  key ");
        tool_hex(r.rows[i].key.data, r.rows[i].key.len);
        printf(" = ");
        tool_hex(r.rows[i].value.data, r.rows[i].value.len);
        printf("\n");
    }
    ctl_result_free(&r);
    if (ctl_alarms(&rt->storage, rt->loop, o, &r) != TORPOR_OK) {
        ctl_result_free(&r);
        return 1;
    }
    for (size_t i = 0; i < r.nalarms; i++) {
        printf("  alarm ");
        tool_hex(r.alarms[i].name.data, r.alarms[i].name.len);
        printf(" at %" PRIu64 "\n", r.alarms[i].time_ms);
    }
    ctl_result_free(&r);
    return 0;
}

static int
tool_dump(struct tpr_runtime *rt)
{
    uint8_t after[16];
    bool have_after = false;

    for (;;) {
        struct ctl_result page;
        if (ctl_objects(&rt->storage, rt->loop, have_after ? after : NULL,
                        100, &page) != TORPOR_OK) {
            ctl_result_free(&page);
            return 1;
        }
        for (size_t i = 0; i < page.nobjects; i++) {
            if (tool_dump_object(rt, &page.objects[i]) != 0) {
                ctl_result_free(&page);
                return 1;
            }
        }
        size_t n = page.nobjects;
        if (n > 0) {
            memcpy(after, page.objects[n - 1].id, 16);
            have_after = true;
        }
        ctl_result_free(&page);
        if (n < 100) {
            return 0;
        }
    }
}

/* tool_verify reads "last" and checks that every batch is whole. */
static int
tool_verify(struct tpr_runtime *rt)
{
    torpor_storage_object o;
    struct ctl_result r;
    torpor_range all = {0};
    uint64_t last = 0, batches = 0;

    tpr_storage_object_init(&o, "crash", "writer", 6);
    if (ctl_list(&rt->storage, rt->loop, &o, &all, &r) != TORPOR_OK) {
        return 1;
    }
    /* "last" names the newest batch; batches is the highest seen. */
    for (size_t i = 0; i < r.nrows; i++) {
        const char *k = r.rows[i].key.data;
        uint64_t n;
        if (r.rows[i].key.len == 4 && memcmp(k, "last", 4) == 0) {
            sscanf(r.rows[i].value.data, "%" SCNu64, &last);
        } else if (sscanf(k, "b/%" SCNu64 "/", &n) == 1) {
            batches = n > batches ? n : batches;
        }
    }
    /* Every batch from 1 to last must be whole; none after it may exist. */
    int bad = 0;
    for (uint64_t n = 1; n <= (batches > last ? batches : last); n++) {
        unsigned have = 0;
        for (size_t i = 0; i < r.nrows; i++) {
            uint64_t m;
            if (sscanf(r.rows[i].key.data, "b/%" SCNu64 "/", &m) == 1
                && m == n) {
                have++;
            }
        }
        if ((n <= last && have != WRITE_KEYS) || (n > last && have != 0)) {
            printf("batch %" PRIu64 " has %u of %d keys (last %" PRIu64
                   ")\n", n, have, WRITE_KEYS, last);
            bad = 1;
        }
    }
    ctl_result_free(&r);
    printf("last %" PRIu64 "\n", last);
    return bad;
}

static int
tool_write(struct tpr_runtime *rt)
{
    torpor_storage_object o;
    char keys[WRITE_KEYS][48], value[24];
    torpor_write w[WRITE_KEYS + 1];
    struct ctl_result r;
    torpor_bytes last_key = {.data = "last", .len = 4};
    uint64_t n = 0;

    tpr_storage_object_init(&o, "crash", "writer", 6);
    torpor_range last = {.prefix = last_key};
    if (ctl_list(&rt->storage, rt->loop, &o, &last, &r) != TORPOR_OK) {
        return 1;
    }
    if (r.nrows == 1) {
        sscanf(r.rows[0].value.data, "%" SCNu64, &n);
    }
    ctl_result_free(&r);
    /* Bounded: the test kills it long before. */
    for (uint64_t end = n + 1000000; n < end;) {
        n++;
        int vlen = snprintf(value, sizeof(value), "%" PRIu64, n);
        for (int i = 0; i < WRITE_KEYS; i++) {
            int klen = snprintf(keys[i], sizeof(keys[i]),
                                "b/%" PRIu64 "/%d", n, i);
            w[i] = (torpor_write){.kind = TORPOR_WRITE_PUT,
                                  .key = {.data = keys[i],
                                          .len = (size_t)klen},
                                  .value = {.data = value,
                                            .len = (size_t)vlen}};
        }
        w[WRITE_KEYS] = (torpor_write){.kind = TORPOR_WRITE_PUT,
                                       .key = last_key,
                                       .value = {.data = value,
                                                 .len = (size_t)vlen}};
        if (ctl_commit(&rt->storage, rt->loop, &o, w, WRITE_KEYS + 1)
            != TORPOR_OK) {
            return 1;
        }
        printf("acked %" PRIu64 "\n", n);
        fflush(stdout);
    }
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: storage_tool fill|dump|write|verify CONFIG [N]\n");
        return 2;
    }
    struct tpr_runtime *rt = tool_open(argv[2]);
    int status = 2;
    if (strcmp(argv[1], "fill") == 0 && argc == 4) {
        status = tool_fill(rt, (unsigned)strtoul(argv[3], NULL, 10));
    } else if (strcmp(argv[1], "dump") == 0) {
        status = tool_dump(rt);
    } else if (strcmp(argv[1], "write") == 0) {
        status = tool_write(rt);
    } else if (strcmp(argv[1], "verify") == 0) {
        status = tool_verify(rt);
    }
    tpr_runtime_free(rt);
    return status;
}
