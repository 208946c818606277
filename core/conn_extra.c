/*
 * core/conn_extra.c: tags and attachments of connections, and listing an
 * object's connections by tag.
 *
 * Both live in a conn_extra made on first use, outside the class's
 * instance, so they survive hibernation and a bare connection pays only a
 * pointer for them.
 */
#include "build-config.h"

#include <stdlib.h>
#include <string.h>

#include "core/object_internal.h"

static struct conn_extra *
conn_extra(torpor_conn *conn)
{
    if (conn->extra == NULL) {
        conn->extra = calloc(1, sizeof(*conn->extra));
    }
    return conn->extra;
}

void
tpr_conn_extra_free(torpor_conn *conn)
{
    if (conn->extra != NULL) {
        free(conn->extra->tags);
        free(conn->extra->attachment);
        free(conn->extra);
        conn->extra = NULL;
    }
}

/* utf8_valid: RFC 3629, no overlongs, no surrogates. */
static bool
utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;

    while (i < n) {
        uint8_t c = p[i];
        size_t more;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            more = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            more = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            more = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        for (size_t k = 1; k <= more; k++) {
            if (i + k >= n || (p[i + k] & 0xc0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        i += more + 1;
    }
    return true;
}

static torpor_err
tags_store(torpor_conn *conn, const torpor_bytes *tags, size_t n)
{
    size_t total = 0;

    if (n > TORPOR_TAGS_MAX) {
        return TORPOR_ELIMIT;
    }
    for (size_t i = 0; i < n; i++) {
        if (tags[i].len > TORPOR_TAG_MAX_BYTES) {
            return TORPOR_ELIMIT;
        }
        if ((tags[i].len > 0 && tags[i].data == NULL)
            || !utf8_valid(tags[i].data, tags[i].len)) {
            return TORPOR_EINVAL;
        }
        total += tags[i].len;
    }
    struct conn_extra *x = conn_extra(conn);
    uint8_t *blob = malloc(total + 1);
    if (x == NULL || blob == NULL) {
        free(blob);
        return TORPOR_ENOMEM;
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        if (tags[i].len > 0) {
            memcpy(blob + off, tags[i].data, tags[i].len);
        }
        off += tags[i].len;
        x->tag_end[i] = (uint16_t)off;
    }
    free(x->tags);
    x->tags = blob;
    x->ntags = (uint8_t)n;
    return TORPOR_OK;
}

torpor_err
tpr_conn_set_tags(torpor_conn *conn, const torpor_bytes *tags, size_t n)
{
    if (!conn->accepting) {
        return TORPOR_ESTATE;
    }
    return tags_store(conn, tags, n);
}

static torpor_bytes
tag_at(const struct conn_extra *x, size_t i)
{
    size_t start = i == 0 ? 0 : x->tag_end[i - 1];

    return (torpor_bytes){.data = x->tags + start,
                          .len = x->tag_end[i] - start};
}

size_t
tpr_conn_tags(const torpor_conn *conn, torpor_bytes *out, size_t max)
{
    const struct conn_extra *x = conn->extra;
    size_t n = x != NULL ? x->ntags : 0;

    for (size_t i = 0; i < n && i < max; i++) {
        out[i] = tag_at(x, i);
    }
    return n;
}

bool
tpr_conn_has_tag(const torpor_conn *conn, torpor_bytes tag)
{
    const struct conn_extra *x = conn->extra;

    for (size_t i = 0; x != NULL && i < x->ntags; i++) {
        torpor_bytes t = tag_at(x, i);
        if (t.len == tag.len
            && (t.len == 0 || memcmp(t.data, tag.data, t.len) == 0)) {
            return true;
        }
    }
    return false;
}

static int
hex_value(uint8_t c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* query_decode percent-decodes [p, p + n) into out; -1 if malformed. */
static long
query_decode(const uint8_t *p, size_t n, uint8_t *out)
{
    size_t m = 0;

    for (size_t i = 0; i < n; i++) {
        if (p[i] == '%') {
            if (i + 2 >= n) {
                return -1;
            }
            int hi = hex_value(p[i + 1]), lo = hex_value(p[i + 2]);
            if (hi < 0 || lo < 0) {
                return -1;
            }
            out[m++] = (uint8_t)(hi << 4 | lo);
            i += 2;
        } else {
            out[m++] = p[i] == '+' ? ' ' : p[i];
        }
    }
    return (long)m;
}

torpor_err
tpr_conn_tags_from_query(torpor_conn *conn, torpor_bytes query)
{
    torpor_bytes tags[TORPOR_TAGS_MAX];
    uint8_t *buf = malloc(query.len + 1);
    const uint8_t *p = query.data;
    size_t n = 0, used = 0, i = 0;
    torpor_err err = TORPOR_OK;

    if (buf == NULL) {
        return TORPOR_ENOMEM;
    }
    while (err == TORPOR_OK && i < query.len) {
        size_t end = i;
        while (end < query.len && p[end] != '&') {
            end++;
        }
        if (end - i > 4 && memcmp(p + i, "tag=", 4) == 0) {
            long len = query_decode(p + i + 4, end - i - 4, buf + used);
            if (len < 0) {
                err = TORPOR_EINVAL;
            } else if (n == TORPOR_TAGS_MAX) {
                err = TORPOR_ELIMIT;
            } else {
                tags[n++] = (torpor_bytes){.data = buf + used,
                                           .len = (size_t)len};
                used += (size_t)len;
            }
        }
        i = end + 1;
    }
    if (err == TORPOR_OK && n > 0) {
        err = tags_store(conn, tags, n);
    }
    free(buf);
    return err;
}

torpor_err
tpr_conn_set_attachment(torpor_conn *conn, const void *data, size_t len)
{
    if (len > TORPOR_ATTACHMENT_MAX_BYTES) {
        return TORPOR_ELIMIT;
    }
    if (len > 0 && data == NULL) {
        return TORPOR_EINVAL;
    }
    if (len == 0) {
        if (conn->extra != NULL) {
            free(conn->extra->attachment);
            conn->extra->attachment = NULL;
            conn->extra->attachment_len = 0;
        }
        return TORPOR_OK;
    }
    struct conn_extra *x = conn_extra(conn);
    uint8_t *copy = malloc(len);
    if (x == NULL || copy == NULL) {
        free(copy);
        return TORPOR_ENOMEM;
    }
    memcpy(copy, data, len);
    free(x->attachment);
    x->attachment = copy;
    x->attachment_len = (uint32_t)len;
    return TORPOR_OK;
}

torpor_bytes
tpr_conn_attachment(const torpor_conn *conn)
{
    if (conn->extra == NULL || conn->extra->attachment == NULL) {
        return (torpor_bytes){.data = NULL, .len = 0};
    }
    return (torpor_bytes){.data = conn->extra->attachment,
                          .len = conn->extra->attachment_len};
}

size_t
tpr_object_conns(torpor_object *obj, const torpor_bytes *tag,
                 torpor_conn **out, size_t max)
{
    size_t n = 0;

    for (torpor_conn *c = obj->conns; c != NULL; c = tpr_conn_next(c)) {
        if (c->state != CONN_OPEN || !c->opened
            || (tag != NULL && !tpr_conn_has_tag(c, *tag))) {
            continue;
        }
        if (n < max) {
            out[n] = c;
        }
        n++;
    }
    return n;
}

torpor_err
tpr_object_broadcast_tag(torpor_object *obj, torpor_bytes tag,
                         torpor_msg_kind kind, const void *data, size_t len,
                         const torpor_conn *except)
{
    return tpr_output_broadcast_to(obj, kind, data, len, except, &tag);
}
