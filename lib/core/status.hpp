// Status codes of npipe: one table generates the values, names and messages (libuv style).
// The values are part of the ABI and must equal the NPIPE_E* macros of include/npipe.h
// (capi/ static_asserts this).
#pragma once
#include <cstdint>

#define NPIPE_STATUS_TABLE(X)                              \
    X(OK, 0, "success")                                    \
    X(EAGAIN, -1, "operation would block")                 \
    X(EINVAL, -2, "invalid argument")                      \
    X(EBADF, -3, "not a live handle of the expected kind") \
    X(ENOENT, -4, "no pipe of that name")                  \
    X(EBUSY, -5, "resource busy")                          \
    X(EEXIST, -6, "already exists")                        \
    X(EACCES, -7, "access denied")                         \
    X(EPIPE, -8, "the peer is gone")                       \
    X(ENOTCONN, -9, "pipe is not connected")               \
    X(ETIMEDOUT, -10, "timed out")                         \
    X(ENOMEM, -11, "out of memory")                        \
    X(ENAMETOOLONG, -12, "name too long")                  \
    X(EMSGSIZE, -13, "message too large")                  \
    X(ENOTSUP, -14, "not supported")                       \
    X(ECANCELED, -15, "the pipe's poll was closed")        \
    X(EIO, -99, "operating system error")

namespace npipe {

// `st::again` etc.: lower-case names so they never collide with <errno.h> macros.
namespace st {
constexpr int32_t ok = 0;
constexpr int32_t again = -1;
constexpr int32_t inval = -2;
constexpr int32_t badf = -3;
constexpr int32_t noent = -4;
constexpr int32_t busy = -5;
constexpr int32_t exist = -6;
constexpr int32_t acces = -7;
constexpr int32_t pipe = -8;
constexpr int32_t notconn = -9;
constexpr int32_t timedout = -10;
constexpr int32_t nomem = -11;
constexpr int32_t nametoolong = -12;
constexpr int32_t msgsize = -13;
constexpr int32_t notsup = -14;
constexpr int32_t canceled = -15;
constexpr int32_t io = -99;
}  // namespace st

// "NPIPE_EAGAIN"; "NPIPE_EUNKNOWN" for codes not in the table.
const char *status_name(int32_t status) noexcept;
// Static English text; "unknown error" for codes not in the table.
const char *status_text(int32_t status) noexcept;

}  // namespace npipe
