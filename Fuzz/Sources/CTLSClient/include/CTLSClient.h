#ifndef LB_CTLSCLIENT_H
#define LB_CTLSCLIENT_H
#include <stddef.h>
#include <stdint.h>

/*
 * A TLS client on memory BIOs (OpenSSL), for TLSFuzz's driven mode: it runs real handshakes against the server
 * under test so that the fuzzer reaches what lies behind one (application data, KeyUpdate, close_notify,
 * resumption), which bytes from the fuzzer alone never reach (the server's random and key share change on every
 * run). OpenSSL stays behind this header so that the Swift side does not need a second OpenSSL module next to
 * the root package's COpenSSL. It verifies nothing about the server's certificate: the harness checks which
 * certificate was chosen on the server side.
 */
typedef struct tlsfuzz_client tlsfuzz_client;

enum {
    TLSFUZZ_TLS12 = 0,       /* TLS 1.2 only */
    TLSFUZZ_TLS13 = 1,       /* TLS 1.3 only */
};
enum {
    TLSFUZZ_ALPN_NONE = 0,
    TLSFUZZ_ALPN_HTTP11 = 1,  /* http/1.1 */
    TLSFUZZ_ALPN_H2 = 2,      /* h2 only */
    TLSFUZZ_ALPN_BOTH = 3,    /* h2, http/1.1 */
};

/* A fresh client; `server_name` NULL sends no SNI. `resume` offers the session saved for that version, if any. */
tlsfuzz_client *tlsfuzz_client_new(const char *server_name, int version, int alpn, int resume);
void tlsfuzz_client_free(tlsfuzz_client *client);

/* Ciphertext from the server. */
void tlsfuzz_client_feed(tlsfuzz_client *client, const uint8_t *bytes, size_t count);
/* Ciphertext for the server: how much waits, and moving up to `capacity` bytes of it out. */
size_t tlsfuzz_client_pending(tlsfuzz_client *client);
size_t tlsfuzz_client_take(tlsfuzz_client *client, uint8_t *out, size_t capacity);

/* Drives the handshake, then reads plaintext into `out`: > 0 bytes read, 0 nothing (yet), -1 the server's
 * close_notify, -2 failed (the client sends its alert). */
int tlsfuzz_client_pump(tlsfuzz_client *client, uint8_t *out, size_t capacity);
int tlsfuzz_client_handshake_done(tlsfuzz_client *client);
int tlsfuzz_client_failed(tlsfuzz_client *client);
/* OpenSSL's reason for the client's failure ("" if none), for messages. */
const char *tlsfuzz_client_error(tlsfuzz_client *client);
int tlsfuzz_client_resumed(tlsfuzz_client *client);

/* 1 written whole, 0 not possible now (handshake unfinished, shut down, failed). */
int tlsfuzz_client_write(tlsfuzz_client *client, const uint8_t *bytes, size_t count);
/* TLS 1.3: a KeyUpdate (`request_peer`: the server must answer with its own). TLS 1.2: asks to renegotiate,
 * which the server refuses. 1 when queued. */
int tlsfuzz_client_key_update(tlsfuzz_client *client, int request_peer);
/* Queues close_notify; 1 when queued. */
int tlsfuzz_client_shutdown(tlsfuzz_client *client);

/* Keeps the client's session (with its ticket) for later `resume`; 1 when it was resumable. */
int tlsfuzz_client_save_session(tlsfuzz_client *client, int version);

#endif
