#ifndef LB_CLIBUV_SHIM_H
#define LB_CLIBUV_SHIM_H
#include <uv.h>
#include <signal.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/prctl.h>
#include <malloc.h>

/* SIG_IGN does not import into Swift: a proxy must ignore SIGPIPE or a write to a closed peer kills it. */
static inline void lb_ignore_sigpipe(void) { signal(SIGPIPE, SIG_IGN); }
/* The calling thread's timer slack: how late the kernel may fire its sleeps' timers to batch wake-ups. */
static inline int lb_set_timer_slack_ns(unsigned long ns) { return prctl(PR_SET_TIMERSLACK, ns, 0, 0, 0); }

/* Gives malloc's free pages back to the kernel (glibc's malloc_trim, which Swift's Glibc module does not
   export). Returns 1 when memory was released. */
static inline int lb_malloc_trim(void) { return malloc_trim(0); }

/* accept4 is declared only under _GNU_SOURCE, which Swift's Glibc module is not built with. The listener accepts
   through this: non-blocking and close-on-exec in the one call, with the peer's address. */
extern int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
static inline int lb_accept(int fd, struct sockaddr *addr, socklen_t *len) {
    return accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

/* The most descriptors one SCM_RIGHTS message may carry (the kernel's SCM_MAX_FD). */
#define LB_MAX_PASSED_FDS 253

/* Sends `len` bytes (at least 1) with `nfds` descriptors attached (SCM_RIGHTS) in one sendmsg; the descriptors
   travel with the first byte. `flags` as for sendmsg (MSG_DONTWAIT, MSG_NOSIGNAL is always added).
   Returns the bytes sent, or -errno (-EINVAL when nfds is out of range). The descriptors stay open here. */
static inline ssize_t lb_send_with_fds(int sock, const void *buf, size_t len, const int *fds, int nfds, int flags) {
    union { struct cmsghdr align; char space[CMSG_SPACE(sizeof(int) * LB_MAX_PASSED_FDS)]; } control;
    struct iovec iov = { (void *)buf, len };
    struct msghdr msg;
    if (nfds < 0 || nfds > LB_MAX_PASSED_FDS || len == 0) return -EINVAL;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (nfds > 0) {
        struct cmsghdr *cmsg;
        memset(&control, 0, sizeof control);
        msg.msg_control = control.space;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        cmsg = CMSG_FIRSTHDR(&msg);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * (size_t)nfds);
    }
    for (;;) {
        ssize_t n = sendmsg(sock, &msg, flags | MSG_NOSIGNAL);
        if (n >= 0) return n;
        if (errno != EINTR) return -errno;
    }
}

/* Receives up to `len` bytes. Descriptors that arrive with them (SCM_RIGHTS, opened close-on-exec) are stored
   in `fds` up to `maxfds` and counted in *nfds; any beyond that are closed and *truncated is set, as it is when
   the kernel cut the control data (MSG_CTRUNC). Returns the bytes read (0 at end of stream) or -errno. */
static inline ssize_t lb_recv_with_fds(int sock, void *buf, size_t len, int *fds, int maxfds, int *nfds,
                                       int *truncated) {
    union { struct cmsghdr align; char space[CMSG_SPACE(sizeof(int) * LB_MAX_PASSED_FDS)]; } control;
    struct iovec iov = { buf, len };
    struct msghdr msg;
    struct cmsghdr *cmsg;
    ssize_t n;
    *nfds = 0;
    *truncated = 0;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.space;
    msg.msg_controllen = sizeof control.space;
    do { n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); } while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    if (msg.msg_flags & MSG_CTRUNC) *truncated = 1;
    for (cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
        size_t count, i;
        if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
        count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (i = 0; i < count; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
            if (*nfds < maxfds) fds[(*nfds)++] = fd; else { close(fd); *truncated = 1; }
        }
    }
    return n;
}

/* The process id and user id of the peer of a connected Unix socket (SO_PEERCRED). 0 or -errno. */
static inline int lb_peer_credentials(int sock, int *pid, unsigned int *uid) {
    struct { pid_t pid; uid_t uid; gid_t gid; } cred;
    socklen_t size = sizeof cred;
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &size) < 0) return -errno;
    *pid = (int)cred.pid;
    *uid = (unsigned int)cred.uid;
    return 0;
}

/* Fills `addr` for a Unix socket path; a leading '@' names the abstract namespace (as systemd's NOTIFY_SOCKET
   does). Returns the address length to pass to connect/sendto, or -ENAMETOOLONG / -EINVAL. */
static inline int lb_unix_address(const char *path, struct sockaddr_un *addr) {
    size_t len = strlen(path);
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    if (len == 0) return -EINVAL;
    if (len >= sizeof addr->sun_path) return -ENAMETOOLONG;
    memcpy(addr->sun_path, path, len);
    if (path[0] == '@') {
        addr->sun_path[0] = '\0';
        return (int)(offsetof(struct sockaddr_un, sun_path) + len);
    }
    return (int)(offsetof(struct sockaddr_un, sun_path) + len + 1);
}

/* A blocking, close-on-exec stream connection to the Unix socket at `path`. Returns the descriptor or -errno. */
static inline int lb_unix_connect(const char *path) {
    struct sockaddr_un addr;
    int size = lb_unix_address(path, &addr);
    int fd, r;
    if (size < 0) return size;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    do { r = connect(fd, (struct sockaddr *)&addr, (socklen_t)size); } while (r < 0 && errno == EINTR);
    if (r < 0) { int e = errno; close(fd); return -e; }
    return fd;
}

/* A listening, non-blocking, close-on-exec Unix stream socket bound to `path` (which must not exist). Made here
   rather than with uv_pipe_bind because libuv unlinks a path it bound when the handle closes, and after a hot
   upgrade that path belongs to the successor. Returns the descriptor or -errno. */
static inline int lb_unix_listen(const char *path, int backlog) {
    struct sockaddr_un addr;
    int size = lb_unix_address(path, &addr);
    int fd;
    if (size < 0) return size;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -errno;
    if (bind(fd, (struct sockaddr *)&addr, (socklen_t)size) < 0 || listen(fd, backlog) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* Sends one datagram to the Unix datagram socket at `path` (sd_notify's transport). 0 or -errno. */
static inline int lb_unix_datagram_send(const char *path, const void *buf, size_t len) {
    struct sockaddr_un addr;
    int size = lb_unix_address(path, &addr);
    int fd;
    ssize_t n;
    if (size < 0) return size;
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    n = sendto(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&addr, (socklen_t)size);
    if (n < 0) { int e = errno; close(fd); return -e; }
    close(fd);
    return 0;
}
#endif
