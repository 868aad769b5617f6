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

inline std::shared_ptr<Listener> find_listener(uint64_t handle) {
    return std::static_pointer_cast<Listener>(HandleTable::instance().find(handle, ObjectKind::listener));
}

// What npipe_register, npipe_close & co. take: a pipe or a listener.
inline std::shared_ptr<Endpoint> find_endpoint(uint64_t handle) {
    if (auto pipe = find_pipe(handle)) return pipe;
    return find_listener(handle);
}

// Publishes a new pipe or listener as a handle; closes it again if the table cannot take it.
inline int32_t publish(const std::shared_ptr<Endpoint> &object, uint64_t *out) {
    const uint64_t handle = HandleTable::instance().insert(object);
    if (handle == 0) {
        object->close();
        return fail(st::nomem, "handle table is full");
    }
    *out = handle;
    return st::ok;
}

inline int32_t bad_poll_handle() { return fail(st::badf, "not a live poll handle (closed, stale, 0, or a pipe)"); }
inline int32_t bad_pipe_handle() {
    return fail(st::badf, "not a live pipe handle (closed, stale, 0, a poll, or a listener)");
}
inline int32_t bad_endpoint_handle() {
    return fail(st::badf, "not a live pipe or listener handle (closed, stale, 0, or a poll)");
}
inline int32_t bad_listener_handle() {
    return fail(st::badf, "not a live listener handle (closed, stale, 0, a poll, or a pipe)");
}

}  // namespace npipe::capi
