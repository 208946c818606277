/*
 * The schema: migrations applied at start, over one blocking connection.
 *
 * Migrations are an ordered list of SQL kept in this file.  Each is applied
 * in a transaction of its own together with its row in
 * torpor_schema_migrations, so a database holds a migration entirely or
 * not at all.  The whole check runs under a session advisory lock: nodes
 * of a cluster that start at once queue on it, and the second finds the
 * work done.  A migration, once released, is never edited: a change is a
 * new version at the end of the list.
 */
#include "pg.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The advisory lock key: "torpor" in ASCII and a 1.  Any application that
 * shares the database must not use it.
 */
#define PG_SCHEMA_LOCK_KEY INT64_C(0x746f72706f720001)

struct pg_migration {
    int version;
    const char *sql;
};

/* clang-format off */
static const struct pg_migration pg_migrations[] = {
    {1,
     "CREATE TABLE torpor_objects ("
     "id bytea PRIMARY KEY, "
     "class text NOT NULL, "
     "name bytea NOT NULL); "
     "CREATE TABLE torpor_kv ("
     "object_id bytea, "
     "key bytea, "
     "value bytea NOT NULL, "
     "PRIMARY KEY (object_id, key)); "
     "CREATE TABLE torpor_alarms ("
     "object_id bytea, "
     "name bytea, "
     "time_ms bigint NOT NULL, "
     "PRIMARY KEY (object_id, name)); "
     "CREATE INDEX torpor_alarms_time_ms ON torpor_alarms (time_ms)"},
};
/* clang-format on */

#define PG_N_MIGRATIONS (sizeof(pg_migrations) / sizeof(pg_migrations[0]))

/*
 * pg_schema_connect opens one blocking-style connection, polling libpq's
 * non-blocking handshake so that connect_timeout_ms holds to the
 * millisecond; libpq's own connect_timeout counts whole seconds.
 */
static torpor_err
pg_schema_connect(struct pg_state *pg, PGconn **out)
{
    static const char *const keys[] = {"dbname", "fallback_application_name",
                                       NULL};
    const char *values[] = {pg->cfg.conninfo, "torpor", NULL};
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    uint64_t deadline = pg->host->now_ms() + pg->cfg.connect_timeout_ms;
    const char *why = NULL;
    char line[512];
    PGconn *pq;

    *out = NULL;
    pq = PQconnectStartParams(keys, values, 1);
    if (pq == NULL) {
        return TORPOR_ENOMEM;
    }
    while (PQstatus(pq) != CONNECTION_BAD && st != PGRES_POLLING_FAILED) {
        struct pollfd p;
        uint64_t now;
        int rc;

        if (st == PGRES_POLLING_OK) {
            PQsetNoticeProcessor(pq, pg_notice, pg);
            *out = pq;
            return TORPOR_OK;
        }
        now = pg->host->now_ms();
        if (now >= deadline) {
            why = "timeout expired";
            break;
        }
        p.fd = PQsocket(pq);
        p.events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
        p.revents = 0;
        rc = poll(&p, 1, (int)(deadline - now));
        if (rc < 0 && errno != EINTR) {
            why = strerror(errno);
            break;
        }
        if (rc > 0) {
            st = PQconnectPoll(pq);
        }
    }
    pg_target_of(pq, pg->target, sizeof(pg->target));
    if (why == NULL) {
        why = pg_one_line(PQerrorMessage(pq), line, sizeof(line));
    }
    PG_LOG(pg, TORPOR_LOG_ERR, "could not connect to PostgreSQL \"%s\": %s",
           pg->target, why);
    PQfinish(pq);
    return TORPOR_EIO;
}

/* pg_schema_exec runs sql; on failure it logs what it was doing. */
static bool
pg_schema_exec(struct pg_state *pg, PGconn *pq, const char *sql,
               const char *what, PGresult **keep)
{
    PGresult *r = PQexec(pq, sql);
    ExecStatusType st = PQresultStatus(r);
    char line[512];

    if (r != NULL && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)) {
        if (keep != NULL) {
            *keep = r;
        } else {
            PQclear(r);
        }
        return true;
    }
    PG_LOG(pg, TORPOR_LOG_ERR, "could not %s on PostgreSQL \"%s\": %s", what,
           pg->target, pg_one_line(PQerrorMessage(pq), line, sizeof(line)));
    PQclear(r);
    return false;
}

/*
 * pg_schema_applied marks in applied[] the known migrations the database
 * already has, and finds the highest version it has at all.
 */
static bool
pg_schema_applied(struct pg_state *pg, PGconn *pq, bool *applied, int *highest)
{
    PGresult *r = NULL;

    if (!pg_schema_exec(pg, pq, "SELECT version FROM torpor_schema_migrations",
                        "read the schema version", &r)) {
        return false;
    }
    *highest = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        int v = atoi(PQgetvalue(r, i, 0));

        if (v > *highest) {
            *highest = v;
        }
        for (size_t m = 0; m < PG_N_MIGRATIONS; m++) {
            if (pg_migrations[m].version == v) {
                applied[m] = true;
            }
        }
    }
    PQclear(r);
    return true;
}

/* pg_schema_apply applies migration m in a transaction of its own. */
static bool
pg_schema_apply(struct pg_state *pg, PGconn *pq, const struct pg_migration *m)
{
    char sql[128];
    char what[64];

    snprintf(what, sizeof(what), "apply schema migration %d", m->version);
    snprintf(sql, sizeof(sql),
             "INSERT INTO torpor_schema_migrations (version) VALUES (%d)",
             m->version);
    if (!pg_schema_exec(pg, pq, "BEGIN", what, NULL)) {
        return false;
    }
    if (pg_schema_exec(pg, pq, m->sql, what, NULL)
        && pg_schema_exec(pg, pq, sql, what, NULL)
        && pg_schema_exec(pg, pq, "COMMIT", what, NULL)) {
        return true;
    }
    PQclear(PQexec(pq, "ROLLBACK"));
    return false;
}

/*
 * pg_schema_run does the work under the lock; the caller releases it.
 * Missing: the statements at start are not bounded by a timeout; a server that accepts the connection and then hangs stalls start.
 */
static bool
pg_schema_run(struct pg_state *pg, PGconn *pq)
{
    bool applied[PG_N_MIGRATIONS] = {false};
    char list[256] = "";
    size_t used = 0;
    int highest = 0;
    int known = pg_migrations[PG_N_MIGRATIONS - 1].version;

    if (!pg_schema_exec(pg, pq,
                        "CREATE TABLE IF NOT EXISTS torpor_schema_migrations ("
                        "version int PRIMARY KEY, "
                        "applied_at timestamptz DEFAULT now())",
                        "create the migrations table", NULL)
        || !pg_schema_applied(pg, pq, applied, &highest)) {
        return false;
    }
    for (size_t m = 0; m < PG_N_MIGRATIONS; m++) {
        if (applied[m]) {
            continue;
        }
        if (!pg_schema_apply(pg, pq, &pg_migrations[m])) {
            return false;
        }
        if (used < sizeof(list)) {
            used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%d",
                                     used > 0 ? ", " : "",
                                     pg_migrations[m].version);
        }
    }
    if (used > 0) {
        PG_LOG(pg, TORPOR_LOG_NOTICE,
               "applied schema migrations %s to PostgreSQL \"%s\"", list,
               pg->target);
    } else {
        PG_LOG(pg, TORPOR_LOG_NOTICE,
               "schema of PostgreSQL \"%s\" is up to date at version %d",
               pg->target, highest);
    }
    if (highest > known) {
        PG_LOG(
            pg, TORPOR_LOG_WARN,
            "schema of PostgreSQL \"%s\" is at version %d, newer than this plugin's %d",
            pg->target, highest, known);
    }
    return true;
}

torpor_err
pg_schema_migrate(struct pg_state *pg)
{
    char sql[96];
    PGconn *pq;
    torpor_err err;
    bool ok;

    err = pg_schema_connect(pg, &pq);
    if (err != TORPOR_OK) {
        return err;
    }
    pg_target_of(pq, pg->target, sizeof(pg->target));
    snprintf(sql, sizeof(sql), "SELECT pg_advisory_lock(%" PRId64 ")",
             PG_SCHEMA_LOCK_KEY);
    if (!pg_schema_exec(pg, pq, sql, "take the schema lock", NULL)) {
        PQfinish(pq);
        return TORPOR_EIO;
    }
    ok = pg_schema_run(pg, pq);
    /* Closing the session releases the lock too; this just says so. */
    snprintf(sql, sizeof(sql), "SELECT pg_advisory_unlock(%" PRId64 ")",
             PG_SCHEMA_LOCK_KEY);
    PQclear(PQexec(pq, sql));
    PQfinish(pq);
    return ok ? TORPOR_OK : TORPOR_EIO;
}
