/*
 * torpor-bench: a load generator for room servers, torpord and the
 * servers it is compared with, over loopback only.  Not installed; `make
 * bench` runs it through bench/run-peers.sh, and `make check` runs a
 * small smoke test of it (tests/integration/bench_smoke.sh).
 *
 *   torpor-bench --port P --scenario idle|fanout-one|fanout-many|wake
 *                [--proto ws|sio] [--path /relay/] [--tag NAME]
 *                [--procs K] [--rooms R] [--room-size M] [--window W]
 *                [--seconds S] [--rate N]... [--idle-ms I] [--rounds K]
 *                [--size B] [--connect-window C] [--max-failures F]
 *                [--timeout-ms O] [--drain-ms D]
 *                [--server-pid PID]... [--aux-pid PID]... [--max-seconds T]
 *
 * A room is ws://127.0.0.1:P/PATH/TAG-INDEX for --proto ws; for --proto
 * sio every client opens /socket.io/ (Engine.IO 4 over a WebSocket, no
 * polling), connects to the main namespace and emits "join" with the
 * room's name, acknowledged by the server.  A message is a text frame
 * (ws), or the event "msg" with the payload as its one argument (sio);
 * the server hands it to every other client of the room.  The first
 * connection of each room sends, the others subscribe.
 *
 * K client processes (4 by default) share the connections.  Scenarios:
 *
 *   idle         R rooms of M (1,500 of 10): open them all, hold them I
 *                ms (15,000), then send one message per room ("touch"),
 *                so that a server whose rooms hibernated wakes each once.
 *   fanout-one   one room of M (1,001): its sender publishes S seconds
 *                (10) as fast as the server takes it, with at most W (16)
 *                messages in flight, counted at the slowest of the
 *                designated subscribers, one per client process.
 *   fanout-many  R rooms of M (1,000 of 11): each sender publishes N
 *                messages/s for S seconds, once per --rate given (1, then
 *                10, by default).
 *   wake         R rooms of 2 (200): K rounds (3); each idles I ms, then,
 *                one room at a time, a message is timed to its subscriber
 *                (wake) and at once a second one (awake).
 *
 * A client process stops opening connections once its share of F (100)
 * handshakes has failed, and counts the rest as not tried: a server that
 * stops accepting would otherwise hold each attempt for its timeout.  A
 * connection has O ms (10,000) to open, and a wake or touch message as
 * long to arrive.
 *
 * Latency runs from just before the write of a message to the end of the
 * read that brought it, on CLOCK_MONOTONIC.  After a run, every
 * subscriber must have every message of its room's sender, in order,
 * within D ms (10,000 by default); what is missing then is lost.
 *
 * With --server-pid, the server's CPU time (user + system, from /proc,
 * summed over the process and its descendants) is read before and after
 * each run, and its memory (Rss and Pss of smaps_rollup) before opening,
 * once open and after the idle time.  --aux-pid does the same for a
 * process reported apart (Socket.IO's Redis).
 *
 * Output: one line per run of key=value fields, ending in ok=1 when
 * nothing failed and nothing was lost; reasons go to stderr.  The exit
 * status is 0 when every line says ok=1, 1 when not, 2 for a bad command
 * line.  The whole run ends after T seconds (900) at most.
 */
#include "build-config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench_util.h"
#include "bench/tb_run.h"

static void
tb_usage(void)
{
    fprintf(
        stderr,
        "usage: torpor-bench --port P --scenario idle|fanout-one|fanout-many|wake\n"
        "    [--proto ws|sio] [--path /relay/] [--tag NAME] [--procs K]\n"
        "    [--rooms R] [--room-size M] [--window W] [--seconds S]\n"
        "    [--rate N]... [--idle-ms I] [--rounds K] [--size B]\n"
        "    [--connect-window C] [--max-failures F] [--timeout-ms O]\n"
        "    [--drain-ms D] [--server-pid PID]... [--aux-pid PID]...\n"
        "    [--max-seconds T]\n");
}

#define TB_ARG(name, min, max)                                                 \
    bench_arg("torpor-bench", (name), optarg, (min), (max), tb_usage)

static pid_t tb_children[TB_MAX_PROCS];
static unsigned tb_nchildren;

static void
tb_on_alarm(int sig)
{
    static const char msg[] =
        "torpor-bench: could not finish the run within --max-seconds\n";

    (void)sig;
    for (unsigned i = 0; i < tb_nchildren; i++) {
        kill(tb_children[i], SIGKILL);
    }
    ssize_t n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)n;
    _exit(1);
}

static bool
tb_parse_scenario(const char *s, enum tb_scenario *out)
{
    static const char *const names[] = {"idle", "fanout-one", "fanout-many",
                                        "wake"};

    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum tb_scenario)i;
            return true;
        }
    }
    return false;
}

/* tb_defaults fills what the command line left at 0 with the scenario's
 * sizes. */
static void
tb_defaults(struct tb_opts *o)
{
    static const unsigned rooms[] = {1500, 1, 1000, 200};
    static const unsigned room_size[] = {10, 1001, 11, 2};

    if (o->scenario == TB_FANOUT_ONE) {
        o->rooms = 1;
    }
    o->rooms = o->rooms ? o->rooms : rooms[o->scenario];
    o->room_size = o->room_size ? o->room_size : room_size[o->scenario];
    if (o->nrates == 0) {
        o->rates[o->nrates++] = 1;
        o->rates[o->nrates++] = 10;
    }
    if (o->tag[0] == '\0') {
        snprintf(o->tag, sizeof(o->tag), "tb%ld", (long)getpid());
    }
}

static bool
tb_parse(int argc, char **argv, struct tb_opts *o, unsigned *drain_ms)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},
        {"scenario", required_argument, NULL, 's'},
        {"proto", required_argument, NULL, 'P'},
        {"path", required_argument, NULL, 'a'},
        {"tag", required_argument, NULL, 'g'},
        {"procs", required_argument, NULL, 'k'},
        {"rooms", required_argument, NULL, 'r'},
        {"room-size", required_argument, NULL, 'm'},
        {"window", required_argument, NULL, 'w'},
        {"seconds", required_argument, NULL, 'S'},
        {"rate", required_argument, NULL, 'R'},
        {"idle-ms", required_argument, NULL, 'i'},
        {"rounds", required_argument, NULL, 'n'},
        {"size", required_argument, NULL, 'b'},
        {"connect-window", required_argument, NULL, 'c'},
        {"max-failures", required_argument, NULL, 'f'},
        {"timeout-ms", required_argument, NULL, 'o'},
        {"drain-ms", required_argument, NULL, 'd'},
        {"server-pid", required_argument, NULL, 'x'},
        {"aux-pid", required_argument, NULL, 'y'},
        {"max-seconds", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    bool have_scenario = false;
    int c;

    *o = (struct tb_opts){.proto = TB_WS,
                          .path = "/relay/",
                          .procs = 4,
                          .window = 16,
                          .seconds = 10,
                          .idle_ms = 15000,
                          .rounds = 3,
                          .size = 64,
                          .connect_window = 64,
                          .max_failures = 100,
                          .timeout_ms = 10000,
                          .max_seconds = 900};
    *drain_ms = 10000;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            o->port = (uint16_t)TB_ARG("port", 1, 65535);
            break;
        case 's':
            if (!tb_parse_scenario(optarg, &o->scenario)) {
                fprintf(
                    stderr,
                    "torpor-bench: could not read \"--scenario\": expected idle, fanout-one, fanout-many or wake\n");
                return false;
            }
            have_scenario = true;
            break;
        case 'P':
            if (strcmp(optarg, "ws") != 0 && strcmp(optarg, "sio") != 0) {
                fprintf(
                    stderr,
                    "torpor-bench: could not read \"--proto\": expected ws or sio\n");
                return false;
            }
            o->proto = strcmp(optarg, "sio") == 0 ? TB_SIO : TB_WS;
            break;
        case 'a':
            o->path = optarg;
            break;
        case 'g':
            if (strlen(optarg) >= sizeof(o->tag)
                || strspn(optarg, "abcdefghijklmnopqrstuvwxyz0123456789-_")
                       != strlen(optarg)) {
                fprintf(
                    stderr,
                    "torpor-bench: could not read \"--tag\": expected at most %zu of a-z, 0-9, - and _\n",
                    sizeof(o->tag) - 1);
                return false;
            }
            snprintf(o->tag, sizeof(o->tag), "%s", optarg);
            break;
        case 'k':
            o->procs = (unsigned)TB_ARG("procs", 1, TB_MAX_PROCS);
            break;
        case 'r':
            o->rooms = (unsigned)TB_ARG("rooms", 1, 100000);
            break;
        case 'm':
            o->room_size = (unsigned)TB_ARG("room-size", 2, 100000);
            break;
        case 'w':
            o->window = (unsigned)TB_ARG("window", 1, 100000);
            break;
        case 'S':
            o->seconds = (unsigned)TB_ARG("seconds", 1, 3600);
            break;
        case 'R':
            if (o->nrates == TB_MAX_RATES) {
                fprintf(
                    stderr,
                    "torpor-bench: could not read \"--rate\": at most %d rates\n",
                    TB_MAX_RATES);
                return false;
            }
            o->rates[o->nrates++] = (unsigned)TB_ARG("rate", 1, 100000);
            break;
        case 'i':
            o->idle_ms = (unsigned)TB_ARG("idle-ms", 0, 3600000);
            break;
        case 'n':
            o->rounds = (unsigned)TB_ARG("rounds", 1, 100);
            break;
        case 'b':
            o->size = (unsigned)TB_ARG("size", TB_MIN_SIZE, TB_MAX_SIZE);
            break;
        case 'c':
            o->connect_window = (unsigned)TB_ARG("connect-window", 1, 10000);
            break;
        case 'f':
            o->max_failures = (unsigned)TB_ARG("max-failures", 1, 1000000);
            break;
        case 'o':
            o->timeout_ms = (unsigned)TB_ARG("timeout-ms", 1, 600000);
            break;
        case 'd':
            *drain_ms = (unsigned)TB_ARG("drain-ms", 1, 600000);
            break;
        case 'x':
        case 'y': {
            pid_t *pids = c == 'x' ? o->server_pids : o->aux_pids;
            unsigned *n = c == 'x' ? &o->nserver_pids : &o->naux_pids;
            if (*n == TB_PROC_MAX_ROOTS) {
                fprintf(stderr,
                        "torpor-bench: could not read \"--%s\": at most %d\n",
                        c == 'x' ? "server-pid" : "aux-pid", TB_PROC_MAX_ROOTS);
                return false;
            }
            pids[(*n)++] =
                (pid_t)TB_ARG(c == 'x' ? "server-pid" : "aux-pid", 1, 4194304);
            break;
        }
        case 't':
            o->max_seconds = (unsigned)TB_ARG("max-seconds", 1, 86400);
            break;
        default:
            return false;
        }
    }
    if (o->port == 0 || !have_scenario || optind != argc) {
        return false;
    }
    tb_defaults(o);
    if (o->scenario == TB_WAKE && o->room_size != 2) {
        fprintf(
            stderr,
            "torpor-bench: could not read \"--room-size\": wake takes rooms of 2\n");
        return false;
    }
    return true;
}

/* tb_raise_files lifts the limit of open files to its ceiling: a client
 * process holds thousands of sockets. */
static void
tb_raise_files(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* tb_start forks the client processes. */
static bool
tb_start(struct tb_run *run)
{
    run->shared = mmap(NULL, sizeof(*run->shared), PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    run->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    run->reps = calloc(run->o.procs, sizeof(*run->reps));
    if (run->shared == MAP_FAILED || run->wake_fd < 0 || run->reps == NULL) {
        fprintf(stderr, "torpor-bench: could not set up the run: %s\n",
                strerror(errno));
        return false;
    }
    for (unsigned p = 0; p < run->o.procs; p++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
            fprintf(stderr,
                    "torpor-bench: could not make a control socket: %s\n",
                    strerror(errno));
            return false;
        }
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "torpor-bench: could not fork: %s\n",
                    strerror(errno));
            return false;
        }
        if (pid == 0) {
            /* Never outlive the parent, whatever ends it. */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            alarm(0);
            close(sv[0]);
            for (unsigned q = 0; q < p; q++) {
                close(run->ctl[q]);
            }
            _exit(tb_client_main(&run->o, p, sv[1], run->shared, run->wake_fd));
        }
        close(sv[1]);
        run->ctl[p] = sv[0];
        tb_children[tb_nchildren++] = pid;
    }
    return true;
}

/* tb_stop asks the client processes to quit, and kills those that do not
 * within 10 s. */
static void
tb_stop(struct tb_run *run)
{
    for (unsigned p = 0; p < tb_nchildren; p++) {
        tb_send(run, p, TB_CMD_QUIT, 0, 0);
    }
    uint64_t deadline_ns = bench_now_ns() + 10000000000ull;
    for (unsigned p = 0; p < tb_nchildren; p++) {
        int status;
        while (waitpid(tb_children[p], &status, WNOHANG) == 0) {
            if (bench_now_ns() > deadline_ns) {
                kill(tb_children[p], SIGKILL);
                waitpid(tb_children[p], &status, 0);
                break;
            }
            usleep(10000);
        }
    }
}

static void
tb_free(struct tb_run *run)
{
    for (unsigned p = 0; p < tb_nchildren; p++) {
        close(run->ctl[p]);
    }
    if (run->shared != NULL && run->shared != MAP_FAILED) {
        munmap(run->shared, sizeof(*run->shared));
    }
    if (run->wake_fd > 0) {
        close(run->wake_fd);
    }
    free(run->reps);
}

int
main(int argc, char **argv)
{
    struct tb_run run = {0};
    unsigned drain_ms;

    if (!tb_parse(argc, argv, &run.o, &drain_ms)) {
        tb_usage();
        return 2;
    }
    run.drain_ms = drain_ms;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, tb_on_alarm);
    alarm(run.o.max_seconds);
    tb_raise_files();
    if (!tb_start(&run)) {
        tb_stop(&run);
        tb_free(&run);
        return 1;
    }
    bool ok;
    switch (run.o.scenario) {
    case TB_IDLE:
        ok = tb_run_idle(&run);
        break;
    case TB_FANOUT_ONE:
        ok = tb_run_fanout_one(&run);
        break;
    case TB_FANOUT_MANY:
        ok = tb_run_fanout_many(&run);
        break;
    default:
        ok = tb_run_wake(&run);
        break;
    }
    fflush(stdout);
    tb_stop(&run);
    tb_free(&run);
    return ok ? 0 : 1;
}
