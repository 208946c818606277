/*
 * core/errors.h: names of torpor_err codes, and a collector of
 * "FILE:LINE: reason" diagnostics for configuration problems.
 */
#ifndef TORPOR_CORE_ERRORS_H
#define TORPOR_CORE_ERRORS_H

#include <stddef.h>

#include <torpor/types.h>

#include "core/export.h"

/* tpr_strerror names err; never NULL. */
TPR_EXPORT const char *tpr_strerror(torpor_err err);

/*
 * A diag collects every problem found in one pass (a config check reports
 * all of them, not just the first).  Zero-initialise; free with
 * tpr_diag_free.
 */
struct tpr_diag {
    char *text;     /* lines, each ending in '\n'; NULL while count is 0 */
    size_t len;
    unsigned count;
};

/*
 * tpr_diag_add appends "FILE:LINE: reason" (or "FILE: reason" when line is
 * 0, or just the reason when file is NULL).  Out of memory only loses the
 * text, never the count, so a failure is never reported as success.
 */
void tpr_diag_add(struct tpr_diag *d, const char *file, unsigned line,
                  const char *fmt, ...) TORPOR_PRINTF(4, 5);
TPR_EXPORT void tpr_diag_free(struct tpr_diag *d);

/* tpr_diag_log writes each problem as its own log line. */
TPR_EXPORT void tpr_diag_log(const struct tpr_diag *d, torpor_log_level level,
                  const char *component);

#endif /* TORPOR_CORE_ERRORS_H */
