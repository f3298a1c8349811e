// See CTLSClient.h. Every call leaves OpenSSL's error queue empty: the server under test shares the thread.
#include "CTLSClient.h"
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>

struct tlsfuzz_client {
    SSL *ssl;
    BIO *in;   /* from the server */
    BIO *out;  /* to the server */
    int failed;
    unsigned long error;  /* the OpenSSL error the client failed with */
};

static SSL_CTX *client_context(void) {
    static SSL_CTX *context;
    if (context == NULL) {
        context = SSL_CTX_new(TLS_client_method());
        if (context == NULL) abort();
        SSL_CTX_set_verify(context, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_session_cache_mode(context, SSL_SESS_CACHE_OFF);
    }
    return context;
}

static SSL_SESSION *saved[2];

tlsfuzz_client *tlsfuzz_client_new(const char *server_name, int version, int alpn, int resume) {
    tlsfuzz_client *client = calloc(1, sizeof *client);
    if (client == NULL) abort();
    client->ssl = SSL_new(client_context());
    client->in = BIO_new(BIO_s_mem());
    client->out = BIO_new(BIO_s_mem());
    if (client->ssl == NULL || client->in == NULL || client->out == NULL) abort();
    SSL_set_bio(client->ssl, client->in, client->out);
    SSL_set_connect_state(client->ssl);
    int v = version == TLSFUZZ_TLS13 ? TLS1_3_VERSION : TLS1_2_VERSION;
    SSL_set_min_proto_version(client->ssl, v);
    SSL_set_max_proto_version(client->ssl, v);
    if (server_name != NULL) SSL_set_tlsext_host_name(client->ssl, server_name);
    static const unsigned char http11[] = "\x08http/1.1", h2[] = "\x02h2", both[] = "\x02h2\x08http/1.1";
    switch (alpn) {
    case TLSFUZZ_ALPN_HTTP11: SSL_set_alpn_protos(client->ssl, http11, sizeof http11 - 1); break;
    case TLSFUZZ_ALPN_H2: SSL_set_alpn_protos(client->ssl, h2, sizeof h2 - 1); break;
    case TLSFUZZ_ALPN_BOTH: SSL_set_alpn_protos(client->ssl, both, sizeof both - 1); break;
    default: break;
    }
    /* A copy: OpenSSL marks the session a connection used not resumable when that connection fails or is
     * freed without close_notify, which would spoil the saved one for every later run. */
    if (resume && saved[version & 1] != NULL) {
        SSL_SESSION *copy = SSL_SESSION_dup(saved[version & 1]);
        if (copy == NULL) abort();
        SSL_set_session(client->ssl, copy);
        SSL_SESSION_free(copy);
    }
    ERR_clear_error();
    return client;
}

void tlsfuzz_client_free(tlsfuzz_client *client) {
    SSL_free(client->ssl);  /* frees both BIOs */
    free(client);
}

void tlsfuzz_client_feed(tlsfuzz_client *client, const uint8_t *bytes, size_t count) {
    if (count > 0 && BIO_write(client->in, bytes, (int)count) != (int)count) abort();
}

size_t tlsfuzz_client_pending(tlsfuzz_client *client) { return BIO_ctrl_pending(client->out); }

size_t tlsfuzz_client_take(tlsfuzz_client *client, uint8_t *out, size_t capacity) {
    if (capacity == 0 || BIO_ctrl_pending(client->out) == 0) return 0;
    int n = BIO_read(client->out, out, (int)capacity);
    return n > 0 ? (size_t)n : 0;
}

/* SSL_get_error's verdict on a call that returned `result`: 0 retry later, -1 close_notify, -2 failed. */
static int classify(tlsfuzz_client *client, int result) {
    int error = SSL_get_error(client->ssl, result);
    unsigned long reason = ERR_peek_error();
    ERR_clear_error();
    switch (error) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE: return 0;
    case SSL_ERROR_ZERO_RETURN: return -1;
    default:
        client->failed = 1;
        if (client->error == 0) client->error = reason;
        return -2;
    }
}

int tlsfuzz_client_pump(tlsfuzz_client *client, uint8_t *out, size_t capacity) {
    if (client->failed) return -2;
    ERR_clear_error();
    if (!SSL_is_init_finished(client->ssl)) {
        int result = SSL_do_handshake(client->ssl);
        if (result != 1) return classify(client, result);
    }
    int result = SSL_read(client->ssl, out, (int)capacity);
    if (result > 0) return result;
    return classify(client, result);
}

int tlsfuzz_client_handshake_done(tlsfuzz_client *client) { return SSL_is_init_finished(client->ssl) == 1; }
int tlsfuzz_client_failed(tlsfuzz_client *client) { return client->failed; }
const char *tlsfuzz_client_error(tlsfuzz_client *client) {
    const char *reason = client->error != 0 ? ERR_reason_error_string(client->error) : NULL;
    return reason != NULL ? reason : "";
}
int tlsfuzz_client_resumed(tlsfuzz_client *client) { return SSL_session_reused(client->ssl) == 1; }

int tlsfuzz_client_write(tlsfuzz_client *client, const uint8_t *bytes, size_t count) {
    if (client->failed || !SSL_is_init_finished(client->ssl) || count == 0) return 0;
    if (SSL_get_shutdown(client->ssl) & SSL_SENT_SHUTDOWN) return 0;  /* would fail "protocol is shutdown" */
    ERR_clear_error();
    int result = SSL_write(client->ssl, bytes, (int)count);
    if (result == (int)count) return 1;
    if (result <= 0) classify(client, result);
    ERR_clear_error();
    return 0;
}

int tlsfuzz_client_key_update(tlsfuzz_client *client, int request_peer) {
    if (client->failed || !SSL_is_init_finished(client->ssl)) return 0;
    if (SSL_get_shutdown(client->ssl) & SSL_SENT_SHUTDOWN) return 0;
    ERR_clear_error();
    int ok;
    if (SSL_version(client->ssl) == TLS1_3_VERSION) {
        ok = SSL_key_update(client->ssl, request_peer ? SSL_KEY_UPDATE_REQUESTED : SSL_KEY_UPDATE_NOT_REQUESTED);
        /* The KeyUpdate goes out with the next write or handshake call. */
        if (ok == 1) SSL_do_handshake(client->ssl);
    } else {
        ok = SSL_renegotiate(client->ssl);
        if (ok == 1) SSL_do_handshake(client->ssl);
    }
    ERR_clear_error();
    return ok == 1;
}

int tlsfuzz_client_shutdown(tlsfuzz_client *client) {
    if (client->failed || !SSL_is_init_finished(client->ssl)) return 0;
    ERR_clear_error();
    int result = SSL_shutdown(client->ssl);
    ERR_clear_error();
    return result >= 0;
}

int tlsfuzz_client_save_session(tlsfuzz_client *client, int version) {
    SSL_SESSION *session = SSL_get0_session(client->ssl);
    if (session == NULL || !SSL_SESSION_is_resumable(session)) return 0;
    session = SSL_SESSION_dup(session);  /* see tlsfuzz_client_new */
    if (session == NULL) abort();
    SSL_SESSION_free(saved[version & 1]);
    saved[version & 1] = session;
    return 1;
}
