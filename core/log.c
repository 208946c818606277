/*
 * core/log.c: formatting log lines and handing them to the sink.
 */
#include "build-config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

#define LOG_LINE_MAX 2048

static int log_threshold = TORPOR_LOG_NOTICE;
static tpr_log_sink log_sink;
static void *log_sink_arg;

static const struct {
    torpor_log_level level;
    const char *name;   /* as in the config */
    const char *label;  /* as in a line */
} log_levels[] = {
    {TORPOR_LOG_ERR, "err", "ERR"},
    {TORPOR_LOG_WARN, "warn", "WARN"},
    {TORPOR_LOG_NOTICE, "notice", "NOTICE"},
    {TORPOR_LOG_INFO, "info", "INFO"},
    {TORPOR_LOG_DEBUG, "debug", "DEBUG"},
};

void
tpr_log_set_sink(tpr_log_sink sink, void *arg)
{
    log_sink = sink;
    log_sink_arg = arg;
}

void
tpr_log_set_level(torpor_log_level level)
{
    __atomic_store_n(&log_threshold, (int)level, __ATOMIC_RELAXED);
}

torpor_log_level
tpr_log_level(void)
{
    return (torpor_log_level)__atomic_load_n(&log_threshold,
                                             __ATOMIC_RELAXED);
}

bool
tpr_log_enabled(torpor_log_level level)
{
    return (int)level <= __atomic_load_n(&log_threshold, __ATOMIC_RELAXED);
}

torpor_err
tpr_log_level_parse(const char *text, torpor_log_level *out)
{
    for (size_t i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++) {
        if (strcasecmp(text, log_levels[i].name) == 0) {
            *out = log_levels[i].level;
            return TORPOR_OK;
        }
    }
    return TORPOR_EINVAL;
}

const char *
tpr_log_level_name(torpor_log_level level)
{
    for (size_t i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++) {
        if (log_levels[i].level == level) {
            return log_levels[i].name;
        }
    }
    return "?";
}

static const char *
log_label(torpor_log_level level)
{
    for (size_t i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++) {
        if (log_levels[i].level == level) {
            return log_levels[i].label;
        }
    }
    return "?";
}

size_t
tpr_log_quote(char *buf, size_t size, const void *name, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = name;
    size_t n = 0;

#define LOG_PUT(c)              \
    do {                        \
        if (n + 1 < size) {     \
            buf[n] = (char)(c); \
        }                       \
        n++;                    \
    } while (0)

    LOG_PUT('"');
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '"' || p[i] == '\\') {
            LOG_PUT('\\');
            LOG_PUT(p[i]);
        } else if (p[i] < 0x20 || p[i] > 0x7e) {
            LOG_PUT('\\');
            LOG_PUT('x');
            LOG_PUT(hex[p[i] >> 4]);
            LOG_PUT(hex[p[i] & 15]);
        } else {
            LOG_PUT(p[i]);
        }
    }
    LOG_PUT('"');
#undef LOG_PUT
    if (size > 0) {
        buf[n < size ? n : size - 1] = '\0';
    }
    return n;
}

static void
log_write_stderr(const char *line, size_t len)
{
    /* One write per line, so lines of several threads never interleave. */
    while (len > 0) {
        ssize_t w = write(STDERR_FILENO, line, len);
        if (w <= 0) {
            return;
        }
        line += w;
        len -= (size_t)w;
    }
}

void
tpr_logv(torpor_log_level level, const char *component, const char *ids,
         const char *fmt, va_list ap)
{
    char line[LOG_LINE_MAX + 128];
    struct timespec ts;
    struct tm tm;

    if (!tpr_log_enabled(level)) {
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line),
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s%s%s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                     log_label(level), component, ids ? " " : "",
                     ids ? ids : "");
    if (n < 0) {
        return;
    }
    size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    int m = vsnprintf(line + len, sizeof(line) - len - 1, fmt, ap);
    if (m > 0) {
        len += (size_t)m < sizeof(line) - len - 1 ? (size_t)m
                                                  : sizeof(line) - len - 2;
    }
    line[len++] = '\n';
    if (log_sink != NULL) {
        log_sink(log_sink_arg, level, line, len);
    } else {
        log_write_stderr(line, len);
    }
}

void
tpr_log(torpor_log_level level, const char *component, const char *ids,
        const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    tpr_logv(level, component, ids, fmt, ap);
    va_end(ap);
}
