// Pipe exports: argument checks and handle resolution, then the backend does the work.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "capi/guard.hpp"
#include "capi/options.hpp"
#include "lib/core/names.hpp"
#include "npipe.h"

using namespace npipe;
using namespace npipe::capi;

static_assert(sizeof(npipe_iovec_t) == sizeof(IoVec) && offsetof(npipe_iovec_t, len) == offsetof(IoVec, len),
              "npipe_iovec_t layout");
static_assert(NPIPE_FIRST_INSTANCE == pf::first_instance && NPIPE_MESSAGE == pf::message &&
                  NPIPE_INBOUND_ONLY == pf::inbound_only && NPIPE_OUTBOUND_ONLY == pf::outbound_only &&
                  NPIPE_ALLOW_REMOTE == pf::allow_remote && NPIPE_CURRENT_USER_ONLY == pf::current_user_only &&
                  NPIPE_NONBLOCK_OPEN == pf::nonblock_open && NPIPE_INFO_SERVER == pf::info_server &&
                  NPIPE_INFO_CONNECTED == pf::info_connected,
              "pipe flags");
static_assert(NPIPE_MSG_PARTIAL == mf::partial && NPIPE_MSG_EMPTY == mf::empty, "message flags");

namespace {

// The one check of the caller's buffers: every backend relies on `total` being their exact sum.
int32_t check_iovecs(const npipe_iovec_t *iov, size_t iovcnt, size_t &total) {
    total = 0;
    if (!iov && iovcnt > 0) return fail(st::inval, "iov is NULL");
    if (iovcnt > kMaxIovecs)
        return failf(st::inval, 0, "iovcnt %zu exceeds the limit of %zu buffers", iovcnt, kMaxIovecs);
    for (size_t i = 0; i < iovcnt; ++i) {
        if (!iov[i].base && iov[i].len > 0) return failf(st::inval, 0, "iov[%zu].base is NULL", i);
        if (iov[i].len > SIZE_MAX - total)
            return failf(st::inval, 0, "the lengths of the %zu buffers add up to more than SIZE_MAX (at iov[%zu])",
                         iovcnt, i);
        total += iov[i].len;
    }
    return st::ok;
}

// Runs a read or write (calls that never block), with the checks every byte call shares. The
// pipe is borrowed, not referenced: no lock and no reference count on the hot path.
template <class Call>
int64_t on_pipe(npipe_t pipe, Call &&call) noexcept {
    return guarded([&]() -> int64_t {
        const HandleTable::Borrow q = HandleTable::instance().borrow(pipe, ObjectKind::pipe);
        if (!q) return bad_pipe_handle();
        return call(*static_cast<Pipe *>(q.get()));
    });
}

}  // namespace

extern "C" {

void npipe_server_options_init(npipe_server_options_t *opts) noexcept {
    if (!opts) return;
    std::memset(opts, 0, sizeof *opts);
    opts->size = sizeof *opts;
}

void npipe_client_options_init(npipe_client_options_t *opts) noexcept {
    if (!opts) return;
    std::memset(opts, 0, sizeof *opts);
    opts->size = sizeof *opts;
}

int32_t npipe_create(const char *name, const npipe_server_options_t *opts, npipe_t *out) noexcept {
    return guarded([&]() -> int32_t {
        if (!out) return fail(st::inval, "out is NULL");
        *out = 0;
        if (!name) return fail(st::inval, "pipe name is NULL");
        ServerConfig config;
        int32_t rc = to_server_config(opts, config);
        if (rc < 0) return rc;
        std::shared_ptr<Pipe> pipe;
        rc = create_server(name, config, pipe);
        if (rc < 0) return rc;
        return publish(pipe, out);
    });
}

int32_t npipe_open(const char *name, const npipe_client_options_t *opts, npipe_t *out) noexcept {
    return guarded([&]() -> int32_t {
        if (!out) return fail(st::inval, "out is NULL");
        *out = 0;
        if (!name) return fail(st::inval, "pipe name is NULL");
        ClientConfig config;
        int32_t rc = to_client_config(opts, config);
        if (rc < 0) return rc;
        std::shared_ptr<Pipe> pipe;
        rc = open_client(name, config, pipe);
        if (rc < 0) return rc;
        // Without NPIPE_NONBLOCK_OPEN the open's policy runs here, on the caller's thread; with it,
        // the pipe is CONNECTING and its poll drives the attempts.
        if (!(config.flags & pf::nonblock_open)) {
            rc = pipe->open_blocking();
            if (rc < 0) return rc;
        }
        return publish(pipe, out);
    });
}

int32_t npipe_from_raw_handle(intptr_t raw, uint32_t flags, npipe_t *out) noexcept {
    return guarded([&]() -> int32_t {
        if (!out) return fail(st::inval, "out is NULL");
        *out = 0;
        if (flags & ~pf::message) return fail(st::inval, "flags may only be 0 or NPIPE_MESSAGE");
        std::shared_ptr<Pipe> pipe;
        int32_t rc = adopt_raw_handle(raw, flags, pipe);
        if (rc < 0) return rc;
        return publish(pipe, out);
    });
}

int32_t npipe_raw_handle(npipe_t pipe, intptr_t *out) noexcept {
    return guarded([&]() -> int32_t {
        auto q = find_pipe(pipe);
        if (!q) return bad_pipe_handle();
        if (!out) return fail(st::inval, "out is NULL");
        return q->raw_handle(*out);
    });
}

int32_t npipe_resolve_name(const char *name, char *buf, size_t len) noexcept {
    return guarded([&]() -> int32_t {
        if (!buf && len > 0) return fail(st::inval, "buf is NULL but len is not 0");
        std::string os_name;
        int32_t rc = map_pipe_name(name, NameRole::client, os_name);
        if (rc < 0) return rc;
        if (!buf) return static_cast<int32_t>(os_name.size());  // (NULL, 0) asks for the length
        if (os_name.size() + 1 > len)
            return failf(st::nametoolong, 0, "buffer of %zu bytes is too small for %zu bytes and the NUL", len,
                         os_name.size());
        std::memcpy(buf, os_name.c_str(), os_name.size() + 1);
        return static_cast<int32_t>(os_name.size());
    });
}

int32_t npipe_connect(npipe_t server) noexcept {
    return guarded([&]() -> int32_t {
        auto q = find_pipe(server);
        if (!q) return bad_pipe_handle();
        return q->connect();
    });
}

int32_t npipe_disconnect(npipe_t server) noexcept {
    return guarded([&]() -> int32_t {
        auto q = find_pipe(server);
        if (!q) return bad_pipe_handle();
        return q->disconnect();
    });
}

int32_t npipe_take_error(npipe_t pipe) noexcept {
    return guarded([&]() -> int32_t {
        auto q = find_endpoint(pipe);
        if (!q) return bad_endpoint_handle();
        return q->take_error();
    });
}

int64_t npipe_read(npipe_t pipe, void *buf, size_t len) noexcept {
    return on_pipe(pipe, [&](Pipe &q) -> int64_t {
        if (!buf && len > 0) return fail(st::inval, "buf is NULL");
        IoVec one{buf, len};
        return q.read(&one, 1, len, nullptr);
    });
}

int64_t npipe_write(npipe_t pipe, const void *buf, size_t len) noexcept {
    return on_pipe(pipe, [&](Pipe &q) -> int64_t {
        if (!buf && len > 0) return fail(st::inval, "buf is NULL");
        IoVec one{const_cast<void *>(buf), len};
        return q.write(&one, 1, len);
    });
}

int64_t npipe_readv(npipe_t pipe, const npipe_iovec_t *iov, size_t iovcnt) noexcept {
    return on_pipe(pipe, [&](Pipe &q) -> int64_t {
        size_t total = 0;
        int32_t rc = check_iovecs(iov, iovcnt, total);
        if (rc < 0) return rc;
        IoVec none{nullptr, 0};
        return iovcnt ? q.read(reinterpret_cast<const IoVec *>(iov), iovcnt, total, nullptr)
                      : q.read(&none, 1, 0, nullptr);
    });
}

int64_t npipe_writev(npipe_t pipe, const npipe_iovec_t *iov, size_t iovcnt) noexcept {
    return on_pipe(pipe, [&](Pipe &q) -> int64_t {
        size_t total = 0;
        int32_t rc = check_iovecs(iov, iovcnt, total);
        if (rc < 0) return rc;
        IoVec none{nullptr, 0};
        return iovcnt ? q.write(reinterpret_cast<const IoVec *>(iov), iovcnt, total) : q.write(&none, 1, 0);
    });
}

int64_t npipe_read_msg(npipe_t pipe, void *buf, size_t len, uint32_t *msg_flags) noexcept {
    if (msg_flags) *msg_flags = 0;
    return on_pipe(pipe, [&](Pipe &q) -> int64_t {
        if (!buf && len > 0) return fail(st::inval, "buf is NULL");
        IoVec one{buf, len};
        uint32_t flags = 0;
        int64_t n = q.read(&one, 1, len, &flags);
        if (msg_flags) *msg_flags = n >= 0 ? flags : 0;
        return n;
    });
}

int32_t npipe_flush(npipe_t pipe) noexcept {
    return guarded([&]() -> int32_t {
        auto q = find_pipe(pipe);
        if (!q) return bad_pipe_handle();
        return q->flush();
    });
}

int32_t npipe_close(npipe_t pipe) noexcept {
    return guarded([&]() -> int32_t {
        auto object = HandleTable::instance().remove(pipe, ObjectKind::pipe);
        if (!object) object = HandleTable::instance().remove(pipe, ObjectKind::listener);
        if (!object) return bad_endpoint_handle();
        std::static_pointer_cast<Endpoint>(object)->close();
        return st::ok;
    });
}

int32_t npipe_wait(npipe_t pipe, uint32_t interests, int32_t timeout_ms) noexcept {
    return guarded([&]() -> int32_t {
        auto q = find_endpoint(pipe);
        if (!q) return bad_endpoint_handle();
        if (interests == 0 || (interests & ~(ev::readable | ev::writable)))
            return failf(st::inval, 0, "interests 0x%x: NPIPE_READABLE, NPIPE_WRITABLE or both", interests);
        return q->wait(interests, timeout_ms);
    });
}

int32_t npipe_get_info(npipe_t pipe, npipe_info_t *info) noexcept {
    return guarded([&]() -> int32_t {
        auto q = find_endpoint(pipe);
        if (!q) return bad_endpoint_handle();
        if (!info) return fail(st::inval, "info is NULL");
        int32_t rc = check_info_size(info);
        if (rc < 0) return rc;
        PipeInfo out;
        rc = q->get_info(out);
        if (rc < 0) return rc;
        fill_info(out, info);
        return st::ok;
    });
}

}  // extern "C"
