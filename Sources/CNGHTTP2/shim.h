#ifndef LB_CNGHTTP2_SHIM_H
#define LB_CNGHTTP2_SHIM_H
#include <nghttp2/nghttp2.h>

/*
 * The client connection preface is a string macro (NGHTTP2_CLIENT_MAGIC), which does not import into Swift.
 * Everything else lb uses of nghttp2 is functions, structs and enums that do.
 */
static inline const char *lb_nghttp2_client_magic(void) { return NGHTTP2_CLIENT_MAGIC; }
static inline size_t lb_nghttp2_client_magic_len(void) { return NGHTTP2_CLIENT_MAGIC_LEN; }

#endif
