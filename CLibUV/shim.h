#ifndef DEVTS_CLIBUV_SHIM_H
#define DEVTS_CLIBUV_SHIM_H

#include <uv.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>

/* Small helpers for things Swift cannot express directly against libuv's headers. */

/// The thread id of the caller, as an integer Swift can compare.
static inline uint64_t clibuv_thread_id(void) {
    return (uint64_t)pthread_self();
}

/// Names the calling thread (at most 15 bytes are kept), for debuggers and `top -H`.
static inline void clibuv_set_thread_name(const char *name) {
    prctl(PR_SET_NAME, name, 0, 0, 0);
}

/// Cast helpers: uv_tcp_t / uv_timer_t are "subclasses" of uv_handle_t / uv_stream_t in C.
static inline uv_handle_t *clibuv_tcp_as_handle(uv_tcp_t *t) { return (uv_handle_t *)t; }
static inline uv_stream_t *clibuv_tcp_as_stream(uv_tcp_t *t) { return (uv_stream_t *)t; }
static inline uv_handle_t *clibuv_timer_as_handle(uv_timer_t *t) { return (uv_handle_t *)t; }
static inline uv_handle_t *clibuv_async_as_handle(uv_async_t *t) { return (uv_handle_t *)t; }
static inline uv_handle_t *clibuv_check_as_handle(uv_check_t *t) { return (uv_handle_t *)t; }

/// Reads the port of an IPv4 or IPv6 socket address in host byte order; 0 for other families.
static inline int clibuv_sockaddr_port(const struct sockaddr_storage *ss) {
    if (ss->ss_family == AF_INET) return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    if (ss->ss_family == AF_INET6) return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    return 0;
}

/// Writes the numeric host of an IPv4 or IPv6 socket address into dst; returns a libuv error code.
static inline int clibuv_sockaddr_host(const struct sockaddr_storage *ss, char *dst, size_t size) {
    if (ss->ss_family == AF_INET) return uv_ip4_name((const struct sockaddr_in *)ss, dst, size);
    if (ss->ss_family == AF_INET6) return uv_ip6_name((const struct sockaddr_in6 *)ss, dst, size);
    return UV_EAFNOSUPPORT;
}

#endif
