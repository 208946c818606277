/*
 * Results into rows: what each op keeps of its PGresults and how it hands
 * them to its completion.  Rows point into the PGresults, which live until
 * the completion returns, so nothing is copied twice.  libpq ends every
 * value with a NUL byte, binary ones included, which makes a text column
 * usable as a C string in place.
 */
#include "pg.h"

#include <stdlib.h>
#include <string.h>

/* The columns each reading statement returns, to check a result's shape. */
static int
pg_rows_cols(uint8_t id)
{
    switch (id) {
    case PG_ST_KV_GET:
        return 1;
    case PG_ST_LIST_ASC:
    case PG_ST_LIST_ASC_END:
    case PG_ST_LIST_DESC:
    case PG_ST_LIST_DESC_END:
    case PG_ST_ALARMS:
        return 2;
    case PG_ST_OBJECTS:
        return 3;
    case PG_ST_ALARMS_DUE:
        return 5;
    }
    return 0;
}

bool
pg_op_take(struct pg_op *op, PGresult *r)
{
    uint8_t id;

    if (op->cur >= op->n_stmts) {
        op->err = TORPOR_EIO;
        return false;
    }
    id = op->stmts[op->cur].id;
    if (op->res == NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            op->err = TORPOR_EIO;
        }
        return false;
    }
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQnfields(r) != pg_rows_cols(id)
        || PQbinaryTuples(r) != 1 || op->res[op->cur] != NULL) {
        op->err = TORPOR_EIO;
        return false;
    }
    op->res[op->cur] = r;
    return true;
}

/* pg_rows_bytes is column col of row as bytes. */
static torpor_bytes
pg_rows_bytes(const PGresult *r, int row, int col)
{
    torpor_bytes b = {PQgetvalue(r, row, col),
                      (size_t)PQgetlength(r, row, col)};

    return b;
}

/* pg_rows_u64 reads a binary bigint; false if the column is not one. */
static bool
pg_rows_u64(const PGresult *r, int row, int col, uint64_t *out)
{
    const uint8_t *p = (const uint8_t *)PQgetvalue(r, row, col);
    uint64_t v = 0;

    if (PQgetlength(r, row, col) != 8 || PQgetisnull(r, row, col)) {
        return false;
    }
    for (int i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    /* Only another writer could store a negative time; it is long past. */
    *out = v > (uint64_t)INT64_MAX ? 0 : v;
    return true;
}

/* pg_rows_object reads id, class and name from columns col.. of row. */
static bool
pg_rows_object(const PGresult *r, int row, int col, torpor_storage_object *obj)
{
    if (PQgetlength(r, row, col) != (int)sizeof(obj->id)) {
        return false;
    }
    memcpy(obj->id, PQgetvalue(r, row, col), sizeof(obj->id));
    obj->class_name = PQgetvalue(r, row, col + 1);
    obj->name = pg_rows_bytes(r, row, col + 2);
    return true;
}

/* pg_rows_calloc: calloc that gives a valid pointer for zero rows too. */
static void *
pg_rows_calloc(size_t n, size_t size)
{
    return calloc(n > 0 ? n : 1, size);
}

static void
pg_rows_kv(struct pg_op *op)
{
    size_t n =
        op->kind == PG_OP_GET ? op->n_stmts : (size_t)PQntuples(op->res[0]);
    torpor_kv *rows = pg_rows_calloc(n, sizeof(*rows));

    if (rows == NULL) {
        op->cb.rows(op->arg, TORPOR_ENOMEM, NULL, 0);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (op->kind == PG_OP_GET) {
            const struct pg_stmt *s = &op->stmts[i];

            rows[i].key.data = s->values[1];
            rows[i].key.len = (size_t)s->lengths[1];
            rows[i].found = PQntuples(op->res[i]) > 0;
            if (rows[i].found) {
                rows[i].value = pg_rows_bytes(op->res[i], 0, 0);
            }
        } else {
            rows[i].key = pg_rows_bytes(op->res[0], (int)i, 0);
            rows[i].value = pg_rows_bytes(op->res[0], (int)i, 1);
            rows[i].found = true;
        }
    }
    op->cb.rows(op->arg, TORPOR_OK, rows, n);
    free(rows);
}

static void
pg_rows_alarms(struct pg_op *op)
{
    const PGresult *r = op->res[0];
    size_t n = (size_t)PQntuples(r);
    torpor_alarm *alarms = pg_rows_calloc(n, sizeof(*alarms));
    bool due = op->kind == PG_OP_ALARMS_DUE;
    int col = due ? 3 : 0;

    if (alarms == NULL) {
        op->cb.alarms(op->arg, TORPOR_ENOMEM, NULL, 0);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        torpor_alarm *a = &alarms[i];

        if (!due) {
            a->object = op->object;
        } else if (!pg_rows_object(r, (int)i, 0, &a->object)) {
            goto bad;
        }
        a->name = pg_rows_bytes(r, (int)i, col);
        if (!pg_rows_u64(r, (int)i, col + 1, &a->time_ms)) {
            goto bad;
        }
    }
    op->cb.alarms(op->arg, TORPOR_OK, alarms, n);
    free(alarms);
    return;

bad:
    free(alarms);
    op->cb.alarms(op->arg, TORPOR_EIO, NULL, 0);
}

static void
pg_rows_objects(struct pg_op *op)
{
    const PGresult *r = op->res[0];
    size_t n = (size_t)PQntuples(r);
    torpor_storage_object *objs = pg_rows_calloc(n, sizeof(*objs));

    if (objs == NULL) {
        op->cb.objects(op->arg, TORPOR_ENOMEM, NULL, 0);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (!pg_rows_object(r, (int)i, 0, &objs[i])) {
            free(objs);
            op->cb.objects(op->arg, TORPOR_EIO, NULL, 0);
            return;
        }
    }
    op->cb.objects(op->arg, TORPOR_OK, objs, n);
    free(objs);
}

/* pg_rows_complete: every result a read needs arrived. */
static bool
pg_rows_complete(const struct pg_op *op)
{
    for (uint32_t i = 0; i < op->n_stmts; i++) {
        if (op->res[i] == NULL) {
            return false;
        }
    }
    return true;
}

void
pg_op_deliver(struct pg_op *op, torpor_err err)
{
    if (err == TORPOR_OK && op->res != NULL && !pg_rows_complete(op)) {
        err = TORPOR_EIO;
    }
    switch (op->kind) {
    case PG_OP_COMMIT:
    case PG_OP_DROP:
        op->cb.done(op->arg, err);
        break;
    case PG_OP_GET:
    case PG_OP_LIST:
        if (err != TORPOR_OK) {
            op->cb.rows(op->arg, err, NULL, 0);
        } else {
            pg_rows_kv(op);
        }
        break;
    case PG_OP_ALARMS:
    case PG_OP_ALARMS_DUE:
        if (err != TORPOR_OK) {
            op->cb.alarms(op->arg, err, NULL, 0);
        } else {
            pg_rows_alarms(op);
        }
        break;
    case PG_OP_OBJECTS:
        if (err != TORPOR_OK) {
            op->cb.objects(op->arg, err, NULL, 0);
        } else {
            pg_rows_objects(op);
        }
        break;
    default:
        break;
    }
    pg_op_free(op);
}

void
pg_op_free(struct pg_op *op)
{
    if (op == NULL) {
        return;
    }
    if (op->res != NULL) {
        for (uint32_t i = 0; i < op->n_stmts; i++) {
            PQclear(op->res[i]);
        }
    }
    free(op);
}
