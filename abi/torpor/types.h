/*
 * torpor/types.h: the small types every part of the plugin ABI shares.
 *
 * Everything in abi/ is part of the stable plugin ABI.  Within one major
 * version, enums and structs only grow at the end; see abi/CHANGES.
 */
#ifndef TORPOR_ABI_TYPES_H
#define TORPOR_ABI_TYPES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define TORPOR_API __attribute__((visibility("default")))
#define TORPOR_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define TORPOR_API
#define TORPOR_PRINTF(fmt, args)
#endif

/*
 * Result of every call that can fail.  0 is success; failures are small
 * positive numbers, named by torpor_host.strerror().  New codes are only
 * appended.
 */
typedef enum torpor_err {
    TORPOR_OK = 0,
    TORPOR_EINVAL = 1,    /* an argument or value is malformed */
    TORPOR_ENOMEM = 2,    /* an allocation failed */
    TORPOR_ENOENT = 3,    /* no such thing: file, route, key, object */
    TORPOR_ENOKEY = 4,    /* a config key this component does not know */
    TORPOR_EEXIST = 5,    /* already there */
    TORPOR_ELIMIT = 6,    /* a configured limit was exceeded */
    TORPOR_EAGAIN = 7,    /* would block; try again when ready */
    TORPOR_EDECLINED = 8, /* a hook chose not to handle this; not an error */
    TORPOR_EIO = 9,       /* an operating system call failed */
    TORPOR_EABI = 10,     /* a plugin does not fit this core's ABI */
    TORPOR_ECLOSED = 11,  /* the connection or object is closing or gone */
    TORPOR_EBUSY = 12,    /* cannot be done now, something is in flight */
    TORPOR_EREFUSED = 13, /* refused by policy (a class, a limit, a peer) */
    TORPOR_ESTATE = 14,   /* called at the wrong point of a lifecycle */
    TORPOR_EUNSUPPORTED = 15 /* the callee does not offer this operation */
} torpor_err;

/* Log levels, numbered as syslog's. */
typedef enum torpor_log_level {
    TORPOR_LOG_ERR = 3,
    TORPOR_LOG_WARN = 4,
    TORPOR_LOG_NOTICE = 5,
    TORPOR_LOG_INFO = 6,
    TORPOR_LOG_DEBUG = 7
} torpor_log_level;

/* What a message carries; WebSocket's text and binary frames. */
typedef enum torpor_msg_kind {
    TORPOR_MSG_TEXT = 1,   /* valid UTF-8, checked by the transport */
    TORPOR_MSG_BINARY = 2
} torpor_msg_kind;

/*
 * Close codes of RFC 6455 section 7.4 that the core itself uses.  Any code
 * a peer may send passes through unchanged.
 */
enum {
    TORPOR_CLOSE_NORMAL = 1000,
    TORPOR_CLOSE_GOING_AWAY = 1001,
    TORPOR_CLOSE_PROTOCOL = 1002,
    TORPOR_CLOSE_UNSUPPORTED = 1003,
    TORPOR_CLOSE_NO_STATUS = 1005,    /* never sent; "the peer gave none" */
    TORPOR_CLOSE_ABNORMAL = 1006,     /* never sent; "no close frame" */
    TORPOR_CLOSE_INVALID_DATA = 1007,
    TORPOR_CLOSE_POLICY = 1008,
    TORPOR_CLOSE_TOO_BIG = 1009,
    TORPOR_CLOSE_INTERNAL = 1011,
    TORPOR_CLOSE_RESTART = 1012,
    TORPOR_CLOSE_TRY_AGAIN = 1013
};

/* A run of bytes that the callee only reads during the call. */
typedef struct torpor_bytes {
    const void *data;
    size_t len;
} torpor_bytes;

/*
 * Opaque handles.  The core owns all of them; a plugin keeps a pointer
 * only as long as the handle's lifecycle (documented with each) allows.
 */
typedef struct torpor_plugin_ctx torpor_plugin_ctx; /* one loaded plugin */
typedef struct torpor_loop torpor_loop;     /* one event loop thread */
typedef struct torpor_io torpor_io;         /* readiness watch on an fd */
typedef struct torpor_timer torpor_timer;   /* a one-shot timer */
typedef struct torpor_object torpor_object; /* a room */
typedef struct torpor_conn torpor_conn;     /* a client of a room */
typedef struct torpor_frame torpor_frame;   /* a transport's encoded message */

#ifdef __cplusplus
}
#endif

#endif /* TORPOR_ABI_TYPES_H */
