// Poll exports: argument checks and handle resolution, then the core/backend does the work.
#include <cstddef>

#include "capi/guard.hpp"
#include "npipe.h"

using namespace npipe;
using namespace npipe::capi;

static_assert(sizeof(npipe_event_t) == sizeof(Event), "npipe_event_t layout");
static_assert(offsetof(npipe_event_t, token) == offsetof(Event, token), "npipe_event_t.token");
static_assert(offsetof(npipe_event_t, events) == offsetof(Event, events), "npipe_event_t.events");
static_assert(NPIPE_READABLE == ev::readable && NPIPE_WRITABLE == ev::writable && NPIPE_ERROR == ev::error &&
                  NPIPE_READ_CLOSED == ev::read_closed && NPIPE_WRITE_CLOSED == ev::write_closed &&
                  NPIPE_WAKE == ev::wake && NPIPE_CONNECTED == ev::connected && NPIPE_LEVEL == ev::level,
              "event bits");

namespace {

int32_t check_interests(uint32_t interests) {
    if (interests & ~ev::interest_mask)
        return failf(st::inval, 0, "unknown interest bits 0x%x (only NPIPE_READABLE, NPIPE_WRITABLE, NPIPE_LEVEL)",
                     static_cast<unsigned>(interests & ~ev::interest_mask));
    return st::ok;
}

// Resolves both handles of a (re/de)registration; handle validity comes before anything else.
int32_t resolve_pair(npipe_poll_t poll, npipe_t pipe, std::shared_ptr<Poll> &p, std::shared_ptr<Endpoint> &q) {
    p = find_poll(poll);
    if (!p) return bad_poll_handle();
    q = find_endpoint(pipe);
    if (!q) return bad_endpoint_handle();
    if (p->is_closed()) return fail(st::badf, "the poll is closed");
    return st::ok;
}

// npipe_register and npipe_reregister: the same checks, then the backend call.
using ArmCall = int32_t (Endpoint::*)(const std::shared_ptr<Poll> &, uint64_t, uint32_t);
int32_t arm(npipe_poll_t poll, npipe_t pipe, uint64_t token, uint32_t interests, ArmCall call) {
    std::shared_ptr<Poll> p;
    std::shared_ptr<Endpoint> q;
    int32_t rc = resolve_pair(poll, pipe, p, q);
    if (rc < 0) return rc;
    rc = check_interests(interests);
    if (rc < 0) return rc;
    return ((*q).*call)(p, token, interests);
}

}  // namespace

extern "C" {

int32_t npipe_poll_create(npipe_poll_t *out) noexcept {
    return guarded([&]() -> int32_t {
        if (!out) return fail(st::inval, "out is NULL");
        *out = 0;
        std::shared_ptr<Poll> poll;
        int32_t rc = create_poll(poll);
        if (rc < 0) return rc;
        const uint64_t handle = HandleTable::instance().insert(poll);
        if (handle == 0) {
            poll->close();
            return fail(st::nomem, "handle table is full");
        }
        *out = handle;
        return st::ok;
    });
}

int32_t npipe_poll_close(npipe_poll_t poll) noexcept {
    return guarded([&]() -> int32_t {
        auto object = HandleTable::instance().remove(poll, ObjectKind::poll);
        if (!object) return bad_poll_handle();
        std::static_pointer_cast<Poll>(object)->close();
        return st::ok;
    });
}

int32_t npipe_register(npipe_poll_t poll, npipe_t pipe, uint64_t token, uint32_t interests) noexcept {
    return guarded([&] { return arm(poll, pipe, token, interests, &Endpoint::register_with); });
}

int32_t npipe_reregister(npipe_poll_t poll, npipe_t pipe, uint64_t token, uint32_t interests) noexcept {
    return guarded([&] { return arm(poll, pipe, token, interests, &Endpoint::reregister); });
}

int32_t npipe_deregister(npipe_poll_t poll, npipe_t pipe) noexcept {
    return guarded([&]() -> int32_t {
        std::shared_ptr<Poll> p;
        std::shared_ptr<Endpoint> q;
        int32_t rc = resolve_pair(poll, pipe, p, q);
        if (rc < 0) return rc;
        return q->deregister(p);
    });
}

int32_t npipe_poll_wait(npipe_poll_t poll, npipe_event_t *events, size_t capacity, int32_t timeout_ms) noexcept {
    return guarded([&]() -> int32_t {
        auto p = find_poll(poll);
        if (!p) return bad_poll_handle();
        if (!events) return fail(st::inval, "events is NULL");
        if (capacity == 0) return fail(st::inval, "capacity is 0");
        if (capacity > 0x7FFFFFFF) capacity = 0x7FFFFFFF;  // the count must fit the int32_t result
        return p->wait(reinterpret_cast<Event *>(events), capacity, timeout_ms);
    });
}

int32_t npipe_poll_wake(npipe_poll_t poll, uint64_t token) noexcept {
    return guarded([&]() -> int32_t {
        auto p = find_poll(poll);
        if (!p) return bad_poll_handle();
        return p->wake(token);
    });
}

}  // extern "C"
