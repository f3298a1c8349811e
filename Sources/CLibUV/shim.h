#ifndef LB_CLIBUV_SHIM_H
#define LB_CLIBUV_SHIM_H
#include <uv.h>
#include <signal.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/prctl.h>

/* SIG_IGN does not import into Swift: a proxy must ignore SIGPIPE or a write to a closed peer kills it. */
static inline void lb_ignore_sigpipe(void) { signal(SIGPIPE, SIG_IGN); }
/* The calling thread's timer slack: how late the kernel may fire its sleeps' timers to batch wake-ups. */
static inline int lb_set_timer_slack_ns(unsigned long ns) { return prctl(PR_SET_TIMERSLACK, ns, 0, 0, 0); }
#endif
