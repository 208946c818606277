/*
 * Statements per operation: the prepared SQL, the builders that turn one
 * storage call into an op holding its statements, and the decoding of
 * results into what the completion hands back.
 *
 * Atomicity: a commit's statements are sent within one pipeline segment,
 * ended by a Sync.  PostgreSQL runs everything between two Syncs as one
 * implicit transaction: if a statement fails, the rest of the segment is
 * skipped and all of it rolls back at the Sync, so nothing of the batch is
 * applied; if none fails, all of it commits there.  A segment may hold
 * several commits (group commit, see pg_conn.c); one that fails is sent
 * again, so that a commit fails only by its own statements.  An explicit
 * BEGIN ... COMMIT is not used on purpose: a failure between them leaves
 * the session in an aborted transaction block past the Sync, which would
 * fail every op pipelined behind it, other objects' included.
 *
 * Every parameter and result is binary: bytea travels as its raw bytes,
 * bigint as 8 bytes big-endian, text as its bytes.
 */
#include "pg.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define PG_BYTEA 17
#define PG_INT8 20
#define PG_TEXT 25

#define PG_KV_COLS "SELECT key, value FROM torpor_kv WHERE object_id = $1 "

/* clang-format off */
const struct pg_stmt_def pg_stmt_defs[PG_ST_COUNT] = {
    [PG_ST_OBJECT_UPSERT] = {
        "torpor_object_upsert",
        "INSERT INTO torpor_objects (id, class, name) VALUES ($1, $2, $3) "
        "ON CONFLICT (id) DO NOTHING",
        3, {PG_BYTEA, PG_TEXT, PG_BYTEA}},
    /* An object without keys or alarms is not listed by objects. */
    [PG_ST_OBJECT_TIDY] = {
        "torpor_object_tidy",
        "DELETE FROM torpor_objects WHERE id = $1 "
        "AND NOT EXISTS (SELECT 1 FROM torpor_kv WHERE object_id = $1) "
        "AND NOT EXISTS (SELECT 1 FROM torpor_alarms WHERE object_id = $1)",
        1, {PG_BYTEA}},
    [PG_ST_KV_PUT] = {
        "torpor_kv_put",
        "INSERT INTO torpor_kv (object_id, key, value) VALUES ($1, $2, $3) "
        "ON CONFLICT (object_id, key) DO UPDATE SET value = EXCLUDED.value",
        3, {PG_BYTEA, PG_BYTEA, PG_BYTEA}},
    [PG_ST_KV_DELETE] = {
        "torpor_kv_delete",
        "DELETE FROM torpor_kv WHERE object_id = $1 AND key = $2",
        2, {PG_BYTEA, PG_BYTEA}},
    [PG_ST_ALARM_SET] = {
        "torpor_alarm_set",
        "INSERT INTO torpor_alarms (object_id, name, time_ms) "
        "VALUES ($1, $2, $3) ON CONFLICT (object_id, name) "
        "DO UPDATE SET time_ms = EXCLUDED.time_ms",
        3, {PG_BYTEA, PG_BYTEA, PG_INT8}},
    [PG_ST_ALARM_DELETE] = {
        "torpor_alarm_delete",
        "DELETE FROM torpor_alarms WHERE object_id = $1 AND name = $2",
        2, {PG_BYTEA, PG_BYTEA}},
    [PG_ST_KV_GET] = {
        "torpor_kv_get",
        "SELECT value FROM torpor_kv WHERE object_id = $1 AND key = $2",
        2, {PG_BYTEA, PG_BYTEA}},
    /* LIMIT NULL is no limit. */
    [PG_ST_LIST_ASC] = {
        "torpor_list_asc",
        PG_KV_COLS "AND key >= $2 ORDER BY key LIMIT $3",
        3, {PG_BYTEA, PG_BYTEA, PG_INT8}},
    [PG_ST_LIST_ASC_END] = {
        "torpor_list_asc_end",
        PG_KV_COLS "AND key >= $2 AND key < $3 ORDER BY key LIMIT $4",
        4, {PG_BYTEA, PG_BYTEA, PG_BYTEA, PG_INT8}},
    [PG_ST_LIST_DESC] = {
        "torpor_list_desc",
        PG_KV_COLS "AND key >= $2 ORDER BY key DESC LIMIT $3",
        3, {PG_BYTEA, PG_BYTEA, PG_INT8}},
    [PG_ST_LIST_DESC_END] = {
        "torpor_list_desc_end",
        PG_KV_COLS "AND key >= $2 AND key < $3 ORDER BY key DESC LIMIT $4",
        4, {PG_BYTEA, PG_BYTEA, PG_BYTEA, PG_INT8}},
    [PG_ST_ALARMS] = {
        "torpor_alarms",
        "SELECT name, time_ms FROM torpor_alarms WHERE object_id = $1 "
        "ORDER BY name",
        1, {PG_BYTEA}},
    [PG_ST_ALARMS_DUE] = {
        "torpor_alarms_due",
        "SELECT a.object_id, o.class, o.name, a.name, a.time_ms "
        "FROM torpor_alarms a JOIN torpor_objects o ON o.id = a.object_id "
        "WHERE a.time_ms <= $1 "
        "ORDER BY a.time_ms, a.object_id, a.name LIMIT $2",
        2, {PG_INT8, PG_INT8}},
    [PG_ST_OBJECTS] = {
        "torpor_objects",
        "SELECT id, class, name FROM torpor_objects WHERE id > $1 "
        "ORDER BY id LIMIT $2",
        2, {PG_BYTEA, PG_INT8}},
    [PG_ST_DROP_KV] = {
        "torpor_drop_kv",
        "DELETE FROM torpor_kv WHERE object_id = $1",
        1, {PG_BYTEA}},
    [PG_ST_DROP_ALARMS] = {
        "torpor_drop_alarms",
        "DELETE FROM torpor_alarms WHERE object_id = $1",
        1, {PG_BYTEA}},
    [PG_ST_DROP_OBJECT] = {
        "torpor_drop_object",
        "DELETE FROM torpor_objects WHERE id = $1",
        1, {PG_BYTEA}},
};
/* clang-format on */

#define PG_ALIGN(n)                                                            \
    (((n) + _Alignof(max_align_t) - 1) & ~(_Alignof(max_align_t) - 1))

/*
 * pg_op_new makes an op with room for n_stmts statements, their results
 * if keep_results, the object's copy and bytes more, all in one block.
 * *cur is where the parameter bytes go.
 */
static torpor_err
pg_op_new(uint8_t kind, const torpor_storage_object *object, size_t n_stmts,
          bool keep_results, size_t bytes, struct pg_op **out, char **cur)
{
    size_t class_len = object != NULL ? strlen(object->class_name) + 1 : 0;
    size_t name_len = object != NULL ? object->name.len : 0;
    size_t per = sizeof(struct pg_stmt) + sizeof(PGresult *);
    size_t off_stmts = PG_ALIGN(sizeof(struct pg_op));
    size_t off_res;
    size_t off_bytes;
    struct pg_op *op;
    char *base;

    *out = NULL;
    if (n_stmts > UINT32_MAX || n_stmts > (SIZE_MAX / 4) / per
        || bytes > SIZE_MAX / 4 || name_len > SIZE_MAX / 4) {
        return TORPOR_ENOMEM;
    }
    off_res = PG_ALIGN(off_stmts + n_stmts * sizeof(struct pg_stmt));
    off_bytes = off_res + (keep_results ? n_stmts * sizeof(PGresult *) : 0);
    base = calloc(1, off_bytes + bytes + class_len + name_len + 1);
    if (base == NULL) {
        return TORPOR_ENOMEM;
    }
    op = (struct pg_op *)(void *)base;
    op->kind = kind;
    op->bytes = bytes;
    op->n_stmts = (uint32_t)n_stmts;
    op->stmts = (struct pg_stmt *)(void *)(base + off_stmts);
    op->res = keep_results ? (PGresult **)(void *)(base + off_res) : NULL;
    *cur = base + off_bytes;
    if (object != NULL) {
        char *p = base + off_bytes + bytes;

        op->has_object = true;
        memcpy(op->object.id, object->id, sizeof(op->object.id));
        memcpy(p, object->class_name, class_len);
        op->object.class_name = p;
        if (name_len > 0) {
            memcpy(p + class_len, object->name.data, name_len);
        }
        op->object.name.data = p + class_len;
        op->object.name.len = name_len;
    }
    *out = op;
    return TORPOR_OK;
}

/*
 * pg_param sets parameter i of s to len bytes copied at *cur.  A
 * zero-length value still gets a non-NULL pointer: NULL would be SQL NULL.
 */
static void
pg_param(struct pg_stmt *s, int i, char **cur, const void *data, size_t len)
{
    s->values[i] = *cur;
    s->lengths[i] = (int)len;
    if (len > 0) {
        memcpy(*cur, data, len);
        *cur += len;
    }
}

/* pg_param_id points parameter 0 at the op's object id. */
static void
pg_param_id(struct pg_op *op, struct pg_stmt *s, uint8_t id)
{
    s->id = id;
    s->nparams = (uint8_t)pg_stmt_defs[id].nparams;
    s->values[0] = (const char *)op->object.id;
    s->lengths[0] = (int)sizeof(op->object.id);
}

/* pg_param_i64 writes v, capped at INT64_MAX, as a binary bigint. */
static void
pg_param_i64(struct pg_stmt *s, int i, char **cur, uint64_t v)
{
    uint8_t *p = (uint8_t *)*cur;

    if (v > (uint64_t)INT64_MAX) {
        v = (uint64_t)INT64_MAX;
    }
    for (int k = 7; k >= 0; k--) {
        p[k] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
    s->values[i] = *cur;
    s->lengths[i] = 8;
    *cur += 8;
}

/* pg_param_limit: 0 means no limit, which LIMIT spells NULL. */
static void
pg_param_limit(struct pg_stmt *s, int i, char **cur, uint32_t limit)
{
    if (limit == 0) {
        s->values[i] = NULL;
        s->lengths[i] = 0;
    } else {
        pg_param_i64(s, i, cur, limit);
    }
}

/* pg_too_long: libpq takes lengths as int. */
static bool
pg_too_long(size_t len)
{
    return len > (size_t)INT_MAX;
}

torpor_err
pg_op_get(const torpor_storage_object *object, const torpor_bytes *keys,
          size_t n, struct pg_op **out)
{
    size_t bytes = 0;
    struct pg_op *op;
    torpor_err err;
    char *cur;

    for (size_t i = 0; i < n; i++) {
        if (pg_too_long(keys[i].len)) {
            return TORPOR_EINVAL;
        }
        bytes += keys[i].len;
    }
    err = pg_op_new(PG_OP_GET, object, n, true, bytes, &op, &cur);
    if (err != TORPOR_OK) {
        return err;
    }
    for (size_t i = 0; i < n; i++) {
        pg_param_id(op, &op->stmts[i], PG_ST_KV_GET);
        pg_param(&op->stmts[i], 1, &cur, keys[i].data, keys[i].len);
    }
    *out = op;
    return TORPOR_OK;
}

/* pg_bytes_cmp orders byte strings as bytea does: memcmp, then length. */
static int
pg_bytes_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n > 0 ? memcmp(a, b, n) : 0;

    if (c != 0 || alen == blen) {
        return c;
    }
    return alen < blen ? -1 : 1;
}

/*
 * pg_successor finds the least key greater than every key that starts
 * with prefix: drop trailing 0xff bytes and add one to the last byte left.
 * Returns the length of that key, a prefix of prefix plus one, or 0 when
 * there is none (prefix is empty or all 0xff), so the range is unbounded
 * above.  The incremented byte is written to *last.
 */
static size_t
pg_successor(const torpor_bytes *prefix, uint8_t *last)
{
    const uint8_t *p = prefix->data;
    size_t n = prefix->len;

    while (n > 0 && p[n - 1] == 0xff) {
        n--;
    }
    if (n > 0) {
        *last = (uint8_t)(p[n - 1] + 1);
    }
    return n;
}

torpor_err
pg_op_list(const torpor_storage_object *object, const torpor_range *range,
           struct pg_op **out)
{
    torpor_bytes lo = range->prefix;
    torpor_bytes hi = {NULL, 0};
    uint8_t succ_last = 0;
    size_t succ_len = pg_successor(&range->prefix, &succ_last);
    struct pg_op *op;
    struct pg_stmt *s;
    torpor_err err;
    char *cur;

    if (pg_too_long(range->prefix.len) || pg_too_long(range->start.len)
        || pg_too_long(range->end.len)) {
        return TORPOR_EINVAL;
    }
    err =
        pg_op_new(PG_OP_LIST, object, 1, true,
                  3 * range->prefix.len + range->start.len + range->end.len + 8,
                  &op, &cur);
    if (err != TORPOR_OK) {
        return err;
    }
    /* Each bound is the tighter of the prefix's and the range's own. */
    if (range->has_start
        && pg_bytes_cmp(range->start.data, range->start.len, lo.data, lo.len)
               > 0) {
        lo = range->start;
    }
    if (succ_len > 0) {
        memcpy(cur, range->prefix.data, succ_len - 1);
        cur[succ_len - 1] = (char)succ_last;
        hi.data = cur;
        hi.len = succ_len;
        cur += succ_len;
    }
    if (range->has_end
        && (hi.data == NULL
            || pg_bytes_cmp(range->end.data, range->end.len, hi.data, hi.len)
                   < 0)) {
        hi = range->end;
        if (hi.data == NULL) {
            hi.data = "";
        }
    }
    s = &op->stmts[0];
    if (hi.data == NULL) {
        pg_param_id(op, s, range->reverse ? PG_ST_LIST_DESC : PG_ST_LIST_ASC);
        pg_param(s, 1, &cur, lo.data, lo.len);
        pg_param_limit(s, 2, &cur, range->limit);
    } else {
        pg_param_id(op, s,
                    range->reverse ? PG_ST_LIST_DESC_END : PG_ST_LIST_ASC_END);
        pg_param(s, 1, &cur, lo.data, lo.len);
        pg_param(s, 2, &cur, hi.data, hi.len);
        pg_param_limit(s, 3, &cur, range->limit);
    }
    *out = op;
    return TORPOR_OK;
}

/*
 * Missing: commits are not fenced by an ownership epoch; a node that lost its lease on an object can still write it.
 */
torpor_err
pg_op_commit(const torpor_storage_object *object, const torpor_write *writes,
             size_t n, struct pg_op **out)
{
    size_t bytes = strlen(object->class_name) + object->name.len;
    bool sets = false;
    size_t n_stmts;
    struct pg_op *op;
    torpor_err err;
    char *cur;
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        const torpor_write *w = &writes[i];

        if (w->kind < TORPOR_WRITE_PUT || w->kind > TORPOR_WRITE_ALARM_DELETE
            || pg_too_long(w->key.len) || pg_too_long(w->value.len)) {
            return TORPOR_EINVAL;
        }
        sets = sets || w->kind == TORPOR_WRITE_PUT
               || w->kind == TORPOR_WRITE_ALARM_SET;
        bytes +=
            w->key.len + 8 + (w->kind == TORPOR_WRITE_PUT ? w->value.len : 0);
    }
    /*
     * A batch that adds something records the object first, so objects
     * and alarms_due can name it; one that only removes may leave it
     * empty, and then tidies its row away at the end.
     */
    n_stmts = n + (n > 0 ? 1 : 0);
    err = pg_op_new(PG_OP_COMMIT, object, n_stmts, false, bytes, &op, &cur);
    if (err != TORPOR_OK) {
        return err;
    }
    op->is_write = true;
    if (sets) {
        struct pg_stmt *s = &op->stmts[k++];

        pg_param_id(op, s, PG_ST_OBJECT_UPSERT);
        pg_param(s, 1, &cur, object->class_name, strlen(object->class_name));
        pg_param(s, 2, &cur, object->name.data, object->name.len);
    }
    for (size_t i = 0; i < n; i++) {
        const torpor_write *w = &writes[i];
        struct pg_stmt *s = &op->stmts[k++];

        switch (w->kind) {
        case TORPOR_WRITE_PUT:
            pg_param_id(op, s, PG_ST_KV_PUT);
            pg_param(s, 2, &cur, w->value.data, w->value.len);
            break;
        case TORPOR_WRITE_DELETE:
            pg_param_id(op, s, PG_ST_KV_DELETE);
            break;
        case TORPOR_WRITE_ALARM_SET:
            pg_param_id(op, s, PG_ST_ALARM_SET);
            pg_param_i64(s, 2, &cur, w->time_ms);
            break;
        default:
            pg_param_id(op, s, PG_ST_ALARM_DELETE);
            break;
        }
        pg_param(s, 1, &cur, w->key.data, w->key.len);
    }
    if (!sets && n > 0) {
        pg_param_id(op, &op->stmts[k++], PG_ST_OBJECT_TIDY);
    }
    op->n_stmts = (uint32_t)k;
    *out = op;
    return TORPOR_OK;
}

torpor_err
pg_op_alarms(const torpor_storage_object *object, struct pg_op **out)
{
    struct pg_op *op;
    torpor_err err;
    char *cur;

    err = pg_op_new(PG_OP_ALARMS, object, 1, true, 0, &op, &cur);
    if (err == TORPOR_OK) {
        pg_param_id(op, &op->stmts[0], PG_ST_ALARMS);
        *out = op;
    }
    return err;
}

torpor_err
pg_op_alarms_due(uint64_t before_ms, uint32_t limit, struct pg_op **out)
{
    struct pg_op *op;
    struct pg_stmt *s;
    torpor_err err;
    char *cur;

    err = pg_op_new(PG_OP_ALARMS_DUE, NULL, 1, true, 16, &op, &cur);
    if (err != TORPOR_OK) {
        return err;
    }
    s = &op->stmts[0];
    s->id = PG_ST_ALARMS_DUE;
    s->nparams = 2;
    pg_param_i64(s, 0, &cur, before_ms);
    pg_param_limit(s, 1, &cur, limit);
    *out = op;
    return TORPOR_OK;
}

torpor_err
pg_op_objects(const uint8_t *after, uint32_t limit, struct pg_op **out)
{
    struct pg_op *op;
    struct pg_stmt *s;
    torpor_err err;
    char *cur;

    err = pg_op_new(PG_OP_OBJECTS, NULL, 1, true, 16 + 8, &op, &cur);
    if (err != TORPOR_OK) {
        return err;
    }
    s = &op->stmts[0];
    s->id = PG_ST_OBJECTS;
    s->nparams = 2;
    /* Every id is 16 bytes, so the empty bytea sorts before all of them. */
    pg_param(s, 0, &cur, after, after != NULL ? 16 : 0);
    pg_param_limit(s, 1, &cur, limit);
    *out = op;
    return TORPOR_OK;
}

torpor_err
pg_op_drop(const torpor_storage_object *object, struct pg_op **out)
{
    static const uint8_t ids[] = {PG_ST_DROP_KV, PG_ST_DROP_ALARMS,
                                  PG_ST_DROP_OBJECT};
    struct pg_op *op;
    torpor_err err;
    char *cur;

    err = pg_op_new(PG_OP_DROP, object, 3, false, 0, &op, &cur);
    if (err != TORPOR_OK) {
        return err;
    }
    op->is_write = true;
    for (size_t i = 0; i < 3; i++) {
        pg_param_id(op, &op->stmts[i], ids[i]);
    }
    *out = op;
    return TORPOR_OK;
}

torpor_err
pg_op_prepare(struct pg_op **out)
{
    struct pg_op *op;
    torpor_err err;
    char *cur;

    /* First the session's statement_timeout, then every statement. */
    err = pg_op_new(PG_OP_PREPARE, NULL, PG_ST_COUNT + 1, false, 0, &op, &cur);
    if (err != TORPOR_OK) {
        return err;
    }
    op->stmts[0].id = PG_ST_SESSION;
    for (size_t i = 0; i < PG_ST_COUNT; i++) {
        op->stmts[i + 1].id = (uint8_t)i;
    }
    *out = op;
    return TORPOR_OK;
}
