#ifndef LB_CLIBUV_SHIM_H
#define LB_CLIBUV_SHIM_H
#include <uv.h>
#include <signal.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

/* SIG_IGN does not import into Swift: a proxy must ignore SIGPIPE or a write to a closed peer kills it. */
static inline void lb_ignore_sigpipe(void) { signal(SIGPIPE, SIG_IGN); }
#endif
