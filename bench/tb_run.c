/*
 * The scenarios, as the parent of torpor-bench drives them: commands to
 * every client process, their reports summed, the server sampled between
 * phases, one line of figures per run.
 */
#include "build-config.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "bench/bench_util.h"
#include "bench/tb_run.h"

/* Reports summed over the client processes. */
struct tb_sum {
    uint64_t opened, failed, not_tried, open, sent, expected, received, gaps,
        dups, misrouted;
    uint64_t first_start_ns, last_ready_ns, first_send_ns, last_recv_ns;
    double cpu_s;
    bool error;
    struct tb_hist lat, awake;
};

static const char *const tb_scenario_name[] = {"idle", "fanout-one",
                                               "fanout-many", "wake"};

bool
tb_send(struct tb_run *run, unsigned p, uint32_t op, uint64_t a, uint64_t b)
{
    struct tb_cmd cmd = {.op = op, .a = a, .b = b};

    return send(run->ctl[p], &cmd, sizeof(cmd), MSG_NOSIGNAL)
           == (ssize_t)sizeof(cmd);
}

/*
 * tb_collect waits up to timeout_ms for the report of op from each client
 * process in [first, last).  False, with the reason on stderr, when one
 * does not answer in time or is gone.
 */
static bool
tb_collect(struct tb_run *run, unsigned first, unsigned last, uint32_t op,
           uint64_t timeout_ms)
{
    uint64_t deadline_ns = bench_now_ns() + timeout_ms * 1000000u;
    bool pending[TB_MAX_PROCS] = {0};
    unsigned left = last - first;

    for (unsigned p = first; p < last; p++) {
        pending[p] = true;
    }
    while (left > 0) {
        struct pollfd fds[TB_MAX_PROCS];
        unsigned who[TB_MAX_PROCS], n = 0;
        for (unsigned p = first; p < last; p++) {
            if (pending[p]) {
                fds[n] = (struct pollfd){.fd = run->ctl[p], .events = POLLIN};
                who[n++] = p;
            }
        }
        uint64_t now_ns = bench_now_ns();
        int wait_ms = now_ns >= deadline_ns
                          ? 0
                          : (int)((deadline_ns - now_ns) / 1000000u + 1);
        int ready = poll(fds, n, wait_ms);
        if (ready < 0 && errno == EINTR) {
            continue;
        }
        if (ready <= 0) {
            fprintf(
                stderr,
                "torpor-bench: could not hear from %u client processes within %" PRIu64
                " ms\n",
                left, timeout_ms);
            return false;
        }
        for (unsigned i = 0; i < n; i++) {
            if (fds[i].revents == 0) {
                continue;
            }
            unsigned p = who[i];
            ssize_t got =
                recv(run->ctl[p], &run->reps[p], sizeof(run->reps[p]), 0);
            if (got != (ssize_t)sizeof(run->reps[p]) || run->reps[p].op != op) {
                fprintf(
                    stderr,
                    "torpor-bench: could not hear from client process %u: %s\n",
                    p, got <= 0 ? "it is gone" : "a report of another phase");
                return false;
            }
            pending[p] = false;
            left--;
        }
    }
    return true;
}

/* tb_all sends op to every client process and waits for every report. */
static bool
tb_all(struct tb_run *run, uint32_t op, uint64_t a, uint64_t b,
       uint64_t timeout_ms)
{
    for (unsigned p = 0; p < run->o.procs; p++) {
        if (!tb_send(run, p, op, a, b)) {
            fprintf(stderr, "torpor-bench: could not reach client process %u\n",
                    p);
            return false;
        }
    }
    return tb_collect(run, 0, run->o.procs, op, timeout_ms);
}

/* tb_add adds the last reports to s, and tells their errors on stderr. */
static void
tb_add(struct tb_run *run, struct tb_sum *s)
{
    for (unsigned p = 0; p < run->o.procs; p++) {
        const struct tb_report *r = &run->reps[p];
        s->opened += r->opened;
        s->failed += r->failed;
        s->not_tried += r->not_tried;
        s->open += r->open;
        s->sent += r->sent;
        s->expected += r->expected;
        s->received += r->received;
        s->gaps += r->gaps;
        s->dups += r->dups;
        s->misrouted += r->misrouted;
        s->cpu_s += r->cpu_s;
        if (r->first_start_ns != 0
            && (s->first_start_ns == 0
                || r->first_start_ns < s->first_start_ns)) {
            s->first_start_ns = r->first_start_ns;
        }
        if (r->first_send_ns != 0
            && (s->first_send_ns == 0 || r->first_send_ns < s->first_send_ns)) {
            s->first_send_ns = r->first_send_ns;
        }
        s->last_ready_ns = r->last_ready_ns > s->last_ready_ns
                               ? r->last_ready_ns
                               : s->last_ready_ns;
        s->last_recv_ns = r->last_recv_ns > s->last_recv_ns ? r->last_recv_ns
                                                            : s->last_recv_ns;
        tb_hist_merge(&s->lat, &r->lat);
        tb_hist_merge(&s->awake, &r->awake);
        if (r->error[0] != '\0') {
            s->error = true;
            fprintf(stderr, "torpor-bench: client process %u: %s\n", p,
                    r->error);
        }
    }
}

static struct tb_sum *
tb_sum_new(void)
{
    struct tb_sum *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        fprintf(stderr, "torpor-bench: could not allocate the sums\n");
    }
    return s;
}

static void
tb_sample(const struct tb_run *run, bool with_memory, struct tb_usage *srv,
          struct tb_usage *aux)
{
    tb_proc_sample(run->o.server_pids, run->o.nserver_pids, with_memory, srv);
    tb_proc_sample(run->o.aux_pids, run->o.naux_pids, with_memory, aux);
}

static void
tb_print_head(const struct tb_run *run)
{
    printf("scenario=%s proto=%s procs=%u rooms=%u room_size=%u",
           tb_scenario_name[run->o.scenario],
           run->o.proto == TB_SIO ? "sio" : "ws", run->o.procs, run->o.rooms,
           run->o.room_size);
}

/* tb_print_lat prints a histogram's percentiles, or only its count when
 * it holds no sample: a 0 would read as a figure. */
static void
tb_print_lat(const char *name, const struct tb_hist *h)
{
    printf(" %s_n=%" PRIu64, name, h->count);
    if (h->count == 0) {
        return;
    }
    printf(" %s_p50_us=%.1f %s_p99_us=%.1f %s_p999_us=%.1f %s_max_us=%.1f",
           name, tb_hist_pct_us(h, 500), name, tb_hist_pct_us(h, 990), name,
           tb_hist_pct_us(h, 999), name, (double)h->max_ns / 1000.0);
}

/* tb_print_memory prints Rss and Pss growth per connection, in bytes. */
static void
tb_print_memory(const char *name, const struct tb_usage *from,
                const struct tb_usage *to, uint64_t conns)
{
    if (conns == 0) {
        return;
    }
    printf(" %s_rss_kb=%" PRIu64 " %s_pss_kb=%" PRIu64
           " %s_rss_per_conn_b=%.0f %s_pss_per_conn_b=%.0f",
           name, to->rss_kb, name, to->pss_kb, name,
           ((double)to->rss_kb - (double)from->rss_kb) * 1024.0 / (double)conns,
           name,
           ((double)to->pss_kb - (double)from->pss_kb) * 1024.0
               / (double)conns);
}

/* tb_connect_all opens every connection and prints how it went. */
static bool
tb_connect_all(struct tb_run *run, struct tb_sum *s)
{
    bool heard =
        tb_all(run, TB_CMD_CONNECT, 0, 0, (uint64_t)run->o.max_seconds * 1000u);

    if (heard) {
        tb_add(run, s);
    }
    double secs = (double)(s->last_ready_ns - s->first_start_ns) / 1e9;
    printf(" conns=%u opened=%" PRIu64 " failed=%" PRIu64 " not_tried=%" PRIu64
           " connect_s=%.2f connect_per_s=%.0f",
           run->o.rooms * run->o.room_size, s->opened, s->failed, s->not_tried,
           secs, secs > 0 ? (double)s->opened / secs : 0.0);
    return heard && s->failed == 0;
}

static void
tb_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000,
                          .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

bool
tb_run_idle(struct tb_run *run)
{
    const struct tb_opts *o = &run->o;
    struct tb_usage base, open, idle, aux_base, aux_open, aux_idle;
    struct tb_usage cpu0, cpu1, aux_cpu;
    struct tb_sum *s = tb_sum_new(), *touch = tb_sum_new();
    uint64_t still = 0;

    if (s == NULL || touch == NULL) {
        free(s);
        free(touch);
        return false;
    }
    tb_sample(run, true, &base, &aux_base);
    tb_print_head(run);
    bool ok = tb_connect_all(run, s);
    tb_sample(run, true, &open, &aux_open);
    tb_sleep_ms(o->idle_ms);
    tb_sample(run, true, &idle, &aux_idle);
    printf(" idle_ms=%u", o->idle_ms);
    /* A server that died leaves nothing to read: print what it had. */
    if (o->nserver_pids > 0) {
        printf(" server_alive=%d server_procs=%u base_rss_kb=%" PRIu64
               " base_pss_kb=%" PRIu64,
               idle.alive, idle.procs, base.rss_kb, base.pss_kb);
        if (open.alive) {
            printf(" connect_cpu_s=%.2f", open.cpu_s - base.cpu_s);
            tb_print_memory("open", &base, &open, s->opened);
        }
        if (idle.alive) {
            printf(" idle_cpu_s=%.2f", idle.cpu_s - open.cpu_s);
            tb_print_memory("idle", &base, &idle, s->opened);
        }
        ok = ok && idle.alive;
    }
    if (o->naux_pids > 0) {
        printf(" aux_idle_cpu_s=%.2f", aux_idle.cpu_s - aux_open.cpu_s);
        tb_print_memory("aux_idle", &aux_base, &aux_idle, s->opened);
    }
    if (tb_all(run, TB_CMD_COUNT, 0, 0, 10000)) {
        for (unsigned p = 0; p < o->procs; p++) {
            still += run->reps[p].open;
        }
    }
    printf(" still_open=%" PRIu64, still);
    ok = ok && still == s->opened;
    /* One message per room wakes each room once, where rooms hibernated. */
    tb_sample(run, false, &cpu0, &aux_cpu);
    if (tb_all(run, TB_CMD_TOUCH, 0, 0, (uint64_t)o->max_seconds * 1000u)) {
        tb_add(run, touch);
        tb_sample(run, false, &cpu1, &aux_cpu);
        tb_print_lat("touch", &touch->lat);
        if (o->nserver_pids > 0) {
            printf(" touch_cpu_s=%.2f", cpu1.cpu_s - cpu0.cpu_s);
        }
        ok =
            ok && touch->dups == 0 && touch->gaps == 0 && touch->misrouted == 0;
    } else {
        ok = false;
    }
    ok = ok && !s->error && !touch->error;
    printf(" lg_cpu_s=%.2f ok=%d\n", s->cpu_s + touch->cpu_s, ok);
    free(s);
    free(touch);
    return ok;
}

/*
 * tb_print_fanout prints a run's deliveries, and what they cost the
 * server (srv, aux: before and after) and the load generator.
 */
static bool
tb_print_fanout(const struct tb_run *run, const struct tb_sum *s,
                const struct tb_usage srv[2], const struct tb_usage aux[2])
{
    const struct tb_opts *o = &run->o;
    uint64_t lost = s->expected > s->received ? s->expected - s->received : 0;
    double secs = s->last_recv_ns > s->first_send_ns
                      ? (double)(s->last_recv_ns - s->first_send_ns) / 1e9
                      : 0.0;
    double per_m = s->received > 0 ? 1e6 / (double)s->received : 0.0;

    printf(" seconds=%u size=%u sent=%" PRIu64 " expected=%" PRIu64
           " delivered=%" PRIu64 " lost=%" PRIu64 " gaps=%" PRIu64
           " dups=%" PRIu64 " misrouted=%" PRIu64 " frames_per_s=%.0f",
           o->seconds, o->size, s->sent, s->expected, s->received, lost,
           s->gaps, s->dups, s->misrouted,
           secs > 0 ? (double)s->received / secs : 0.0);
    tb_print_lat("lat", &s->lat);
    if (o->nserver_pids > 0) {
        double cpu = srv[1].cpu_s - srv[0].cpu_s;
        printf(" server_alive=%d server_cpu_s=%.2f cpu_s_per_m=%.3f",
               srv[1].alive, cpu, cpu * per_m);
    }
    if (o->naux_pids > 0) {
        double cpu = aux[1].cpu_s - aux[0].cpu_s;
        printf(" aux_cpu_s=%.2f aux_cpu_s_per_m=%.3f", cpu, cpu * per_m);
    }
    bool ok = !s->error && lost == 0 && s->dups == 0 && s->misrouted == 0
              && s->received > 0 && (o->nserver_pids == 0 || srv[1].alive);
    printf(" lg_cpu_s=%.2f lg_cpu_s_per_m=%.3f ok=%d\n", s->cpu_s,
           s->cpu_s * per_m, ok);
    return ok;
}

bool
tb_run_fanout_one(struct tb_run *run)
{
    const struct tb_opts *o = &run->o;
    struct tb_usage srv[2], aux[2];
    struct tb_sum *s = tb_sum_new(), *c = tb_sum_new();
    uint64_t run_ms = (uint64_t)o->seconds * 1000u;
    bool ok = false;

    if (s == NULL || c == NULL) {
        free(s);
        free(c);
        return false;
    }
    tb_print_head(run);
    if (tb_connect_all(run, c)) {
        tb_sample(run, false, &srv[0], &aux[0]);
        /* Every process reports at the end of the run; only process 0,
         * which holds the publisher, has sent anything. */
        if (tb_all(run, TB_CMD_RUN, run_ms, 0, run_ms + 30000)) {
            uint64_t sent = run->reps[0].sent;
            ok = tb_all(run, TB_CMD_DRAIN, sent, run->drain_ms,
                        run->drain_ms + 30000);
        }
        tb_sample(run, false, &srv[1], &aux[1]);
    }
    printf(" window=%u", o->window);
    if (ok) {
        tb_add(run, s);
        ok = tb_print_fanout(run, s, srv, aux);
    } else {
        printf(" ok=0\n");
    }
    free(s);
    free(c);
    return ok;
}

bool
tb_run_fanout_many(struct tb_run *run)
{
    const struct tb_opts *o = &run->o;
    struct tb_sum *c = tb_sum_new();
    uint64_t run_ms = (uint64_t)o->seconds * 1000u;
    bool ok = c != NULL;

    /* The connections are opened once, for every rate. */
    tb_print_head(run);
    ok = ok && tb_connect_all(run, c);
    printf(" ok=%d\n", ok);
    for (unsigned i = 0; ok && i < o->nrates; i++) {
        struct tb_usage srv[2], aux[2];
        struct tb_sum *s = tb_sum_new();
        tb_sample(run, false, &srv[0], &aux[0]);
        ok = s != NULL
             && tb_all(run, TB_CMD_RUN, run_ms, o->rates[i], run_ms + 30000)
             && tb_all(run, TB_CMD_DRAIN, 0, run->drain_ms,
                       run->drain_ms + 30000);
        tb_sample(run, false, &srv[1], &aux[1]);
        tb_print_head(run);
        printf(" rate=%u", o->rates[i]);
        if (ok) {
            tb_add(run, s);
            ok = tb_print_fanout(run, s, srv, aux);
        } else {
            printf(" ok=0\n");
        }
        free(s);
    }
    free(c);
    return ok;
}

bool
tb_run_wake(struct tb_run *run)
{
    const struct tb_opts *o = &run->o;
    struct tb_sum *c = tb_sum_new(), *s = tb_sum_new();
    bool ok = c != NULL && s != NULL;

    tb_print_head(run);
    ok = ok && tb_connect_all(run, c);
    /* One room at a time in the whole run: a client process at a time. */
    for (unsigned k = 0; ok && k < o->rounds; k++) {
        tb_sleep_ms(o->idle_ms);
        for (unsigned p = 0; ok && p < o->procs; p++) {
            ok = tb_send(run, p, TB_CMD_WAKE, k, 0)
                 && tb_collect(run, p, p + 1, TB_CMD_WAKE,
                               (uint64_t)o->max_seconds * 1000u);
            if (ok) {
                struct tb_report *r = &run->reps[p];
                tb_hist_merge(&s->lat, &r->lat);
                tb_hist_merge(&s->awake, &r->awake);
                s->cpu_s += r->cpu_s;
                s->dups += r->dups;
                s->misrouted += r->misrouted;
                if (r->error[0] != '\0') {
                    fprintf(stderr, "torpor-bench: client process %u: %s\n", p,
                            r->error);
                    ok = false;
                }
            }
        }
    }
    printf(" rounds=%u idle_ms=%u", o->rounds, o->idle_ms);
    if (s != NULL) {
        tb_print_lat("wake", &s->lat);
        tb_print_lat("awake", &s->awake);
        ok = ok && s->dups == 0 && s->misrouted == 0
             && s->lat.count == (uint64_t)o->rooms * o->rounds;
        printf(" lg_cpu_s=%.2f", s->cpu_s);
    }
    printf(" ok=%d\n", ok);
    free(c);
    free(s);
    return ok;
}
