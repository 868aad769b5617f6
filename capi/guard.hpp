// The exception firewall (ONNX Runtime style): every exported function runs its body through
// guarded(), so no C++ exception ever crosses the C ABI; it becomes a status code with a message.
#pragma once
#include <exception>
#include <memory>
#include <new>

#include "capi/handle_table.hpp"
#include "lib/core/backend.hpp"
#include "lib/core/error_detail.hpp"
#include "lib/core/status.hpp"

namespace npipe::capi {

template <class Body>
auto guarded(Body &&body) noexcept -> decltype(body()) {
    try {
        return body();
    } catch (const std::bad_alloc &) {
        return fail(st::nomem, "out of memory");
    } catch (const std::exception &e) {
        return failf(st::io, 0, "internal error: %s", e.what());
    } catch (...) {
        return fail(st::io, "internal error: unknown exception");
    }
}

inline std::shared_ptr<Poll> find_poll(uint64_t handle) {
    return std::static_pointer_cast<Poll>(HandleTable::instance().find(handle, ObjectKind::poll));
}

inline std::shared_ptr<Pipe> find_pipe(uint64_t handle) {
    return std::static_pointer_cast<Pipe>(HandleTable::instance().find(handle, ObjectKind::pipe));
}

inline int32_t bad_poll_handle() { return fail(st::badf, "not a live poll handle (closed, stale, 0, or a pipe)"); }
inline int32_t bad_pipe_handle() { return fail(st::badf, "not a live pipe handle (closed, stale, 0, or a poll)"); }

}  // namespace npipe::capi
