/*
 * The [storage.postgres] section of the configuration.  Keys arrive one by
 * one through the configure hook, on the main thread, before start.
 *
 * conninfo =
 *     A libpq connection string, "host=/run/postgresql dbname=torpor" or
 *     "postgresql://torpor@db.example/torpor".  Empty (the default) lets
 *     libpq take everything from its environment and service file: PGHOST,
 *     PGPORT, PGDATABASE, PGUSER, PGSERVICE, ~/.pgpass.  A password given
 *     here is never logged: log lines name the server by host, port and
 *     database only.  Prefer ~/.pgpass or PGPASSFILE for the password.
 *     Use a socket path or a numeric hostaddr: a host name is resolved by
 *     libpq with a blocking lookup on the loop that connects.
 *
 * pool_size = 2
 *     Connections per event loop, from 1 to 64.  Each object always uses
 *     the same one, chosen by its id, so more connections spread objects,
 *     not the operations of one object.
 *
 * op_timeout_ms = 5000
 *     Longest time from queueing an operation to its completion.  One
 *     waiting for a connection fails with EIO when it expires; when one
 *     already sent expires, its connection is taken as hung: it is closed,
 *     everything sent on it fails with EIO, and it reconnects.
 *
 * connect_timeout_ms = 5000
 *     Longest time one connection attempt may take, including the one at
 *     start that applies the schema migrations.
 *
 * reconnect_min_ms = 100
 * reconnect_max_ms = 5000
 *     Wait before the first retry after a lost connection or a failed
 *     attempt, doubled after each further failure up to the maximum.  Each
 *     wait is drawn at random from its upper half, so that the nodes of a
 *     cluster do not all retry in step after a server restart.  min must
 *     not exceed max.
 */
#include "pg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
pg_config_why(char *why, size_t why_size, const char *text)
{
    if (why != NULL && why_size > 0) {
        snprintf(why, why_size, "%s", text);
    }
}

/*
 * pg_config_uint parses a decimal integer in [min, max].  strtoull alone
 * accepts a sign and leading blanks, so the first character is checked.
 */
static torpor_err
pg_config_uint(const char *value, uint64_t min, uint64_t max, uint64_t *out,
               char *why, size_t why_size)
{
    unsigned long long v;
    char *end;

    if (value[0] < '0' || value[0] > '9') {
        goto bad;
    }
    errno = 0;
    v = strtoull(value, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        goto bad;
    }
    *out = v;
    return TORPOR_OK;

bad:
    if (why != NULL && why_size > 0) {
        snprintf(why, why_size, "expected an integer from %llu to %llu",
                 (unsigned long long)min, (unsigned long long)max);
    }
    return TORPOR_EINVAL;
}

/*
 * pg_config_conninfo checks value with libpq's own parser.  The parser's
 * message is not passed on: it may quote a fragment of the string, which
 * could be a password.
 */
static torpor_err
pg_config_conninfo(struct pg_config *cfg, const char *value, char *why,
                   size_t why_size)
{
    char *copy;

    if (value[0] != '\0') {
        char *errmsg = NULL;
        PQconninfoOption *opts = PQconninfoParse(value, &errmsg);

        if (opts == NULL) {
            if (errmsg == NULL) {
                return TORPOR_ENOMEM;
            }
            PQfreemem(errmsg);
            pg_config_why(why, why_size, "not a valid libpq connection string");
            return TORPOR_EINVAL;
        }
        PQconninfoFree(opts);
    }
    copy = strdup(value);
    if (copy == NULL) {
        return TORPOR_ENOMEM;
    }
    free(cfg->conninfo);
    cfg->conninfo = copy;
    return TORPOR_OK;
}

torpor_err
pg_config_defaults(struct pg_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->conninfo = strdup("");
    if (cfg->conninfo == NULL) {
        return TORPOR_ENOMEM;
    }
    cfg->pool_size = 2;
    cfg->op_timeout_ms = 5000;
    cfg->connect_timeout_ms = 5000;
    cfg->reconnect_min_ms = 100;
    cfg->reconnect_max_ms = 5000;
    return TORPOR_OK;
}

torpor_err
pg_config_set(struct pg_config *cfg, const char *key, const char *value,
              char *why, size_t why_size)
{
    uint64_t v;
    torpor_err err;

    if (strcmp(key, "conninfo") == 0) {
        return pg_config_conninfo(cfg, value, why, why_size);
    }
    if (strcmp(key, "pool_size") == 0) {
        err = pg_config_uint(value, 1, 64, &v, why, why_size);
        if (err == TORPOR_OK) {
            cfg->pool_size = (uint32_t)v;
        }
        return err;
    }
    if (strcmp(key, "op_timeout_ms") == 0) {
        return pg_config_uint(value, 1, 3600000, &cfg->op_timeout_ms, why,
                              why_size);
    }
    if (strcmp(key, "connect_timeout_ms") == 0) {
        return pg_config_uint(value, 1, 3600000, &cfg->connect_timeout_ms, why,
                              why_size);
    }
    if (strcmp(key, "reconnect_min_ms") == 0) {
        return pg_config_uint(value, 1, 3600000, &cfg->reconnect_min_ms, why,
                              why_size);
    }
    if (strcmp(key, "reconnect_max_ms") == 0) {
        return pg_config_uint(value, 1, 3600000, &cfg->reconnect_max_ms, why,
                              why_size);
    }
    return TORPOR_ENOKEY;
}

torpor_err
pg_config_check(const struct pg_config *cfg, char *why, size_t why_size)
{
    if (cfg->reconnect_min_ms > cfg->reconnect_max_ms) {
        pg_config_why(why, why_size,
                      "reconnect_min_ms exceeds reconnect_max_ms");
        return TORPOR_EINVAL;
    }
    return TORPOR_OK;
}

void
pg_config_free(struct pg_config *cfg)
{
    free(cfg->conninfo);
    cfg->conninfo = NULL;
}
