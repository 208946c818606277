/*
 * What a torpor-bench client process does in each phase: publish (as
 * fast as the window allows, or on a schedule), count and time what its
 * subscribers receive, wait for a drain, take wake samples one room at a
 * time, and touch every room once.
 *
 * Every subscriber expects the sequence numbers of its room's sender in
 * order, from 0.  A number past the next expected one counts the ones
 * skipped as gaps, one already seen counts as a duplicate, and a message
 * for another room, or one that reaches its own sender, as misrouted.
 */
#include "build-config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench_util.h"
#include "bench/tb_client.h"

/* How often fanout-many's schedule is looked at. */
#define TB_TICK_US 1000

static void
tb_arm_ms(struct event *ev, uint64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000),
                         .tv_usec = (suseconds_t)(ms % 1000) * 1000};

    event_add(ev, &tv);
}

/* tb_send_message makes room's sender send the room's next message. */
static bool
tb_send_message(struct tb_client *cl, struct tb_room *room)
{
    uint8_t frame[TB_MESSAGE_MAX];
    uint64_t now_ns = bench_now_ns();
    size_t len = tb_wire_message(frame, cl->o->proto, cl->o->size, room->sent,
                                 now_ns, room->index, tb_client_mask(cl));

    if (cl->rep.first_send_ns == 0) {
        cl->rep.first_send_ns = now_ns;
    }
    room->sent++;
    cl->rep.sent++;
    return tb_conn_write(room->sender, frame, len);
}

/* tb_min_progress: the fewest messages any process's designated
 * subscriber has received in fanout-one. */
static uint64_t
tb_min_progress(struct tb_client *cl)
{
    uint64_t least = UINT64_MAX;

    for (unsigned p = 0; p < cl->o->procs; p++) {
        if (cl->has_subscribers[p]) {
            uint64_t v = atomic_load(&cl->shared->progress[p]);
            least = v < least ? v : least;
        }
    }
    return least;
}

/*
 * tb_phase_pump publishes fanout-one's messages while the run lasts and
 * fewer than window are in flight, a batch per write.  When the window is
 * full it asks to be woken once half of it is free, rather than at every
 * message, which would cost a wake-up per delivery.
 */
void
tb_phase_pump(struct tb_client *cl)
{
    struct tb_room *room = &cl->rooms[0];
    struct tb_conn *c = room->sender;
    uint64_t window = cl->o->window;

    if (cl->o->scenario != TB_FANOUT_ONE || cl->phase != TB_CMD_RUN || c == NULL
        || c->state != TB_READY || c->out_len > 0) {
        return;
    }
    for (;;) {
        uint64_t now_ns = bench_now_ns();
        if (now_ns >= cl->run_end_ns) {
            return;
        }
        uint64_t done = tb_min_progress(cl);
        uint64_t in_flight = done < room->sent ? room->sent - done : 0;
        if (in_flight >= window) {
            uint64_t need = room->sent - window + (window + 1) / 2;
            atomic_store(&cl->shared->wake_need, need);
            if (tb_min_progress(cl) < need) {
                return;
            }
            atomic_store(&cl->shared->wake_need, 0);
            continue;
        }
        uint64_t n = window - in_flight;
        n = n < TB_BATCH_FRAMES ? n : TB_BATCH_FRAMES;
        size_t len = 0;
        for (uint64_t i = 0; i < n; i++) {
            len += tb_wire_message(cl->wbuf + len, cl->o->proto, cl->o->size,
                                   room->sent + i, now_ns, room->index,
                                   tb_client_mask(cl));
        }
        if (cl->rep.first_send_ns == 0) {
            cl->rep.first_send_ns = now_ns;
        }
        room->sent += n;
        cl->rep.sent += n;
        if (!tb_conn_write(c, cl->wbuf, len) || c->out_len > 0) {
            return; // tb_on_writable pumps again once the socket drains
        }
    }
}

void
tb_phase_on_wake(evutil_socket_t fd, short what, void *arg)
{
    uint64_t count;

    (void)what;
    if (read(fd, &count, sizeof(count)) < 0 && errno != EAGAIN) {
        tb_client_error(arg, "could not read the publisher's eventfd: %s",
                        strerror(errno));
    }
    tb_phase_pump(arg);
}

/* tb_phase_read_done publishes a designated subscriber's progress. */
void
tb_phase_read_done(struct tb_conn *c)
{
    struct tb_client *cl = c->cl;
    struct tb_shared *sh = cl->shared;
    uint64_t one = 1;

    if (c != cl->designated || cl->o->scenario != TB_FANOUT_ONE) {
        return;
    }
    atomic_store(&sh->progress[cl->proc], c->next_seq);
    uint64_t need = atomic_load(&sh->wake_need);
    if (need != 0 && tb_min_progress(cl) >= need
        && atomic_exchange(&sh->wake_need, 0) != 0
        && write(cl->wake_fd, &one, sizeof(one)) < 0) {
        tb_client_error(cl, "could not wake the publisher: %s",
                        strerror(errno));
    }
}

static bool
tb_room_usable(struct tb_client *cl, struct tb_room *room)
{
    return room->sender != NULL && room->sender->state == TB_READY
           && room->subscribers > 0 && cl->phase != 0;
}

/* tb_wake_next sends the next wake sample, or reports the round. */
static void
tb_wake_next(struct tb_client *cl)
{
    if (cl->cursor == cl->nrooms) {
        tb_client_finish(cl);
        return;
    }
    struct tb_room *room = &cl->rooms[cl->cursor];
    if (!tb_room_usable(cl, room)) {
        tb_client_error(cl, "room %u has no sender or subscriber left",
                        room->index);
        tb_client_finish(cl);
        return;
    }
    room->awaiting = true;
    tb_arm_ms(cl->phase_timer, cl->o->timeout_ms);
    tb_send_message(cl, room);
}

/* tb_touch_next sends one message in the next room with subscribers. */
static void
tb_touch_next(struct tb_client *cl)
{
    unsigned size = cl->o->room_size;

    for (; cl->cursor < cl->nrooms; cl->cursor++) {
        struct tb_room *room = &cl->rooms[cl->cursor];
        room->touch_left = 0;
        for (unsigned i = 1; i < size; i++) {
            room->touch_left +=
                cl->conns[cl->cursor * size + i].state == TB_READY;
        }
        if (room->touch_left > 0 && tb_room_usable(cl, room)) {
            tb_arm_ms(cl->phase_timer, cl->o->timeout_ms);
            tb_send_message(cl, room);
            return;
        }
    }
    tb_client_finish(cl);
}

void
tb_phase_deliver(struct tb_conn *c, const uint8_t *p, size_t len,
                 uint64_t now_ns)
{
    struct tb_client *cl = c->cl;
    struct tb_report *r = &cl->rep;
    uint64_t seq, sent_ns;
    uint32_t index;

    if (!tb_wire_parse_payload(p, len, cl->o->size, &seq, &sent_ns, &index)) {
        tb_conn_fail(c, "a message that is not the benchmark's (%zu bytes)",
                     len);
        return;
    }
    if (c->sender || index != c->room->index) {
        r->misrouted++;
        return;
    }
    if (seq < c->next_seq) {
        r->dups++;
        return;
    }
    r->gaps += seq - c->next_seq;
    r->received++;
    r->last_recv_ns = now_ns;
    cl->sum_next += seq + 1 - c->next_seq;
    c->next_seq = seq + 1;
    uint64_t latency_ns = now_ns > sent_ns ? now_ns - sent_ns : 0;
    struct tb_room *room = c->room;
    bool last = seq + 1 == room->sent;
    switch (cl->phase) {
    case TB_CMD_WAKE:
        if (room == &cl->rooms[cl->cursor] && room->awaiting && last) {
            room->awaiting = false;
            tb_hist_add(cl->awake_sample ? &r->awake : &r->lat, latency_ns);
            cl->awake_sample = !cl->awake_sample;
            cl->cursor += !cl->awake_sample;
            tb_wake_next(cl);
        }
        return;
    case TB_CMD_TOUCH:
        tb_hist_add(&r->lat, latency_ns);
        if (room == &cl->rooms[cl->cursor] && last && --room->touch_left == 0) {
            cl->cursor++;
            tb_touch_next(cl);
        }
        return;
    default:
        tb_hist_add(&r->lat, latency_ns);
        if (cl->phase == TB_CMD_DRAIN && cl->sum_next >= cl->expected_total) {
            tb_client_finish(cl);
        }
    }
}

/*
 * tb_on_tick sends fanout-many's messages that are due: the g-th message
 * of the process is due g / (rooms * rate) seconds into the run, room
 * g % rooms, so each room sends at rate and the rooms take turns evenly.
 */
static void
tb_on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct tb_client *cl = arg;
    uint64_t now_ns = bench_now_ns();

    (void)fd;
    (void)what;
    if (cl->phase != TB_CMD_RUN || now_ns >= cl->run_end_ns
        || cl->nrooms == 0) {
        event_del(cl->tick);
        return;
    }
    /* In double: the product of the three overflows 64 bits at the
     * largest sizes the options allow. */
    uint64_t due = (uint64_t)((double)(now_ns - cl->run_start_ns)
                              * (double)cl->nrooms * (double)cl->rate / 1e9)
                   + 1;
    while (cl->scheduled < due) {
        struct tb_room *room = &cl->rooms[cl->scheduled % cl->nrooms];
        cl->scheduled++;
        if (room->sender == NULL || room->sender->state != TB_READY) {
            tb_client_error(cl, "room %u lost its sender", room->index);
            continue;
        }
        tb_send_message(cl, room);
    }
}

static void
tb_on_phase_timer(evutil_socket_t fd, short what, void *arg)
{
    struct tb_client *cl = arg;

    (void)fd;
    (void)what;
    if (cl->phase == TB_CMD_WAKE || cl->phase == TB_CMD_TOUCH) {
        tb_client_error(cl, "room %u: no delivery within %u ms",
                        cl->cursor < cl->nrooms ? cl->rooms[cl->cursor].index
                                                : 0,
                        cl->o->timeout_ms);
    }
    if (cl->phase != 0) {
        tb_client_finish(cl);
    }
}

bool
tb_phase_init(struct tb_client *cl)
{
    cl->phase_timer = evtimer_new(cl->base, tb_on_phase_timer, cl);
    cl->tick = event_new(cl->base, -1, EV_PERSIST, tb_on_tick, cl);
    return cl->phase_timer != NULL && cl->tick != NULL;
}

/* tb_phase_drain waits until every subscriber has what it expects. */
static void
tb_phase_drain(struct tb_client *cl, const struct tb_cmd *cmd)
{
    cl->phase = TB_CMD_DRAIN; // the run's counters and CPU carry on
    cl->expected_total = 0;
    for (unsigned r = 0; r < cl->nrooms; r++) {
        struct tb_room *room = &cl->rooms[r];
        room->expected = cmd->a != 0 ? cmd->a : room->sent;
        cl->expected_total += room->expected * room->subscribers;
    }
    cl->rep.expected = cl->expected_total - cl->sum_next_at_run;
    if (cl->sum_next >= cl->expected_total) {
        tb_client_finish(cl);
        return;
    }
    tb_arm_ms(cl->phase_timer, cmd->b);
}

void
tb_phase_command(struct tb_client *cl, const struct tb_cmd *cmd)
{
    struct timeval tick = {.tv_usec = TB_TICK_US};

    switch (cmd->op) {
    case TB_CMD_RUN:
        tb_client_begin(cl, TB_CMD_RUN);
        cl->sum_next_at_run = cl->sum_next;
        cl->run_start_ns = bench_now_ns();
        cl->run_end_ns = cl->run_start_ns + cmd->a * 1000000u;
        cl->rate = cmd->b;
        cl->scheduled = 0;
        tb_arm_ms(cl->phase_timer, cmd->a);
        if (cl->rate > 0) {
            event_add(cl->tick, &tick);
        } else {
            tb_phase_pump(cl);
        }
        return;
    case TB_CMD_DRAIN:
        tb_phase_drain(cl, cmd);
        return;
    case TB_CMD_WAKE:
        tb_client_begin(cl, TB_CMD_WAKE);
        cl->cursor = 0;
        cl->awake_sample = false;
        tb_wake_next(cl);
        return;
    case TB_CMD_TOUCH:
        tb_client_begin(cl, TB_CMD_TOUCH);
        cl->cursor = 0;
        tb_touch_next(cl);
        return;
    case TB_CMD_COUNT:
        tb_client_begin(cl, TB_CMD_COUNT);
        tb_client_finish(cl);
        return;
    default:
        tb_client_begin(cl, cmd->op);
        tb_client_error(cl, "an unknown command %u", (unsigned)cmd->op);
        tb_client_finish(cl);
    }
}
