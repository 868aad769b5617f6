#include "lib/posix/errno_map.hpp"

#include <cerrno>
#include <cstring>

#include "lib/core/error_detail.hpp"
#include "lib/core/status.hpp"

namespace npipe::posix {

int32_t status_from_errno(int err) noexcept {
    switch (err) {
        case 0: return st::ok;
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
        case EINPROGRESS: return st::again;
        case EINVAL:
        case ENOTSOCK:
        case EPROTOTYPE:
        case EAFNOSUPPORT: return st::inval;
        case EBADF: return st::badf;
        case ENOENT:
        case ENOTDIR:
        case ECONNREFUSED: return st::noent;  // no listener behind the name
        case EBUSY: return st::busy;
        case EEXIST:
        case EADDRINUSE: return st::exist;
        case EACCES:
        case EPERM:
        case EROFS: return st::acces;
        case EPIPE:
        case ECONNRESET:
        case ECONNABORTED:
        case ESHUTDOWN: return st::pipe;
        case ENOTCONN: return st::notconn;
        case ETIMEDOUT: return st::timedout;
        case ENOMEM:
        case ENOBUFS: return st::nomem;  // EMFILE/ENFILE stay st::io: not memory
        case ENAMETOOLONG: return st::nametoolong;
        case EMSGSIZE: return st::msgsize;
        case EOPNOTSUPP:
#if ENOTSUP != EOPNOTSUPP
        case ENOTSUP:
#endif
        case ENOSYS: return st::notsup;
        case ECANCELED: return st::canceled;
        default: return st::io;
    }
}

int32_t fail_errno_as(int32_t status, int err, const char *what) noexcept {
    char text[128];
    const char *msg = strerror_r(err, text, sizeof text);  // GNU variant: returns the string
    return failf(status, static_cast<uint32_t>(err), "%s: %s", what, msg);
}

int32_t fail_errno(int err, const char *what) noexcept { return fail_errno_as(status_from_errno(err), err, what); }

}  // namespace npipe::posix

namespace npipe::posix {

Failure errno_failure(int err, const char *what, int32_t status) {
    char text[128];
    const char *msg = strerror_r(err, text, sizeof text);
    Failure f;
    f.code = status > 0 ? status_from_errno(err) : status;
    f.os_error = static_cast<uint32_t>(err);
    f.message = std::string(what) + ": " + msg;
    return f;
}

}  // namespace npipe::posix
