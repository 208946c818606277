/*
 * core/log.h: libtorpor's logging.
 *
 * libtorpor never prints: every line goes to a sink that the daemon
 * installs (stderr by default).  A line reads
 *
 *     2026-03-01T10:00:00.120Z WARN websocket object="relay/lobby" conn=42: text
 *
 * timestamp (UTC), level, component, ids, then the message.
 */
#ifndef TORPOR_CORE_LOG_H
#define TORPOR_CORE_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include <torpor/types.h>

#include "core/export.h"

/* A sink receives one finished line, newline included.  Any thread. */
typedef void (*tpr_log_sink)(void *arg, torpor_log_level level,
                             const char *line, size_t len);

/* tpr_log_set_sink installs sink (NULL: stderr).  Call before threads. */
void tpr_log_set_sink(tpr_log_sink sink, void *arg);

/* tpr_log_set_level changes the threshold; safe from any thread. */
void tpr_log_set_level(torpor_log_level level);
torpor_log_level tpr_log_level(void);

/* tpr_log_enabled: whether a line at level would be written. */
bool tpr_log_enabled(torpor_log_level level);

/*
 * tpr_log writes one line for component.  ids is a ready "key=value ..."
 * string or NULL.  The message is cut at 2 KiB.
 */
TPR_EXPORT void tpr_log(torpor_log_level level, const char *component,
                        const char *ids, const char *fmt, ...)
    TORPOR_PRINTF(4, 5);
void tpr_logv(torpor_log_level level, const char *component, const char *ids,
              const char *fmt, va_list ap) TORPOR_PRINTF(4, 0);

/* tpr_log_level_parse reads "err", "warn", "notice", "info", "debug". */
torpor_err tpr_log_level_parse(const char *text, torpor_log_level *out);
const char *tpr_log_level_name(torpor_log_level level);

/*
 * tpr_log_quote appends name to buf as a double-quoted string, escaping
 * quotes, backslashes and bytes outside printable ASCII, so that a room
 * name chosen by a client can never forge a log line.  Returns the length
 * the quoted form needs (snprintf-style).
 */
size_t tpr_log_quote(char *buf, size_t size, const void *name, size_t len);

#endif /* TORPOR_CORE_LOG_H */
