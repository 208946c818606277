/*
 * Topics of the event stream: a room's class and name, percent-encoded,
 * as "CLASS/NAME:" (docs/nng-protocol.md).
 *
 * Every byte other than A-Z, a-z, 0-9, "-", ".", "_" and "~" becomes "%"
 * and two uppercase hex digits, so neither part holds ":" and the class
 * holds no "/".  A subscriber's prefix "CLASS/" then follows exactly one
 * class and "CLASS/NAME:" exactly one room, whatever bytes names hold.
 */
#include "nngt.h"

static bool
nngt_unreserved(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
           || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
           || c == '~';
}

static size_t
nngt_pct(char *out, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        if (nngt_unreserved(p[i])) {
            out[k++] = (char)p[i];
        } else {
            out[k++] = '%';
            out[k++] = hex[p[i] >> 4];
            out[k++] = hex[p[i] & 15];
        }
    }
    return k;
}

size_t
nngt_topic(char *buf, const char *class_name, size_t class_len,
           const void *name, size_t name_len)
{
    size_t k = nngt_pct(buf, (const uint8_t *)class_name, class_len);

    buf[k++] = '/';
    k += nngt_pct(buf + k, name, name_len);
    buf[k++] = ':';
    return k;
}
