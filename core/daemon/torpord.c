/*
 * torpord: the torpor daemon.  Parses the command line, reads the config,
 * and hands everything else to libtorpor's runtime.
 */
#include "build-config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include <torpor/plugin.h>

#include "core/config.h"
#include "core/log.h"
#include "core/runtime.h"

/* Exit statuses: 0 fine, 1 a failure while running, 2 bad usage or config. */
enum { EXIT_RUNTIME = 1, EXIT_CONFIG = 2 };

static void
torpord_usage(FILE *out)
{
    fprintf(out,
            "usage: torpord [--config FILE] [--check-config] [--plugin-path DIRS]\n"
            "       torpord --version | --help\n"
            "\n"
            "Runs stateful WebSocket rooms.  Without --config it serves\n"
            "ws://127.0.0.1:8080/relay/NAME and /echo/NAME on its defaults.\n"
            "\n"
            "  -c, --config FILE       read the configuration from FILE (INI)\n"
            "  -t, --check-config      check the configuration and the plugins, then exit\n"
            "  -P, --plugin-path DIRS  look for plugins in DIRS (colon-separated),\n"
            "                          instead of the config's plugin_path\n"
            "  -V, --version           print the version and exit\n"
            "  -h, --help              print this help and exit\n"
            "\n"
            "Signals: SIGTERM and SIGINT close every client with 1001 and exit;\n"
            "SIGHUP re-reads the log level from the config file, and plugins re-read\n"
            "their own files (the websocket transport its TLS certificate and key).\n");
}

int
main(int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 't'},
        {"plugin-path", required_argument, NULL, 'P'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL;
    const char *plugin_path = NULL;
    int check_only = 0;
    int c;

    while ((c = getopt_long(argc, argv, "c:tP:Vh", options, NULL)) != -1) {
        switch (c) {
        case 'c':
            config_path = optarg;
            break;
        case 't':
            check_only = 1;
            break;
        case 'P':
            plugin_path = optarg;
            break;
        case 'V':
            printf("torpord %s (plugin ABI %u.%u)\n", PACKAGE_VERSION,
                   TORPOR_ABI_MAJOR, TORPOR_ABI_MINOR);
            return 0;
        case 'h':
            torpord_usage(stdout);
            return 0;
        default:
            torpord_usage(stderr);
            return EXIT_CONFIG;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "torpord: unexpected argument \"%s\"\n", argv[optind]);
        torpord_usage(stderr);
        return EXIT_CONFIG;
    }

    struct tpr_diag diag = {0};
    struct tpr_config *cfg;
    struct tpr_runtime *rt;
    if (tpr_config_load(config_path, &cfg, &diag) != TORPOR_OK) {
        tpr_diag_log(&diag, TORPOR_LOG_ERR, "core");
        tpr_diag_free(&diag);
        return EXIT_CONFIG;
    }
    if (plugin_path != NULL
        && tpr_config_set_plugin_path(cfg, plugin_path) != TORPOR_OK) {
        tpr_config_free(cfg);
        return EXIT_RUNTIME;
    }
    if (tpr_runtime_new(cfg, &diag, &rt) != TORPOR_OK) {
        tpr_diag_log(&diag, TORPOR_LOG_ERR, "core");
        tpr_log(TORPOR_LOG_ERR, "core", NULL, "configuration \"%s\" has %u problem%s", config_path ? config_path : "(defaults)", diag.count, diag.count == 1 ? "" : "s");
        tpr_diag_free(&diag);
        return EXIT_CONFIG;
    }
    if (check_only) {
        tpr_log(TORPOR_LOG_NOTICE, "core", NULL, "configuration \"%s\" is valid", config_path ? config_path : "(defaults)");
        tpr_runtime_free(rt);
        return 0;
    }
    int status = 0;
    if (tpr_runtime_start(rt) != TORPOR_OK) {
        status = EXIT_RUNTIME;
        /* Plugins that did start are stopped through the same path. */
        tpr_runtime_stop(rt);
    } else if (tpr_runtime_run(rt) != TORPOR_OK) {
        status = EXIT_RUNTIME;
    }
    tpr_runtime_free(rt);
    return status;
}
