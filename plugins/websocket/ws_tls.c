/*
 * TLS for the listeners in listen_tls: the keys that configure it, the
 * OpenSSL context that new connections take their session from, and its
 * reload on SIGHUP.
 *
 * listen_tls = 127.0.0.1:8443
 *     Addresses that speak TLS (wss://), in the form of listen; parsed in
 *     ws_config.c.  Empty by default: no TLS.
 *
 * tls_certificate = /etc/torpor/tls/fullchain.pem
 *     PEM: the server's certificate first, then the intermediates that
 *     lead to the client's trust anchor.  Needed with listen_tls.
 *
 * tls_private_key = /etc/torpor/tls/privkey.pem
 *     PEM, unencrypted: the certificate's private key.  Needed with
 *     listen_tls.
 *
 * tls_min_version = 1.2
 *     Oldest protocol a client may use: 1.2 or 1.3.  Ciphers and groups
 *     are OpenSSL's defaults (and the system's policy).
 *
 * Each file is read and checked when its key is configured, and the two
 * once both are known, so `torpord --check-config` reports a bad file, or
 * a key that does not match its certificate, with OpenSSL's reason.  The
 * context is built at start, and built anew from the same paths on
 * reload; it is swapped in only when the whole new pair is good.
 *
 * Threads: the context pointer is read (SSL_new, at accept) and replaced
 * only on the main loop.  Sessions on other loops hold references of
 * their own, so the old context lives until its last session ends.
 */
#include "ws.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

/* Larger PEM files are refused: a chain is a few KiB. */
#define WS_TLS_FILE_MAX (1024 * 1024)

/* ALPN: a WebSocket upgrade is HTTP/1.1, whatever else a client offers. */
static const unsigned char ws_tls_alpn[] = "\x08http/1.1";

static void ws_tls_why(char *why, size_t why_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
ws_tls_why(char *why, size_t why_size, const char *fmt, ...)
{
    va_list ap;

    if (why == NULL || why_size == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(why, why_size, fmt, ap);
    va_end(ap);
}

/* ws_tls_reason names the error OpenSSL queued last and clears them. */
static const char *
ws_tls_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;

    ERR_clear_error();
    /* Reason strings are static, so clearing the queue keeps this valid. */
    return reason != NULL ? reason : "unknown error";
}

/*
 * ws_tls_read_file reads path whole into a buffer of the caller's, which
 * it frees with OPENSSL_clear_free (it may be a key).  Errors name the
 * file and errno's text.
 */
static bool
ws_tls_read_file(const char *path, char **out, size_t *out_len, char *why,
                 size_t why_size)
{
    char err[128];
    char *buf = NULL;
    size_t len = 0;
    FILE *f = fopen(path, "rb");

    if (f == NULL) {
        ws_tls_why(why, why_size, "could not read \"%s\": %s", path,
                   ws_strerror(errno, err, sizeof(err)));
        return false;
    }
    buf = OPENSSL_malloc(WS_TLS_FILE_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        ws_tls_why(why, why_size, "could not read \"%s\": out of memory", path);
        return false;
    }
    len = fread(buf, 1, WS_TLS_FILE_MAX + 1, f);
    if (ferror(f)) {
        ws_tls_why(why, why_size, "could not read \"%s\": %s", path,
                   ws_strerror(errno, err, sizeof(err)));
        goto fail;
    }
    if (len > WS_TLS_FILE_MAX) {
        ws_tls_why(why, why_size, "could not read \"%s\": larger than %d bytes",
                   path, WS_TLS_FILE_MAX);
        goto fail;
    }
    fclose(f);
    *out = buf;
    *out_len = len;
    return true;

fail:
    fclose(f);
    OPENSSL_clear_free(buf, WS_TLS_FILE_MAX + 1);
    return false;
}

/* An encrypted key would ask for a passphrase on the terminal: refuse. */
static int
ws_tls_no_passphrase(char *buf, int size, int rwflag, void *arg)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)arg;
    return -1;
}

/* ws_tls_use_chain puts the PEM chain in path into ctx. */
static bool
ws_tls_use_chain(SSL_CTX *ctx, const char *path, char *why, size_t why_size)
{
    X509 *leaf = NULL;
    X509 *extra;
    char *pem;
    size_t len;
    BIO *bio;
    bool ok = false;

    if (!ws_tls_read_file(path, &pem, &len, why, why_size)) {
        return false;
    }
    ERR_clear_error();
    bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL) {
        ws_tls_why(why, why_size, "could not load certificate \"%s\": %s", path,
                   ws_tls_reason());
        goto out;
    }
    leaf = PEM_read_bio_X509_AUX(bio, NULL, ws_tls_no_passphrase, NULL);
    if (leaf == NULL) {
        ws_tls_why(why, why_size, "could not load certificate \"%s\": %s", path,
                   ws_tls_reason());
        goto out;
    }
    if (SSL_CTX_use_certificate(ctx, leaf) != 1) {
        ws_tls_why(why, why_size, "could not use certificate \"%s\": %s", path,
                   ws_tls_reason());
        goto out;
    }
    SSL_CTX_clear_chain_certs(ctx);
    while ((extra = PEM_read_bio_X509(bio, NULL, ws_tls_no_passphrase, NULL))
           != NULL) {
        if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
            X509_free(extra);
            ws_tls_why(why, why_size, "could not use the chain in \"%s\": %s",
                       path, ws_tls_reason());
            goto out;
        }
    }
    /* The loop ends at the end of the file, which is not an error... */
    if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE) {
        ws_tls_why(why, why_size, "could not load the chain in \"%s\": %s",
                   path, ws_tls_reason());
        goto out;
    }
    /* ...and the queue keeps nothing of it. */
    ERR_clear_error();
    ok = true;

out:
    X509_free(leaf);
    BIO_free(bio);
    OPENSSL_clear_free(pem, WS_TLS_FILE_MAX + 1);
    return ok;
}

/* ws_tls_contains tells whether text occurs in data[0..len). */
static bool
ws_tls_contains(const char *data, size_t len, const char *text)
{
    size_t n = strlen(text);

    for (size_t i = 0; i + n <= len; i++) {
        if (memcmp(data + i, text, n) == 0) {
            return true;
        }
    }
    return false;
}

/*
 * ws_tls_use_key puts the PEM private key in path into ctx, which may
 * hold the certificate of cert_path already.  OpenSSL's decoder says only
 * "unsupported" for a file with no key in it, so the common mistakes get
 * words of their own.
 */
static bool
ws_tls_use_key(SSL_CTX *ctx, const char *path, const char *cert_path, char *why,
               size_t why_size)
{
    EVP_PKEY *key = NULL;
    char *pem;
    size_t len;
    BIO *bio;
    bool ok = false;

    if (!ws_tls_read_file(path, &pem, &len, why, why_size)) {
        return false;
    }
    ERR_clear_error();
    bio = BIO_new_mem_buf(pem, (int)len);
    if (bio != NULL) {
        key = PEM_read_bio_PrivateKey(bio, NULL, ws_tls_no_passphrase, NULL);
    }
    if (key == NULL && !ws_tls_contains(pem, len, "PRIVATE KEY-----")) {
        ERR_clear_error();
        ws_tls_why(why, why_size,
                   "could not load private key \"%s\": no PEM private key "
                   "in it",
                   path);
    } else if (key == NULL && ws_tls_contains(pem, len, "ENCRYPTED")) {
        ERR_clear_error();
        ws_tls_why(why, why_size,
                   "could not load private key \"%s\": it is encrypted, and "
                   "torpord reads only unencrypted keys",
                   path);
    } else if (key == NULL) {
        ws_tls_why(why, why_size, "could not load private key \"%s\": %s", path,
                   ws_tls_reason());
    } else if (SSL_CTX_use_PrivateKey(ctx, key) != 1) {
        if (cert_path != NULL
            && ERR_GET_REASON(ERR_peek_last_error())
                   == X509_R_KEY_VALUES_MISMATCH) {
            ws_tls_why(why, why_size,
                       "private key \"%s\" does not match certificate "
                       "\"%s\": %s",
                       path, cert_path, ws_tls_reason());
        } else {
            ws_tls_why(why, why_size, "could not use private key \"%s\": %s",
                       path, ws_tls_reason());
        }
    } else {
        ok = true;
    }
    EVP_PKEY_free(key);
    BIO_free(bio);
    OPENSSL_clear_free(pem, WS_TLS_FILE_MAX + 1);
    return ok;
}

static int
ws_tls_select_alpn(SSL *ssl, const unsigned char **out, unsigned char *out_len,
                   const unsigned char *in, unsigned int in_len, void *arg)
{
    unsigned char *chosen;

    (void)ssl;
    (void)arg;
    if (SSL_select_next_proto(&chosen, out_len, ws_tls_alpn,
                              sizeof(ws_tls_alpn) - 1, in, in_len)
        != OPENSSL_NPN_NEGOTIATED) {
        /* Go on without ALPN rather than fail a client that offered h2
         * only: it still speaks HTTP/1.1 when nothing is selected. */
        return SSL_TLSEXT_ERR_NOACK;
    }
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}

/*
 * ws_tls_ctx_new builds a server context from cfg's files.  Errors go to
 * why, naming the file and OpenSSL's reason.
 */
static bool
ws_tls_ctx_new(const struct ws_config *cfg, SSL_CTX **out, char *why,
               size_t why_size)
{
    int min_version =
        cfg->tls_min_version != 0 ? cfg->tls_min_version : TLS1_2_VERSION;
    SSL_CTX *ctx;

    ERR_clear_error();
    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, min_version) != 1) {
        ws_tls_why(why, why_size, "could not make a TLS context: %s",
                   ws_tls_reason());
        SSL_CTX_free(ctx);
        return false;
    }
    /*
     * Partial writes and a moving buffer let a shared frame be written
     * from its own bytes at any offset; released buffers leave an idle
     * session holding none.  Renegotiation would let a client make reads
     * wait on writes at will; an EOF without close_notify is how many
     * WebSocket clients leave after their close frame.
     */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE
                              | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
                              | SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx,
                        SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* Resumption stays possible through tickets, which cost the server no
     * memory per client, unlike a session cache. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_alpn_select_cb(ctx, ws_tls_select_alpn, NULL);
    SSL_CTX_set_default_passwd_cb(ctx, ws_tls_no_passphrase);

    if (!ws_tls_use_chain(ctx, cfg->tls_certificate, why, why_size)
        || !ws_tls_use_key(ctx, cfg->tls_private_key, cfg->tls_certificate, why,
                           why_size)) {
        SSL_CTX_free(ctx);
        return false;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ws_tls_why(why, why_size,
                   "private key \"%s\" does not match certificate \"%s\": %s",
                   cfg->tls_private_key, cfg->tls_certificate, ws_tls_reason());
        SSL_CTX_free(ctx);
        return false;
    }
    *out = ctx;
    return true;
}

/* ws_tls_describe writes the certificate's subject, serial and expiry. */
static void
ws_tls_describe(SSL_CTX *ctx, char *out, size_t size)
{
    X509 *cert = SSL_CTX_get0_certificate(ctx);
    BIO *bio = BIO_new(BIO_s_mem());
    BIGNUM *serial = NULL;
    char *serial_hex = NULL;
    char *text = NULL;
    long len;

    snprintf(out, size, "?");
    if (cert == NULL || bio == NULL) {
        BIO_free(bio);
        ERR_clear_error();
        return;
    }
    serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    serial_hex = serial != NULL ? BN_bn2hex(serial) : NULL;
    BIO_puts(bio, "subject \"");
    X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
    BIO_printf(bio, "\", serial %s, expires ",
               serial_hex != NULL ? serial_hex : "?");
    ASN1_TIME_print(bio, X509_get0_notAfter(cert));
    len = BIO_get_mem_data(bio, &text);
    snprintf(out, size, "%.*s", (int)len, text);
    OPENSSL_free(serial_hex);
    BN_free(serial);
    BIO_free(bio);
    ERR_clear_error();
}

/* ws_tls_config_path stores path in *slot; false when out of memory. */
static bool
ws_tls_config_path(char **slot, const char *value, char *why, size_t why_size)
{
    char *copy = strdup(value);

    if (copy == NULL) {
        ws_tls_why(why, why_size, "out of memory");
        return false;
    }
    free(*slot);
    *slot = copy;
    return true;
}

/*
 * ws_tls_config_file checks the file of one key on its own and, if the
 * other is known, the pair; cfg changes only when all of that is good.
 */
static torpor_err
ws_tls_config_file(struct ws_config *cfg, char **slot, const char *value,
                   char *why, size_t why_size)
{
    struct ws_config trial = *cfg;
    SSL_CTX *ctx = NULL;
    bool ok;

    if (value[0] == '\0') {
        ws_tls_why(why, why_size, "expected the path of a PEM file");
        return TORPOR_EINVAL;
    }
    /* The trial shares cfg's strings; only the slot's changes. */
    if (slot == &cfg->tls_certificate) {
        trial.tls_certificate = (char *)value;
    } else {
        trial.tls_private_key = (char *)value;
    }
    if (trial.tls_certificate != NULL && trial.tls_private_key != NULL) {
        ok = ws_tls_ctx_new(&trial, &ctx, why, why_size);
    } else {
        ctx = SSL_CTX_new(TLS_server_method());
        if (ctx == NULL) {
            ws_tls_why(why, why_size, "could not make a TLS context: %s",
                       ws_tls_reason());
            return TORPOR_ENOMEM;
        }
        ok = slot == &cfg->tls_certificate
                 ? ws_tls_use_chain(ctx, value, why, why_size)
                 : ws_tls_use_key(ctx, value, NULL, why, why_size);
    }
    SSL_CTX_free(ctx);
    if (!ok) {
        return TORPOR_EINVAL;
    }
    return ws_tls_config_path(slot, value, why, why_size) ? TORPOR_OK
                                                          : TORPOR_ENOMEM;
}

torpor_err
ws_tls_config_set(struct ws_config *cfg, const char *key, const char *value,
                  char *why, size_t why_size)
{
    if (strcmp(key, "tls_certificate") == 0) {
        return ws_tls_config_file(cfg, &cfg->tls_certificate, value, why,
                                  why_size);
    }
    if (strcmp(key, "tls_private_key") == 0) {
        return ws_tls_config_file(cfg, &cfg->tls_private_key, value, why,
                                  why_size);
    }
    if (strcmp(key, "tls_min_version") == 0) {
        if (strcmp(value, "1.2") == 0) {
            cfg->tls_min_version = TLS1_2_VERSION;
        } else if (strcmp(value, "1.3") == 0) {
            cfg->tls_min_version = TLS1_3_VERSION;
        } else {
            ws_tls_why(why, why_size, "expected 1.2 or 1.3");
            return TORPOR_EINVAL;
        }
        return TORPOR_OK;
    }
    return TORPOR_ENOKEY;
}

void
ws_tls_config_free(struct ws_config *cfg)
{
    free(cfg->tls_certificate);
    free(cfg->tls_private_key);
    cfg->tls_certificate = NULL;
    cfg->tls_private_key = NULL;
}

torpor_err
ws_tls_start(struct ws_state *ws)
{
    const struct ws_config *cfg = &ws->cfg;
    char why[512] = "";
    char desc[512];

    if (cfg->n_listen_tls == 0 || ws->tls_ctx != NULL) {
        return TORPOR_OK;
    }
    /* The configured hook has refused this; a guard, no more. */
    if (cfg->tls_certificate == NULL || cfg->tls_private_key == NULL) {
        WS_LOG(ws, TORPOR_LOG_ERR, NULL,
               "could not start TLS: listen_tls needs tls_certificate and "
               "tls_private_key in [transport.websocket]");
        return TORPOR_EINVAL;
    }
    if (!ws_tls_ctx_new(cfg, &ws->tls_ctx, why, sizeof(why))) {
        WS_LOG(ws, TORPOR_LOG_ERR, NULL, "could not start TLS: %s", why);
        return TORPOR_EINVAL;
    }
    ws_tls_describe(ws->tls_ctx, desc, sizeof(desc));
    WS_LOG(ws, TORPOR_LOG_NOTICE, NULL, "TLS certificate \"%s\": %s",
           cfg->tls_certificate, desc);
    return TORPOR_OK;
}

torpor_err
ws_tls_reload(struct ws_state *ws)
{
    const struct ws_config *cfg = &ws->cfg;
    SSL_CTX *fresh = NULL;
    char why[512] = "";
    char desc[512];

    if (ws->tls_ctx == NULL) {
        return TORPOR_OK;
    }
    if (!ws_tls_ctx_new(cfg, &fresh, why, sizeof(why))) {
        WS_LOG(ws, TORPOR_LOG_ERR, NULL,
               "could not reload TLS certificate and key: %s; keeping the "
               "previous pair",
               why);
        return TORPOR_EINVAL;
    }
    /* Sessions hold references: the old context goes with the last. */
    SSL_CTX_free(ws->tls_ctx);
    ws->tls_ctx = fresh;
    ws_tls_describe(fresh, desc, sizeof(desc));
    WS_LOG(ws, TORPOR_LOG_NOTICE, NULL, "reloaded TLS certificate \"%s\": %s",
           cfg->tls_certificate, desc);
    return TORPOR_OK;
}

void
ws_tls_stop(struct ws_state *ws)
{
    SSL_CTX_free(ws->tls_ctx);
    ws->tls_ctx = NULL;
}
