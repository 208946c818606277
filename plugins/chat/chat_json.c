/*
 * chat_json.c: the JSON the chat class sends.  Only output: the class
 * never parses JSON, since clients send plain text.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"

/* json_escaped_len: the length of text inside a JSON string. */
static size_t
json_escaped_len(const unsigned char *p, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        if (p[i] == '"' || p[i] == '\\') {
            n += 2;
        } else if (p[i] < 0x20) {
            n += 6;     /* \u00XX */
        } else {
            n += 1;     /* UTF-8 passes through: text frames are valid */
        }
    }
    return n;
}

static size_t
json_escape(char *out, const unsigned char *p, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        if (p[i] == '"' || p[i] == '\\') {
            out[n++] = '\\';
            out[n++] = (char)p[i];
        } else if (p[i] < 0x20) {
            memcpy(out + n, "\\u00", 4);
            out[n + 4] = hex[p[i] >> 4];
            out[n + 5] = hex[p[i] & 15];
            n += 6;
        } else {
            out[n++] = (char)p[i];
        }
    }
    return n;
}

char *
chat_json_event(const char *type, uint64_t conn, const uint64_t *seq,
                int history, const torpor_bytes *tags, size_t ntags,
                const void *text, size_t text_len, size_t *out_len)
{
    char head[160];
    int n = snprintf(head, sizeof(head), "{\"type\":\"%s\",\"conn\":%" PRIu64,
                     type, conn);
    if (seq != NULL) {
        n += snprintf(head + n, sizeof(head) - (size_t)n, ",\"seq\":%" PRIu64,
                      *seq);
    }
    if (history) {
        n += snprintf(head + n, sizeof(head) - (size_t)n, ",\"history\":true");
    }
    size_t body = text != NULL ? json_escaped_len(text, text_len) : 0;
    /* ,"tags":[ ] and per tag "..", */
    size_t tags_len = tags != NULL ? 10 : 0;
    for (size_t i = 0; tags != NULL && i < ntags; i++) {
        tags_len += 3 + json_escaped_len(tags[i].data, tags[i].len);
    }
    /* head, tags, then ,"text":"..." if any, then } and a NUL */
    size_t total = (size_t)n + tags_len + (text != NULL ? 10 + body : 0) + 2;
    char *out = malloc(total);
    if (out == NULL) {
        return NULL;
    }
    memcpy(out, head, (size_t)n);
    size_t len = (size_t)n;
    if (tags != NULL) {
        memcpy(out + len, ",\"tags\":[", 9);
        len += 9;
        for (size_t i = 0; i < ntags; i++) {
            out[len++] = '"';
            len += json_escape(out + len, tags[i].data, tags[i].len);
            out[len++] = '"';
            if (i + 1 < ntags) {
                out[len++] = ',';
            }
        }
        out[len++] = ']';
    }
    if (text != NULL) {
        memcpy(out + len, ",\"text\":\"", 9);
        len += 9;
        len += json_escape(out + len, text, text_len);
        out[len++] = '"';
    }
    out[len++] = '}';
    out[len] = '\0';
    *out_len = len;
    return out;
}

void
chat_history_key(uint64_t seq, char out[19])
{
    snprintf(out, 19, "h/%016" PRIx64, seq);
}
