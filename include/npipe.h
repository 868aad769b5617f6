/*
 * npipe.h -- the one public header of npipe, a small, fast, non-blocking named-pipe library.
 *
 * npipe wraps Windows named pipes (IOCP) and Linux AF_UNIX sockets (epoll) behind one readiness
 * API in the manner of Rust mio: register a pipe with a poll, wait for NPIPE_READABLE /
 * NPIPE_WRITABLE, then call npipe_read / npipe_write until they return NPIPE_EAGAIN.
 *
 * ABI rules:
 *   - every function returns int32_t status codes (>= 0 success, < 0 an NPIPE_E* code) or int64_t
 *     byte counts; only fixed-width integers, size_t, intptr_t, pointers and UTF-8 strings appear;
 *   - no exception crosses this boundary, no callback is ever made, no caller pointer is kept;
 *   - strings returned by the library are owned by it: copy them, never free them;
 *   - structs that may grow start with `uint32_t size`; set it with the matching *_init function.
 *
 * Thread safety: every function may be called from any thread. One thread may read a pipe while
 * another writes it. Only one thread may wait on a given poll at a time (NPIPE_EBUSY otherwise).
 *
 * C99-clean: usable from C99 and later and from C++.
 *
 * Platform notes -- where the platforms differ, or this release reads a rule one particular way:
 *   - peer_unread (npipe_info_t): Windows reports the outbound quota in use (0 under Wine 8, whose
 *     pipe driver reports no quota); Linux reports the kernel send queue (SIOCOUTQ), which counts
 *     a little more than the payload and is exactly 0 once the peer has read everything.
 *   - read_available on a Linux message pipe counts payload bytes already framed in the library
 *     buffer plus raw kernel bytes (frame headers included).
 *   - Message mode (NPIPE_MESSAGE): both ends must ask for it. Nothing on the wire says which
 *     mode a peer uses, so a mismatch is reported only where noted:
 *       Linux frames each message as a 4-byte little-endian length + payload. Message server,
 *       byte client: the client reads the length headers as data (not detected). Byte server,
 *       message client: the bytes are read as frame headers; one announcing more than 16 MiB
 *       gives NPIPE_EIO ("... not writing in message mode"), a smaller one is taken as a length.
 *       Windows: message server, byte client: the client reads the payloads as one byte stream;
 *       byte server, message client: npipe_open fails with NPIPE_EINVAL (message read mode cannot
 *       be set). Every accepted write on a message-type pipe is one message, also for a client
 *       that did not ask for NPIPE_MESSAGE.
 *   - Linux one-way ends (NPIPE_INBOUND_ONLY / NPIPE_OUTBOUND_ONLY) use shutdown(): the wrong-
 *     direction call gets NPIPE_EACCES locally, the peer sees EOF / NPIPE_EPIPE in that direction.
 *   - Linux: whether an existing socket file belongs to a live server is asked of the kernel's
 *     socket table (sock_diag: a listening socket bound to that file), never by connecting to
 *     it, so creating a name another process serves gives NPIPE_EEXIST and disturbs nobody.
 *   - Accepted bytes that can no longer reach the peer are never dropped silently: they raise
 *     NPIPE_ERROR and npipe_take_error returns NPIPE_EPIPE once.
 *   - npipe_raw_handle after the pipe's poll was closed returns NPIPE_OK with the platform's
 *     invalid handle (INVALID_HANDLE_VALUE / -1): the OS handle was already released.
 *   - Opening a client: a name that does not exist yet is retried on a clock (the first retry
 *     within 1 ms, then doubling, at most 50 ms apart). On Windows a busy pipe is awaited: with
 *     NPIPE_NONBLOCK_OPEN by an asynchronous FSCTL_PIPE_WAIT completed through the poll's port (no
 *     thread), in the blocking npipe_open by WaitNamedPipeW bounded by the same schedule; remote
 *     names (\\server\pipe\x) use the clock only. On Linux a full listen backlog is retried on
 *     the same clock, and a name that does not exist yet is also watched (inotify on the socket's
 *     directory), so a server that comes is tried at once; without inotify the clock alone
 *     serves. The inotify descriptor is kept once made (closing one costs milliseconds): one per
 *     directory and poll until npipe_poll_close, one per thread that waited in npipe_open until
 *     the thread exits.
 *   - npipe_peer_identity: a Windows server learns who its client is only once the client's first
 *     bytes were received (NPIPE_EAGAIN before); Linux and the client side answer at once. Under
 *     Wine 8 the server side reports the server's own user (Wine impersonates the server itself,
 *     and all its processes run as one user) and cannot refuse an anonymous-level client.
 *   - npipe_drain: Windows counts a read the peer has pending as read (the bytes are in the peer's
 *     process); Wine 8 reports no write quota, so under Wine a pipe counts as drained once flushed.
 *     Only Linux can tell, after the fact, that a peer left without reading everything.
 *   - npipe_wait drives the pipe with a private poll. Nobody waits on that poll once the pipe is
 *     closed, so npipe_close of such a pipe releases it at once without a linger: when the last
 *     bytes matter, call npipe_flush until it answers NPIPE_OK before closing. npipe_wait's
 *     NPIPE_WRITABLE is the level "a write would not answer NPIPE_EAGAIN" (room in the buffer), so
 *     it does not say when a flush completed: pause between the npipe_flush attempts.
 */
#ifndef NPIPE_H
#define NPIPE_H

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------------------------------- */
/* Export and calling-convention macros                                                           */
/* ---------------------------------------------------------------------------------------------- */

#if defined(_WIN32)
#  define NPIPE_CALL __cdecl
#  if defined(NPIPE_BUILDING)
#    define NPIPE_API __declspec(dllexport)
#  elif defined(NPIPE_STATIC)
#    define NPIPE_API
#  else
#    define NPIPE_API __declspec(dllimport)
#  endif
#else
#  define NPIPE_CALL
#  if defined(NPIPE_BUILDING) && defined(__GNUC__)
#    define NPIPE_API __attribute__((visibility("default")))
#  else
#    define NPIPE_API
#  endif
#endif

#ifdef __cplusplus
#  define NPIPE_BEGIN_DECLS extern "C" {
#  define NPIPE_END_DECLS }
#  if __cplusplus >= 201103L
#    define NPIPE_NOEXCEPT noexcept
#  else
#    define NPIPE_NOEXCEPT
#  endif
#else
#  define NPIPE_BEGIN_DECLS
#  define NPIPE_END_DECLS
#  define NPIPE_NOEXCEPT
#endif

/* Compile-time size checks usable from C99 (no _Static_assert), C11 and C++. */
#if defined(__cplusplus) && __cplusplus >= 201103L
#  define NPIPE_STATIC_ASSERT(cond, tag) static_assert(cond, #tag)
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#  define NPIPE_STATIC_ASSERT(cond, tag) _Static_assert(cond, #tag)
#else
#  define NPIPE_STATIC_ASSERT(cond, tag) typedef char npipe_static_assert_##tag[(cond) ? 1 : -1]
#endif

NPIPE_BEGIN_DECLS

/* ---------------------------------------------------------------------------------------------- */
/* Version                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

#define NPIPE_VERSION_MAJOR 1
#define NPIPE_VERSION_MINOR 1
#define NPIPE_VERSION_PATCH 0

/* Returns NPIPE_VERSION_MAJOR << 16 | MINOR << 8 | PATCH of the loaded library. Bindings require the
 * same major version as the header they were written against. */
NPIPE_API uint32_t NPIPE_CALL npipe_version(void) NPIPE_NOEXCEPT;
/* Returns "MAJOR.MINOR.PATCH" (static storage, never NULL). */
NPIPE_API const char *NPIPE_CALL npipe_version_string(void) NPIPE_NOEXCEPT;

/* ---------------------------------------------------------------------------------------------- */
/* Status codes (part of the ABI; new codes only arrive in minor versions)                         */
/* ---------------------------------------------------------------------------------------------- */

#define NPIPE_OK             0   /* success */
#define NPIPE_EAGAIN        (-1) /* would block: wait for the matching readiness event */
#define NPIPE_EINVAL        (-2) /* invalid argument: NULL, unknown flag bits, bad size field, bad name */
#define NPIPE_EBADF         (-3) /* not a live handle of the expected kind */
#define NPIPE_ENOENT        (-4) /* no pipe of that name; (re/de)register of an unregistered pipe */
#define NPIPE_EBUSY         (-5) /* all instances busy; second concurrent npipe_poll_wait; wake set full */
#define NPIPE_EEXIST        (-6) /* name in use with NPIPE_FIRST_INSTANCE; pipe bound to another poll */
#define NPIPE_EACCES        (-7) /* access denied: security, current-user check, wrong direction */
#define NPIPE_EPIPE         (-8) /* the peer is gone */
#define NPIPE_ENOTCONN      (-9) /* server instance not connected */
#define NPIPE_ETIMEDOUT    (-10) /* deadline passed */
#define NPIPE_ENOMEM       (-11) /* out of memory */
#define NPIPE_ENAMETOOLONG (-12) /* name too long for the platform, or output buffer too small */
#define NPIPE_EMSGSIZE     (-13) /* message larger than 16 MiB (message mode) */
#define NPIPE_ENOTSUP      (-14) /* not supported on this platform or in this mode */
#define NPIPE_ECANCELED    (-15) /* the pipe's poll was closed: no more progress possible */
#define NPIPE_EIO          (-99) /* any other OS failure: see npipe_last_os_error() */

/* Static English text for a status code; never NULL, also for unknown codes. */
NPIPE_API const char *NPIPE_CALL npipe_strerror(int status) NPIPE_NOEXCEPT;
/* The code's name ("NPIPE_EAGAIN"); "NPIPE_EUNKNOWN" for unknown codes. Never NULL. */
NPIPE_API const char *NPIPE_CALL npipe_err_name(int status) NPIPE_NOEXCEPT;
/* Thread-local: the raw GetLastError()/errno behind the last failing call on this thread, 0 if none. */
NPIPE_API uint32_t NPIPE_CALL npipe_last_os_error(void) NPIPE_NOEXCEPT;
/* Thread-local: a specific message for the last failing call on this thread (e.g. "pipe is not
 * registered with a poll"). Never NULL ("no error" before any failure). Valid until the next failing
 * npipe call on this thread. Successful calls and these four query functions leave it alone. */
NPIPE_API const char *NPIPE_CALL npipe_last_error_message(void) NPIPE_NOEXCEPT;

/* ---------------------------------------------------------------------------------------------- */
/* Handles                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

/* 0 is never valid; every valid handle has a bit at or above bit 32 set (the generation), so a
 * binding that truncates handles to 32 bits fails at once. Closed, stale, never-issued or
 * wrong-kind handles give NPIPE_EBADF, never a crash. */
typedef uint64_t npipe_t;       /* a pipe end: server instance or client */
typedef uint64_t npipe_poll_t;  /* a reactor */

/* ---------------------------------------------------------------------------------------------- */
/* The poll (reactor)                                                                             */
/* ---------------------------------------------------------------------------------------------- */

typedef struct npipe_event_t {
    uint64_t token;    /* the token given at (re)registration, or to npipe_poll_wake */
    uint32_t events;   /* NPIPE_READABLE | NPIPE_WRITABLE | ... : all flags of one pipe in one event */
    uint32_t reserved; /* 0 */
} npipe_event_t; /* 16 bytes */

#define NPIPE_READABLE      0x01u  /* interest and event */
#define NPIPE_WRITABLE      0x02u  /* interest and event */
#define NPIPE_ERROR         0x04u  /* event: a background operation failed; npipe_take_error() says which */
#define NPIPE_READ_CLOSED   0x08u  /* event: the peer will send nothing more (EOF is, or will be, readable) */
#define NPIPE_WRITE_CLOSED  0x10u  /* event: writes can no longer reach the peer */
#define NPIPE_WAKE          0x20u  /* event: from npipe_poll_wake */
#define NPIPE_CONNECTED     0x40u  /* event: a server's npipe_connect finished (check npipe_take_error) */
#define NPIPE_LEVEL         0x100u /* interest modifier: level-triggered instead of edge-triggered */

/* Creates a poll. *out receives the handle. Returns NPIPE_OK, NPIPE_EINVAL (out NULL), NPIPE_ENOMEM
 * or NPIPE_EIO. Close it with npipe_poll_close. */
NPIPE_API int32_t NPIPE_CALL npipe_poll_create(npipe_poll_t *out) NPIPE_NOEXCEPT;
/* Closes a poll. Pipes registered with it make no more progress (their calls return
 * NPIPE_ECANCELED) and the OS handles of its already-closed pipes are released at once. A thread
 * blocked in npipe_poll_wait on it returns NPIPE_EBADF or its events. Second close: NPIPE_EBADF. */
NPIPE_API int32_t NPIPE_CALL npipe_poll_close(npipe_poll_t poll) NPIPE_NOEXCEPT;
/* Registers a pipe with `interests` (NPIPE_READABLE | NPIPE_WRITABLE, optionally | NPIPE_LEVEL).
 * Events carry `token`. The current state is re-evaluated: buffered data gives NPIPE_READABLE,
 * room to write on a connected pipe gives NPIPE_WRITABLE. A pipe is bound for life to the first poll
 * it was registered with; another poll gives NPIPE_EEXIST, as does registering twice. */
NPIPE_API int32_t NPIPE_CALL npipe_register(npipe_poll_t poll, npipe_t pipe, uint64_t token, uint32_t interests) NPIPE_NOEXCEPT;
/* Changes token and interests of a registered pipe, re-evaluating the current state.
 * NPIPE_ENOENT if the pipe is not registered, NPIPE_EEXIST if registered with another poll. */
NPIPE_API int32_t NPIPE_CALL npipe_reregister(npipe_poll_t poll, npipe_t pipe, uint64_t token, uint32_t interests) NPIPE_NOEXCEPT;
/* Removes the registration: no npipe_poll_wait that starts after this returns reports its token.
 * NPIPE_ENOENT if not registered, NPIPE_EEXIST if registered with another poll. */
NPIPE_API int32_t NPIPE_CALL npipe_deregister(npipe_poll_t poll, npipe_t pipe) NPIPE_NOEXCEPT;
/* Waits for events and writes up to `capacity` of them to `events`. Returns the count (0 on timeout)
 * or an error. timeout_ms < 0 waits forever, 0 returns at once; a finite timeout is honoured in full.
 * Pipes beyond `capacity` are reported by the next wait. NPIPE_EBUSY if another thread is waiting. */
NPIPE_API int32_t NPIPE_CALL npipe_poll_wait(npipe_poll_t poll, npipe_event_t *events, size_t capacity, int32_t timeout_ms) NPIPE_NOEXCEPT;
/* Makes the current or next npipe_poll_wait return {token, NPIPE_WAKE}. Thread-safe; wakes with one
 * token coalesce into one event; at least 64 distinct tokens may be pending (NPIPE_EBUSY beyond). */
NPIPE_API int32_t NPIPE_CALL npipe_poll_wake(npipe_poll_t poll, uint64_t token) NPIPE_NOEXCEPT;

/* ---------------------------------------------------------------------------------------------- */
/* Pipes                                                                                          */
/* ---------------------------------------------------------------------------------------------- */

#define NPIPE_FIRST_INSTANCE     0x01u  /* server: fail with NPIPE_EEXIST if the name exists */
#define NPIPE_MESSAGE            0x02u  /* message mode (server and client) */
#define NPIPE_INBOUND_ONLY       0x04u  /* server reads only / client opens for reading only */
#define NPIPE_OUTBOUND_ONLY      0x08u  /* server writes only / client opens for writing only */
#define NPIPE_ALLOW_REMOTE       0x10u  /* server: accept remote clients (default: rejected) */
#define NPIPE_CURRENT_USER_ONLY  0x20u  /* server: only the current user may connect; client: refuse a
                                           server owned by another user */
#define NPIPE_NONBLOCK_OPEN      0x40u  /* client: return at once, connect in the background (see
                                           npipe_open) */

typedef struct npipe_server_options_t {
    uint32_t size;             /* sizeof(npipe_server_options_t) */
    uint32_t flags;            /* NPIPE_FIRST_INSTANCE | NPIPE_MESSAGE | ... */
    uint32_t max_instances;    /* 0 = unlimited, else 1..254 */
    uint32_t in_buffer_size;   /* OS buffer hint in bytes, 0 = 64 KiB */
    uint32_t out_buffer_size;  /* OS buffer hint in bytes, 0 = 64 KiB */
    int32_t  linger_ms;        /* how long npipe_close keeps delivering accepted bytes:
                                  0 = default (1000 ms), > 0 = that long, < 0 = discard at once */
    const char *sddl;          /* Windows: security descriptor in SDDL, NULL = default; other platforms:
                                  NULL, or NPIPE_ENOTSUP */
} npipe_server_options_t;     /* 32 bytes */

typedef struct npipe_client_options_t {
    uint32_t size;             /* sizeof(npipe_client_options_t) */
    uint32_t flags;            /* NPIPE_MESSAGE | NPIPE_INBOUND_ONLY | NPIPE_OUTBOUND_ONLY | NPIPE_CURRENT_USER_ONLY */
    int32_t  timeout_ms;       /* keep retrying while the pipe is busy or does not exist yet:
                                  0 = fail at once (NPIPE_EBUSY / NPIPE_ENOENT), < 0 = forever,
                                  else give up with NPIPE_ETIMEDOUT */
    int32_t  linger_ms;        /* as for servers */
} npipe_client_options_t;     /* 16 bytes */

/* Fill an options struct with the defaults (size set, everything else 0). NULL is ignored. */
NPIPE_API void NPIPE_CALL npipe_server_options_init(npipe_server_options_t *opts) NPIPE_NOEXCEPT;
NPIPE_API void NPIPE_CALL npipe_client_options_init(npipe_client_options_t *opts) NPIPE_NOEXCEPT;

/* Creates one IDLE server instance of `name` ("foo" or "\\.\pipe\foo"). opts may be NULL (defaults:
 * duplex, byte mode, unlimited instances, 64 KiB buffers, remote clients rejected). More instances of
 * the same name are more calls without NPIPE_FIRST_INSTANCE. *out receives the handle.
 * Errors: NPIPE_EINVAL (bad name, flags, options), NPIPE_ENAMETOOLONG, NPIPE_EEXIST, NPIPE_EBUSY
 * (max_instances reached), NPIPE_EACCES, NPIPE_ENOTSUP, NPIPE_EIO. */
NPIPE_API int32_t NPIPE_CALL npipe_create(const char *name, const npipe_server_options_t *opts, npipe_t *out) NPIPE_NOEXCEPT;
/* Starts waiting for a client: NPIPE_EAGAIN while waiting (an NPIPE_CONNECTED event follows, then
 * call npipe_take_error), NPIPE_OK once connected, or the failure of the last attempt (clearing it).
 * On a pipe not yet registered it returns NPIPE_EAGAIN and the wait starts at registration.
 * NPIPE_EINVAL on a client end. */
NPIPE_API int32_t NPIPE_CALL npipe_connect(npipe_t server) NPIPE_NOEXCEPT;
/* Drops the client of a server instance (unread data is discarded), cancels pending operations and
 * resets all per-connection state; the instance is IDLE and npipe_connect may be called again. */
NPIPE_API int32_t NPIPE_CALL npipe_disconnect(npipe_t server) NPIPE_NOEXCEPT;
/* Returns the first background failure once and clears it (NPIPE_OK if none). After NPIPE_CONNECTED:
 * NPIPE_OK if a client is connected, else why the connect failed (a failed wait for a client is
 * returned before any background failure). */
NPIPE_API int32_t NPIPE_CALL npipe_take_error(npipe_t pipe) NPIPE_NOEXCEPT;
/* Opens a client end. opts may be NULL (duplex, byte mode, fail at once). Busy or absent servers are
 * retried until timeout_ms without spinning. Errors: NPIPE_ENOENT, NPIPE_EBUSY, NPIPE_ETIMEDOUT,
 * NPIPE_EACCES, NPIPE_EINVAL, NPIPE_ENAMETOOLONG, NPIPE_ENOTSUP, NPIPE_EIO.
 * With NPIPE_NONBLOCK_OPEN it checks the name and options (those errors come at once) and returns
 * NPIPE_OK with a pipe that is CONNECTING, making no OS wait on the caller's thread. The attempts
 * start at registration and are driven by the pipe's poll until one succeeds or timeout_ms (counted
 * from this call; 0 = one attempt, < 0 = forever) passes. When the open ends, the pipe reports
 * NPIPE_CONNECTED (and NPIPE_WRITABLE if registered for it); npipe_take_error then returns
 * NPIPE_OK or the failure (NPIPE_ENOENT / NPIPE_EBUSY with timeout 0, NPIPE_ETIMEDOUT, NPIPE_EACCES,
 * ...), and every I/O call returns that failure from then on: close the pipe. While CONNECTING,
 * npipe_read, npipe_write and npipe_flush return NPIPE_EAGAIN ("connection in progress");
 * npipe_close cancels the attempt at once. */
NPIPE_API int32_t NPIPE_CALL npipe_open(const char *name, const npipe_client_options_t *opts, npipe_t *out) NPIPE_NOEXCEPT;
/* Adopts an OS handle (Windows: a pipe handle opened for overlapped I/O; Linux: a connected AF_UNIX
 * stream socket). On success the library owns it; on failure the caller keeps it.
 * flags: 0 or NPIPE_MESSAGE (read in message mode); other bits give NPIPE_EINVAL. */
NPIPE_API int32_t NPIPE_CALL npipe_from_raw_handle(intptr_t raw, uint32_t flags, npipe_t *out) NPIPE_NOEXCEPT;
/* Lends the OS handle; ownership stays with the library (do not close it). It is for asking the OS
 * (socket options, the peer's credentials, handle inheritance), not for I/O: bytes read or written
 * through it bypass the library's buffers, framing and readiness. (On Linux a socket npipe_wait
 * has received on is in blocking mode; the library's own calls never block on it.) */
NPIPE_API int32_t NPIPE_CALL npipe_raw_handle(npipe_t pipe, intptr_t *out) NPIPE_NOEXCEPT;
/* Writes the OS name `name` maps to (NUL-terminated) into buf and returns its length (without the
 * NUL), or NPIPE_ENAMETOOLONG when len is too small. buf may be NULL with len 0 to ask the length. */
NPIPE_API int32_t NPIPE_CALL npipe_resolve_name(const char *name, char *buf, size_t len) NPIPE_NOEXCEPT;

/* Copies up to len buffered bytes: > 0 the count, NPIPE_EAGAIN when nothing is there yet, 0 at the
 * end of the connection (sticky), or 0 for len == 0. On a message pipe it returns at most one
 * message's bytes and skips empty messages. */
NPIPE_API int64_t NPIPE_CALL npipe_read(npipe_t pipe, void *buf, size_t len) NPIPE_NOEXCEPT;
/* Copies bytes into the internal write buffer and returns how many it took (> 0, maybe fewer than
 * len; message mode: all or NPIPE_EAGAIN); NPIPE_EAGAIN when full; NPIPE_EPIPE once the peer left.
 * len == 0 returns 0 (message mode: sends an empty message). */
NPIPE_API int64_t NPIPE_CALL npipe_write(npipe_t pipe, const void *buf, size_t len) NPIPE_NOEXCEPT;
typedef struct npipe_iovec_t { void *base; size_t len; } npipe_iovec_t;
/* npipe_read / npipe_write over all the buffers in order (npipe_writev sends one message in message
 * mode). iovcnt 0 returns 0; iov NULL with iovcnt > 0 is NPIPE_EINVAL. */
NPIPE_API int64_t NPIPE_CALL npipe_readv(npipe_t pipe, const npipe_iovec_t *iov, size_t iovcnt) NPIPE_NOEXCEPT;
NPIPE_API int64_t NPIPE_CALL npipe_writev(npipe_t pipe, const npipe_iovec_t *iov, size_t iovcnt) NPIPE_NOEXCEPT;
/* Reads at most one message: *msg_flags gets NPIPE_MSG_PARTIAL when the rest of the same message
 * follows, NPIPE_MSG_EMPTY for a zero-length message (returns 0); 0 without flags is EOF. A message
 * that fits in len comes whole: while only part of it has arrived the read answers NPIPE_EAGAIN.
 * In byte mode it behaves like npipe_read with flags 0. msg_flags may be NULL. */
NPIPE_API int64_t NPIPE_CALL npipe_read_msg(npipe_t pipe, void *buf, size_t len, uint32_t *msg_flags) NPIPE_NOEXCEPT;
#define NPIPE_MSG_PARTIAL 0x1u     /* more of this message follows */
#define NPIPE_MSG_EMPTY   0x2u     /* a zero-length message was read (not EOF) */
/* NPIPE_OK when every accepted byte has been handed to the OS and completed; NPIPE_EAGAIN otherwise
 * (an NPIPE_WRITABLE event follows when done). */
NPIPE_API int32_t NPIPE_CALL npipe_flush(npipe_t pipe) NPIPE_NOEXCEPT;
/* Invalidates the handle at once and never blocks. Accepted bytes keep draining in the background
 * for at most linger_ms while the owning poll is waited on; then the OS handle is closed. */
NPIPE_API int32_t NPIPE_CALL npipe_close(npipe_t pipe) NPIPE_NOEXCEPT;

#define NPIPE_INFO_SERVER     0x10000u
#define NPIPE_INFO_CONNECTED  0x20000u
typedef struct npipe_info_t {
    uint32_t size;             /* in: sizeof(npipe_info_t); out: bytes written */
    uint32_t flags;            /* NPIPE_INFO_SERVER, NPIPE_INFO_CONNECTED (a peer is connected and
                                  has not left), plus the creation flags (NPIPE_MESSAGE,
                                  NPIPE_INBOUND_ONLY, NPIPE_OUTBOUND_ONLY, ...) */
    uint32_t in_buffer_size;
    uint32_t out_buffer_size;
    uint32_t max_instances;    /* 0 = unlimited */
    uint32_t reserved;
    uint64_t peer_pid;         /* 0 only if the platform cannot tell */
    uint64_t bytes_read;       /* delivered to the caller, lifetime of the handle */
    uint64_t bytes_written;    /* accepted from the caller, lifetime of the handle */
    uint64_t write_pending;    /* accepted but not yet completed by the OS */
    uint64_t read_available;   /* bytes that npipe_read could return now (library buffer + OS) */
    uint64_t peer_unread;      /* bytes written that the peer has not read yet (OS outbound queue) */
    uint32_t waiting_instances;  /* listener: instances waiting for clients now (Linux: 0) */
    uint32_t pending_accepts;    /* listener: connected pipes not yet accepted */
} npipe_info_t;               /* 80 bytes; callers built against 1.0's 72 keep working */
/* Fills *info up to min(info->size, sizeof) and sets info->size to the count written. */
NPIPE_API int32_t NPIPE_CALL npipe_get_info(npipe_t pipe, npipe_info_t *info) NPIPE_NOEXCEPT;

/* ---- Listener (release 1.1) -------------------------------------------------------------------
 * A listener is an npipe_t of a third kind that keeps instances of a name waiting for clients and
 * hands out connected pipes, so no client sees "busy" because the server was busy. npipe_register,
 * npipe_reregister, npipe_deregister, npipe_close, npipe_get_info, npipe_take_error and npipe_wait
 * take it; every other pipe call gives NPIPE_EBADF for it, and npipe_accept gives NPIPE_EBADF for
 * anything else. Like a pipe, a listener makes progress once registered.
 *   - NPIPE_READABLE (edge, or level with NPIPE_LEVEL): a connected pipe waits to be accepted.
 *   - Windows: while registered and fewer than max_pending pipes wait to be accepted, at least
 *     spare_instances instances wait for clients; a connected one is replaced as soon as its
 *     completion is processed; a burst that takes every waiting instance between two refills
 *     doubles the number kept waiting (up to 64), and after a second without one the surplus is
 *     closed again; with max_pending pipes pending no instance is created until one is accepted.
 *   - Linux: the name's one listening socket is the pool (spare_instances has no effect): the
 *     library accepts connections as they come, up to max_pending not yet accepted; beyond that
 *     the kernel's backlog fills and clients see NPIPE_EBUSY.
 *   - A failure to create an instance raises NPIPE_ERROR (npipe_take_error returns it) and is
 *     retried on the poll's clock with backoff, at most 1 s apart. */
typedef struct npipe_listener_options_t {
    uint32_t size;             /* sizeof(npipe_listener_options_t) */
    uint32_t flags;            /* as for servers: NPIPE_FIRST_INSTANCE | NPIPE_MESSAGE | NPIPE_INBOUND_ONLY |
                                  NPIPE_OUTBOUND_ONLY | NPIPE_ALLOW_REMOTE | NPIPE_CURRENT_USER_ONLY */
    uint32_t in_buffer_size;   /* as for servers, for every instance; 0 = 64 KiB */
    uint32_t out_buffer_size;
    int32_t  linger_ms;        /* given to every accepted pipe, as for servers */
    uint32_t spare_instances;  /* instances kept waiting for clients when idle: 0 = 4, else 1..64 */
    uint32_t max_pending;      /* connected pipes not yet accepted: 0 = 128, else 1..4096 */
    uint32_t reserved;         /* must be 0 */
    const char *sddl;          /* as for servers */
} npipe_listener_options_t;   /* 40 bytes */

#define NPIPE_INFO_LISTENER 0x40000u   /* npipe_info_t.flags of a listener */

/* Sets size and the defaults (every other field 0). */
NPIPE_API void NPIPE_CALL npipe_listener_options_init(npipe_listener_options_t *opts) NPIPE_NOEXCEPT;
/* Creates the name at once (NPIPE_FIRST_INSTANCE fails here with NPIPE_EEXIST); a client may open it
 * from then on. opts may be NULL. Errors as for npipe_create, and NPIPE_EINVAL for out-of-range
 * spare_instances / max_pending or a non-zero reserved field. */
NPIPE_API int32_t NPIPE_CALL npipe_listen(const char *name, const npipe_listener_options_t *opts, npipe_t *out) NPIPE_NOEXCEPT;
/* NPIPE_OK with a connected server pipe in *out, or NPIPE_EAGAIN when none waits. The pipe is
 * registered nowhere and can be registered only with the listener's poll (NPIPE_EEXIST for any
 * other); it behaves like a connected npipe_create instance (npipe_disconnect then npipe_connect
 * reuse it). A client that connected and left before npipe_accept is still accepted: its data is
 * readable, then EOF. npipe_close of the listener closes the instances still waiting and the pipes
 * not accepted yet (their clients see EOF / a broken pipe), returns at once and never hangs; pipes
 * already accepted are not affected. */
NPIPE_API int32_t NPIPE_CALL npipe_accept(npipe_t listener, npipe_t *out) NPIPE_NOEXCEPT;

/* Waits on one pipe that is not registered with a poll of the caller's: blocks until one of
 * `interests` (NPIPE_READABLE, NPIPE_WRITABLE or both; anything else or 0 is NPIPE_EINVAL) holds
 * and returns the condition bits that hold now (> 0), or 0 when timeout_ms passed (< 0 forever,
 * 0 just looks). Level, not edge: NPIPE_READABLE = a read would not answer NPIPE_EAGAIN (data,
 * EOF or a failure); NPIPE_WRITABLE = a write would not answer NPIPE_EAGAIN, so a failed connect
 * or open counts for both, and so does the direction a one-way end cannot use, once connected; NPIPE_CONNECTED is added once a server's connect or a client's open has
 * ended. The library drives the pipe with a private poll, created by the first call, and the pipe
 * is bound to it for life (a later npipe_register gives NPIPE_EEXIST); a pipe registered with a
 * poll of the caller's, now or before, gives NPIPE_EEXIST ("wait on its poll instead"). Several
 * threads may wait on one pipe at once; npipe_close from another thread ends every wait on it with
 * NPIPE_EBADF. A blocking read is npipe_read, then on NPIPE_EAGAIN npipe_wait(READABLE) and
 * npipe_read again. Where reads usually have to wait (a peer that answers requests), waiting
 * first is cheaper, and the bindings do so after a read that had to wait: npipe_wait returns at
 * once when bytes are there, and on Windows a read that found nothing leaves a read pending that
 * the wait must then take from the port.
 * A wait for NPIPE_READABLE alone on a byte pipe, with nothing buffered either way and no other
 * thread waiting, waits inside the OS's read and buffers what it takes (Linux: the socket's recv,
 * a blocking read in two system calls instead of three; Windows: a ReadFile waited for on its
 * event, not on the private completion port, which costs two dequeues more per wait; on Windows
 * only when no read of the poll's is pending, as after a wait that came first). Meanwhile a read
 * on another thread takes only what is buffered, and a write on another thread takes only what the
 * OS takes at once (Linux: what the kernel takes; Windows: what one WriteFile carries, when
 * nothing else waits to be written), with fewer bytes or NPIPE_EAGAIN, then NPIPE_WRITABLE when
 * the OS has room, since nothing would hand bytes left in the write buffer to the OS until the
 * wait ends. */
NPIPE_API int32_t NPIPE_CALL npipe_wait(npipe_t pipe, uint32_t interests, int32_t timeout_ms) NPIPE_NOEXCEPT;

/* ---------------------------------------------------------------------------------------------- */
/* The peer: who is on the other end, and whether it has read what was written                    */
/* ---------------------------------------------------------------------------------------------- */

#define NPIPE_PEER_SAME_USER 0x1u     /* the peer runs as this process's user */

typedef struct npipe_peer_t {
    uint32_t size;             /* in: sizeof(npipe_peer_t); out: bytes written */
    uint32_t flags;            /* NPIPE_PEER_SAME_USER */
    uint64_t pid;              /* the peer's process id; 0 if unknown. Informative only: on Windows a
                                  client can fake it, and ids are reused */
    uint32_t uid;              /* Linux: the peer's uid; Windows: UINT32_MAX */
    uint32_t gid;              /* Linux: the peer's gid; Windows: UINT32_MAX */
    char     sid[192];         /* Windows: the peer's user SID ("S-1-5-21-..."), NUL-terminated; Linux: "" */
} npipe_peer_t;               /* 216 bytes */

/* Who is on the other end of a connected pipe: a server learns its client, a client its server.
 * out->size must be at least sizeof(npipe_peer_t) (else NPIPE_EINVAL); *out is filled up to
 * min(size, sizeof) and size is set to the count written; on failure *out is left alone. The
 * answer is read from the OS once per connection and kept (it does not change while the peer is
 * connected, and stays after it left). Needs no poll.
 * Returns NPIPE_OK, or NPIPE_EAGAIN (a Windows server whose client has sent nothing yet, see below;
 * a client still connecting), NPIPE_ENOTCONN (a server without a client), NPIPE_EACCES (Windows: a
 * client that allows only anonymous impersonation), NPIPE_EBADF, NPIPE_EINVAL, NPIPE_ECANCELED,
 * a failed open's failure, or NPIPE_EIO.
 * Where the values come from:
 *   Linux, both sides: SO_PEERCRED (pid, uid, gid; a client's as of its connect(), a server's as of
 *     its listen()). NPIPE_PEER_SAME_USER: the uid is this process's effective uid.
 *   Windows, server side: the user of the client's token, read at identification level (npipe
 *     clients open with SECURITY_IDENTIFICATION) with ImpersonateNamedPipeClient + OpenThreadToken +
 *     GetTokenInformation(TokenUser) on the calling thread, which has its own token back before the
 *     call returns (RevertToSelf; a thread that was impersonating someone keeps doing so). Windows
 *     allows this only after a message of the client was read, so until the library has received
 *     the client's first bytes the answer is NPIPE_EAGAIN ("the client has sent nothing yet"): read,
 *     then ask again. pid: GetNamedPipeClientProcessId.
 *   Windows, client side: the owner of the pipe object (GetSecurityInfo); where the descriptor has
 *     no owner (the default descriptor under Wine) or the owner is the Administrators group (a
 *     server running elevated), the user of the server process's token. pid:
 *     GetNamedPipeServerProcessId.
 *   Windows, NPIPE_PEER_SAME_USER: the peer's SID is this process's user SID or its default owner
 *     (so an elevated administrator's own servers count as the same user). A client opened with
 *     NPIPE_CURRENT_USER_ONLY makes this same check and refuses the server without it.
 *   Wine 8: ImpersonateNamedPipeClient takes on the server's own token whatever the client sent, so
 *     the server side reports the server's own user (all Wine processes run as one user, so the SID
 *     is right there) and cannot refuse an anonymous-level client; the NPIPE_EAGAIN rule holds. */
NPIPE_API int32_t NPIPE_CALL npipe_peer_identity(npipe_t pipe, npipe_peer_t *out) NPIPE_NOEXCEPT;

/* NPIPE_OK once the peer has read every byte accepted by npipe_write on this connection (at once
 * when nothing was); NPIPE_EPIPE if the peer left while bytes were undelivered as far as the
 * library can tell; otherwise NPIPE_EAGAIN, and NPIPE_WRITABLE follows when the pipe is drained or
 * the peer left (call again to learn which). The library re-checks on the clock of the pipe's poll
 * (the first check within 1 ms, then doubling, at most 50 ms apart) while that poll is waited on:
 * no thread and no blocking FlushFileBuffers. The other answers are npipe_flush's (NPIPE_ENOTCONN,
 * NPIPE_ECANCELED, NPIPE_EAGAIN for a pipe not registered with a poll or still connecting, ...).
 * The server pattern that loses nothing: write the response, npipe_drain until NPIPE_OK, then
 * npipe_disconnect (which, like DisconnectNamedPipe, discards what the client has not read).
 * npipe_wait's NPIPE_WRITABLE means "a write would not block", which usually holds while a drain
 * waits: a pipe driven by npipe_wait learns the end of a drain only by calling npipe_drain again.
 * Where "the peer has read" comes from:
 *   Linux: the kernel's count of bytes the peer has not read yet (SIOCOUTQ == 0). A peer that
 *     closes with bytes unread resets the connection, so there NPIPE_EPIPE is exact.
 *   Windows: the write quota (NtQueryInformationFile(FilePipeLocalInformation): drained when
 *     WriteQuotaAvailable == OutboundQuota). A read the peer has pending counts as read: the bytes
 *     are in the peer's process (an npipe peer keeps one pending). A peer that has left cannot be
 *     asked: then NPIPE_EPIPE only for bytes still in this end's buffer or still counted by the
 *     system, else NPIPE_OK.
 *   Wine 8 reports no write quota: there a pipe counts as drained once flushed. */
NPIPE_API int32_t NPIPE_CALL npipe_drain(npipe_t pipe) NPIPE_NOEXCEPT;

NPIPE_STATIC_ASSERT(sizeof(npipe_event_t) == 16, npipe_event_t_is_16_bytes);
NPIPE_STATIC_ASSERT(sizeof(npipe_client_options_t) == 16, npipe_client_options_t_is_16_bytes);
NPIPE_STATIC_ASSERT(sizeof(npipe_server_options_t) == 32, npipe_server_options_t_is_32_bytes);
NPIPE_STATIC_ASSERT(sizeof(npipe_info_t) == 80, npipe_info_t_is_80_bytes);
NPIPE_STATIC_ASSERT(sizeof(npipe_listener_options_t) == 40, npipe_listener_options_t_is_40_bytes);
NPIPE_STATIC_ASSERT(sizeof(npipe_peer_t) == 216, npipe_peer_t_is_216_bytes);

NPIPE_END_DECLS

#endif /* NPIPE_H */
