/*
 * A torpor-bench client process: its share of the connections, its
 * commands from the parent, writes, failures and reports.  tb_conn.c
 * opens the connections and reads them; tb_phase.c says what the phases
 * do with the messages.
 */
#include "build-config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/bench_util.h"
#include "bench/tb_client.h"

/* Output one connection may hold back before the bench gives up on it. */
#define TB_MAX_UNSENT (16u << 20)

uint32_t
tb_client_mask(struct tb_client *cl)
{
    cl->rng ^= cl->rng << 13;
    cl->rng ^= cl->rng >> 7;
    cl->rng ^= cl->rng << 17;
    return (uint32_t)(cl->rng >> 16);
}

double
tb_client_cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6
           + (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

void
tb_client_error(struct tb_client *cl, const char *fmt, ...)
{
    /* Between commands the report is not being written: keep the failure
     * for the next one, which would otherwise start blank. */
    char *error = cl->phase == 0 ? cl->between_error : cl->rep.error;
    va_list ap;

    if (error[0] != '\0') {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(error, TB_ERROR_BYTES, fmt, ap);
    va_end(ap);
}

void
tb_client_begin(struct tb_client *cl, uint32_t op)
{
    memset(&cl->rep, 0, sizeof(cl->rep));
    memcpy(cl->rep.error, cl->between_error, TB_ERROR_BYTES);
    cl->between_error[0] = '\0';
    cl->phase = op;
    cl->cpu_at_start = tb_client_cpu_s();
}

/* tb_client_finish sends the report of the command being served. */
void
tb_client_finish(struct tb_client *cl)
{
    struct tb_report *r = &cl->rep;

    r->op = cl->phase;
    r->proc = cl->proc;
    r->cpu_s = tb_client_cpu_s() - cl->cpu_at_start;
    r->opened = cl->opened;
    r->failed = cl->failed;
    r->open = 0;
    for (unsigned i = 0; i < cl->nconns; i++) {
        r->open += cl->conns[i].state == TB_READY;
    }
    cl->phase = 0;
    event_del(cl->phase_timer);
    event_del(cl->tick);
    if (send(cl->ctl_fd, r, sizeof(*r), MSG_NOSIGNAL) != (ssize_t)sizeof(*r)) {
        event_base_loopbreak(cl->base);
    }
}

void
tb_conn_fail(struct tb_conn *c, const char *fmt, ...)
{
    struct tb_client *cl = c->cl;
    char why[160];
    va_list ap;

    if (c->state == TB_CLOSED) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    bool was_ready = c->state == TB_READY;
    tb_client_error(cl, "%s connection %u of room %u: %s",
                    was_ready ? "lost" : "could not open",
                    (unsigned)(c - cl->conns), c->room->index, why);
    if (c->ev != NULL) {
        event_free(c->ev);
        c->ev = NULL;
    }
    if (c->wev != NULL) {
        event_free(c->wev);
        c->wev = NULL;
    }
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_cap = 0;
    if (c->fd >= 0) {
        close(c->fd);
    }
    c->fd = -1;
    c->state = TB_CLOSED;
    if (!was_ready) {
        cl->failed++;
        cl->connecting--;
        tb_connect_more(cl);
    } else if (cl->phase == TB_CMD_DRAIN || cl->phase == TB_CMD_WAKE
               || cl->phase == TB_CMD_TOUCH) {
        /* What the phase waits for may never come now. */
        tb_client_finish(cl);
    }
}

static void
tb_on_writable(evutil_socket_t fd, short what, void *arg)
{
    struct tb_conn *c = arg;

    (void)what;
    ssize_t n = write(fd, c->out, c->out_len);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) {
            tb_conn_fail(c, "could not write: %s", strerror(errno));
        }
        return;
    }
    memmove(c->out, c->out + n, c->out_len - (size_t)n);
    c->out_len -= (size_t)n;
    if (c->out_len == 0) {
        event_del(c->wev);
        if (c == c->cl->rooms[0].sender) {
            tb_phase_pump(c->cl);
        }
    }
}

bool
tb_conn_write(struct tb_conn *c, const void *data, size_t len)
{
    ssize_t n = 0;

    if (c->state == TB_CLOSED) {
        return false;
    }
    if (c->out_len == 0) {
        n = write(c->fd, data, len);
        if (n == (ssize_t)len) {
            return true;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            tb_conn_fail(c, "could not write: %s", strerror(errno));
            return false;
        }
        n = n < 0 ? 0 : n;
    }
    size_t rest = len - (size_t)n;
    if (c->out_len + rest > TB_MAX_UNSENT) {
        tb_conn_fail(c, "the server took nothing of %u bytes", TB_MAX_UNSENT);
        return false;
    }
    if (c->out_len + rest > c->out_cap) {
        size_t cap = c->out_cap == 0 ? 4096 : c->out_cap;
        while (cap < c->out_len + rest) {
            cap *= 2;
        }
        uint8_t *grown = realloc(c->out, cap);
        if (grown == NULL) {
            tb_conn_fail(c, "could not allocate %zu bytes of output", cap);
            return false;
        }
        c->out = grown;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, (const uint8_t *)data + n, rest);
    c->out_len += rest;
    if (c->wev == NULL) {
        c->wev = event_new(c->cl->base, c->fd, EV_WRITE | EV_PERSIST,
                           tb_on_writable, c);
    }
    if (c->wev == NULL || event_add(c->wev, NULL) != 0) {
        tb_conn_fail(c, "could not wait for the socket to take output");
        return false;
    }
    return true;
}

static void
tb_on_command(evutil_socket_t fd, short what, void *arg)
{
    struct tb_client *cl = arg;
    struct tb_cmd cmd;

    (void)what;
    ssize_t n = recv(fd, &cmd, sizeof(cmd), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n != (ssize_t)sizeof(cmd) || cmd.op == TB_CMD_QUIT) {
        event_base_loopbreak(cl->base);
        return;
    }
    if (cmd.op == TB_CMD_CONNECT) {
        tb_client_begin(cl, TB_CMD_CONNECT);
        tb_connect_more(cl);
        return;
    }
    tb_phase_command(cl, &cmd);
}

/* tb_share: how many of 0..n-1 are proc modulo k. */
static unsigned
tb_share(unsigned n, unsigned proc, unsigned k)
{
    return proc < n ? (n - proc + k - 1) / k : 0;
}

/*
 * tb_client_plan gives process proc its rooms and connections.
 * fanout-one spreads its one room over every process, connection j to
 * process j % procs, so the publisher (j = 0) is in process 0.  The
 * other scenarios give whole rooms, room r to process r % procs, so a
 * room's sender and subscribers share a loop.
 */
static bool
tb_client_plan(struct tb_client *cl)
{
    const struct tb_opts *o = cl->o;
    unsigned k = o->procs;

    if (o->scenario == TB_FANOUT_ONE) {
        cl->nrooms = 1;
        cl->nconns = tb_share(o->room_size, cl->proc, k);
        for (unsigned p = 0; p < k; p++) {
            cl->has_subscribers[p] = (p == 0 ? k : p) < o->room_size;
        }
    } else {
        cl->nrooms = tb_share(o->rooms, cl->proc, k);
        cl->nconns = cl->nrooms * o->room_size;
    }
    cl->rooms = calloc(cl->nrooms ? cl->nrooms : 1, sizeof(*cl->rooms));
    cl->conns = calloc(cl->nconns ? cl->nconns : 1, sizeof(*cl->conns));
    if (cl->rooms == NULL || cl->conns == NULL) {
        return false;
    }
    for (unsigned i = 0; i < cl->nconns; i++) {
        struct tb_conn *c = &cl->conns[i];
        unsigned r = o->scenario == TB_FANOUT_ONE ? 0 : i / o->room_size;
        c->cl = cl;
        c->fd = -1;
        c->room = &cl->rooms[r];
        c->sender = o->scenario == TB_FANOUT_ONE ? cl->proc == 0 && i == 0
                                                 : i % o->room_size == 0;
        if (c->sender) {
            c->room->sender = c;
        } else {
            c->room->subscribers++;
            cl->designated = c;
        }
    }
    for (unsigned r = 0; r < cl->nrooms; r++) {
        cl->rooms[r].index =
            o->scenario == TB_FANOUT_ONE ? 0 : cl->proc + r * k;
    }
    return true;
}

static void
tb_client_free(struct tb_client *cl)
{
    for (unsigned i = 0; i < cl->nconns; i++) {
        struct tb_conn *c = &cl->conns[i];
        if (c->ev != NULL) {
            event_free(c->ev);
        }
        if (c->wev != NULL) {
            event_free(c->wev);
        }
        if (c->fd >= 0) {
            close(c->fd);
        }
        free(c->out);
    }
    if (cl->ctl_ev != NULL) {
        event_free(cl->ctl_ev);
    }
    if (cl->wake_ev != NULL) {
        event_free(cl->wake_ev);
    }
    if (cl->phase_timer != NULL) {
        event_free(cl->phase_timer);
    }
    if (cl->tick != NULL) {
        event_free(cl->tick);
    }
    if (cl->base != NULL) {
        event_base_free(cl->base);
    }
    free(cl->conns);
    free(cl->rooms);
    free(cl);
}

int
tb_client_main(const struct tb_opts *o, unsigned proc, int ctl_fd,
               struct tb_shared *shared, int wake_fd)
{
    struct tb_client *cl = calloc(1, sizeof(*cl));

    if (cl == NULL) {
        fprintf(stderr, "torpor-bench: could not allocate client process %u\n",
                proc);
        return 1;
    }
    cl->o = o;
    cl->proc = proc;
    cl->ctl_fd = ctl_fd;
    cl->wake_fd = wake_fd;
    cl->shared = shared;
    cl->rng = bench_now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15u;
    cl->base = event_base_new();
    if (cl->base == NULL || !tb_client_plan(cl)) {
        fprintf(stderr, "torpor-bench: could not set up client process %u\n",
                proc);
        tb_client_free(cl);
        return 1;
    }
    cl->ctl_ev =
        event_new(cl->base, ctl_fd, EV_READ | EV_PERSIST, tb_on_command, cl);
    if (o->scenario == TB_FANOUT_ONE && proc == 0) {
        cl->wake_ev = event_new(cl->base, wake_fd, EV_READ | EV_PERSIST,
                                tb_phase_on_wake, cl);
    }
    if (o->scenario == TB_FANOUT_ONE && !cl->has_subscribers[proc]) {
        atomic_store(&shared->progress[proc], UINT64_MAX);
    }
    int status = 1;
    if (cl->ctl_ev != NULL && event_add(cl->ctl_ev, NULL) == 0
        && (cl->wake_ev == NULL || event_add(cl->wake_ev, NULL) == 0)
        && tb_phase_init(cl)) {
        status = event_base_dispatch(cl->base) < 0;
    } else {
        fprintf(
            stderr,
            "torpor-bench: could not set up the events of client process %u\n",
            proc);
    }
    tb_client_free(cl);
    return status;
}
