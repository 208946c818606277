/*
 * core/errors.c: torpor_err names and the diagnostics collector.
 */
#include "build-config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/log.h"

const char *
tpr_strerror(torpor_err err)
{
    switch (err) {
    case TORPOR_OK:
        return "success";
    case TORPOR_EINVAL:
        return "invalid argument";
    case TORPOR_ENOMEM:
        return "out of memory";
    case TORPOR_ENOENT:
        return "not found";
    case TORPOR_ENOKEY:
        return "unknown key";
    case TORPOR_EEXIST:
        return "already exists";
    case TORPOR_ELIMIT:
        return "limit exceeded";
    case TORPOR_EAGAIN:
        return "try again";
    case TORPOR_EDECLINED:
        return "declined";
    case TORPOR_EIO:
        return "input/output error";
    case TORPOR_EABI:
        return "incompatible plugin ABI";
    case TORPOR_ECLOSED:
        return "closed";
    case TORPOR_EBUSY:
        return "busy";
    case TORPOR_EREFUSED:
        return "refused";
    case TORPOR_ESTATE:
        return "wrong state";
    case TORPOR_EUNSUPPORTED:
        return "not supported";
    }
    return "unknown error";
}

void
tpr_diag_add(struct tpr_diag *d, const char *file, unsigned line,
             const char *fmt, ...)
{
    char msg[1024];
    char head[512] = "";
    va_list ap;

    d->count++;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (file != NULL && line > 0) {
        snprintf(head, sizeof(head), "%s:%u: ", file, line);
    } else if (file != NULL) {
        snprintf(head, sizeof(head), "%s: ", file);
    }
    size_t add = strlen(head) + strlen(msg) + 1;
    char *text = realloc(d->text, d->len + add + 1);
    if (text == NULL) {
        return;
    }
    d->text = text;
    snprintf(d->text + d->len, add + 1, "%s%s\n", head, msg);
    d->len += add;
}

void
tpr_diag_free(struct tpr_diag *d)
{
    free(d->text);
    d->text = NULL;
    d->len = 0;
    d->count = 0;
}

void
tpr_diag_log(const struct tpr_diag *d, torpor_log_level level,
             const char *component)
{
    const char *p = d->text;

    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, '\n');
        int len = end ? (int)(end - p) : (int)strlen(p);
        tpr_log(level, component, NULL, "%.*s", len, p);
        p = end ? end + 1 : NULL;
    }
}
