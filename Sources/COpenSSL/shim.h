#ifndef LB_COPENSSL_SHIM_H
#define LB_COPENSSL_SHIM_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <openssl/rand.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/params.h>

/*
 * Many OpenSSL "functions" are macros over SSL_CTX_ctrl / SSL_ctrl / BIO_ctrl, and the SSL_OP_* bits are built
 * with a function-like macro; none of them import into Swift. Each wrapper below is the macro, typed, and
 * nothing more: same arguments, same return value (1 or a positive value on success, 0 on failure unless noted).
 */

/* Options (OpenSSL 3: 64-bit) and modes. */
static const uint64_t lb_SSL_OP_NO_TICKET = SSL_OP_NO_TICKET;
static const uint64_t lb_SSL_OP_NO_COMPRESSION = SSL_OP_NO_COMPRESSION;
static const uint64_t lb_SSL_OP_NO_RENEGOTIATION = SSL_OP_NO_RENEGOTIATION;
static const uint64_t lb_SSL_OP_CIPHER_SERVER_PREFERENCE = SSL_OP_CIPHER_SERVER_PREFERENCE;
static const uint64_t lb_SSL_OP_PRIORITIZE_CHACHA = SSL_OP_PRIORITIZE_CHACHA;

static inline long lb_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
static inline int lb_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}
static inline int lb_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_max_proto_version(ctx, version);
}
static inline int lb_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *list) {
    return (int)SSL_CTX_set1_groups_list(ctx, list);
}

/* Certificates. add1 takes its own reference: the caller still frees `x509`. */
static inline int lb_SSL_CTX_add1_chain_cert(SSL_CTX *ctx, X509 *x509) {
    return (int)SSL_CTX_add1_chain_cert(ctx, x509);
}

/* Session resumption. */
static inline long lb_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_session_cache_mode(ctx, mode);
}
static inline long lb_SSL_CTX_sess_set_cache_size(SSL_CTX *ctx, long size) {
    return SSL_CTX_sess_set_cache_size(ctx, size);
}
/* `keys` is the 80-byte blob: 16 bytes key name, 32 bytes HMAC secret, 32 bytes AES key. */
static inline int lb_SSL_CTX_set_tlsext_ticket_keys(SSL_CTX *ctx, unsigned char *keys, long length) {
    return (int)SSL_CTX_set_tlsext_ticket_keys(ctx, keys, length);
}

/* SNI. */
typedef int (*lb_servername_cb)(SSL *ssl, int *alert, void *arg);
static inline int lb_SSL_CTX_set_tlsext_servername_callback(SSL_CTX *ctx, lb_servername_cb cb) {
    return (int)SSL_CTX_set_tlsext_servername_callback(ctx, cb);
}
static inline int lb_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}

/* Memory BIOs: bytes written and not yet read. */
static inline size_t lb_BIO_pending(BIO *bio) { return BIO_ctrl_pending(bio); }

/* Reading certificates and keys. pem_password_cb is a function type, not a pointer; this names the pointer. */
typedef int (*lb_pem_password_cb)(char *buf, int size, int rwflag, void *userdata);
static inline void lb_OPENSSL_free(void *pointer) { OPENSSL_free(pointer); }
/* The subjectAltName extension, or NULL; free with GENERAL_NAMES_free. */
static inline GENERAL_NAMES *lb_X509_subject_alt_names(const X509 *x509) {
    return (GENERAL_NAMES *)X509_get_ext_d2i(x509, NID_subject_alt_name, NULL, NULL);
}
static inline int lb_GENERAL_NAMES_count(const GENERAL_NAMES *names) { return sk_GENERAL_NAME_num(names); }
/* The i-th name if it is a dNSName, else NULL. */
static inline const ASN1_IA5STRING *lb_GENERAL_NAMES_dns(const GENERAL_NAMES *names, int i) {
    const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, i);
    return (name != NULL && name->type == GEN_DNS) ? name->d.dNSName : NULL;
}
/* RFC 2253 text, UTF-8 kept as UTF-8 instead of escaped. */
static inline int lb_X509_NAME_print_rfc2253(BIO *bio, const X509_NAME *name) {
    return X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
}
/* RFC 2253 text in ASCII only: bytes above 0x7F and control characters escaped as \XX (what nginx's
 * $ssl_client_s_dn gives), for a value that goes into an HTTP field. */
static inline int lb_X509_NAME_print_rfc2253_ascii(BIO *bio, const X509_NAME *name) {
    return X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
}
#endif
