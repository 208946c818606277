/*
 * torporctl: administers torpor.  For now one command: migrate.
 */
#include "build-config.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <torpor/plugin.h>

#include "core/config.h"
#include "core/ctl/ctl.h"
#include "core/log.h"
#include "core/runtime.h"

enum { EXIT_FAIL = 1, EXIT_USAGE = 2 };

static void
ctl_usage(FILE *out)
{
    fprintf(out,
            "usage: torporctl migrate --from FILE --to FILE [--plugin-path DIRS]\n"
            "       torporctl --version | --help\n"
            "\n"
            "  migrate   copy every object's keys and alarms from the storage\n"
            "            backend of one torpord config to that of another,\n"
            "            then compare the counts.  Stop torpord first; the\n"
            "            destination must be empty.\n"
            "\n"
            "  -f, --from FILE         config whose [storage] is the source\n"
            "  -t, --to FILE           config whose [storage] is the destination\n"
            "  -P, --plugin-path DIRS  look for plugins in DIRS (colon-separated)\n"
            "  -V, --version           print the version and exit\n"
            "  -h, --help              print this help and exit\n");
}

/* ctl_open loads path's storage backend alone, on loop if given. */
static struct tpr_runtime *
ctl_open(const char *path, const char *plugin_path)
{
    struct tpr_diag diag = {0};
    struct tpr_config *cfg;
    struct tpr_runtime *rt = NULL;

    if (tpr_config_load(path, &cfg, &diag) == TORPOR_OK
        && tpr_config_storage_only(cfg) == TORPOR_OK
        && (plugin_path == NULL
            || tpr_config_set_plugin_path(cfg, plugin_path) == TORPOR_OK)
        && tpr_runtime_new(cfg, &diag, &rt) == TORPOR_OK
        && tpr_runtime_start(rt) != TORPOR_OK) {
        tpr_runtime_free(rt);
        rt = NULL;
    }
    tpr_diag_log(&diag, TORPOR_LOG_ERR, "ctl");
    tpr_diag_free(&diag);
    return rt;
}

int
main(int argc, char **argv)
{
    static const struct option options[] = {
        {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},
        {"plugin-path", required_argument, NULL, 'P'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *from = NULL, *to = NULL, *plugin_path = NULL;
    int c;

    while ((c = getopt_long(argc, argv, "f:t:P:Vh", options, NULL)) != -1) {
        switch (c) {
        case 'f':
            from = optarg;
            break;
        case 't':
            to = optarg;
            break;
        case 'P':
            plugin_path = optarg;
            break;
        case 'V':
            printf("torporctl %s (plugin ABI %u.%u)\n", PACKAGE_VERSION,
                   TORPOR_ABI_MAJOR, TORPOR_ABI_MINOR);
            return 0;
        case 'h':
            ctl_usage(stdout);
            return 0;
        default:
            ctl_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc - 1 || strcmp(argv[optind], "migrate") != 0
        || from == NULL || to == NULL) {
        ctl_usage(stderr);
        return EXIT_USAGE;
    }
    struct tpr_runtime *src = ctl_open(from, plugin_path);
    if (src == NULL) {
        return EXIT_FAIL;
    }
    struct tpr_runtime *dst = ctl_open(to, plugin_path);
    if (dst == NULL) {
        tpr_runtime_free(src);
        return EXIT_FAIL;
    }
    int status = ctl_migrate(src, dst);
    tpr_runtime_free(dst);
    tpr_runtime_free(src);
    return status;
}
