// Per-pipe readiness bookkeeping shared by both backends (guarded by the owning pipe's mutex).
//
// A pipe raises edge bits when its state changes (data arrived, a write completed, EOF, ...);
// the poll later asks it for one merged event. Edge mode reports each raised bit once; level mode
// (NPIPE_LEVEL) also reports the pipe's current readable/writable condition at every wait.
// NPIPE_READ_CLOSED and NPIPE_WRITE_CLOSED are reported once per connection.
#pragma once
#include <cstdint>

#include "types.hpp"

namespace npipe {

class EventState {
public:
    bool registered() const { return registered_; }
    uint64_t token() const { return token_; }
    uint32_t interests() const { return interests_; }
    bool level() const { return (interests_ & ev::level) != 0; }

    // (Re)registration: new token and interests. Bits raised under an earlier registration are
    // dropped so that no event of the old registration reaches the new one; the caller re-raises
    // what the current state warrants (buffered data, room to write, ...).
    void arm(uint64_t token, uint32_t interests) {
        registered_ = true;
        token_ = token;
        interests_ = interests;
        pending_ = 0;
    }
    void disarm() {
        registered_ = false;
        pending_ = 0;
    }
    // A new connection on a reused server instance: forget everything about the previous one.
    void reset_connection() {
        pending_ = 0;
        reported_once_ = 0;
    }

    // Adds edge bits. Returns true if the pipe now has something to report and must be queued
    // in its poll's ready list.
    bool raise(uint32_t bits) {
        bits &= ~reported_once_ & (ev::readable | ev::writable | ev::always);
        pending_ |= bits;
        return registered_ && (pending_ & reportable_mask()) != 0;
    }

    // The event to report now. `level_bits` is the pipe's current readable/writable condition
    // (only used in level mode). Sets `keep_queued` when the pipe must stay in the ready list
    // (level mode with the condition still true). Returns 0 when there is nothing to report.
    uint32_t take(uint32_t level_bits, bool &keep_queued) {
        keep_queued = false;
        if (!registered_) {
            pending_ = 0;
            return 0;
        }
        uint32_t events = pending_ & reportable_mask();
        pending_ &= ~events;
        if (level()) {
            const uint32_t held = level_bits & interests_ & (ev::readable | ev::writable);
            events |= held;
            keep_queued = held != 0;
        }
        events &= ~reported_once_;
        reported_once_ |= events & (ev::read_closed | ev::write_closed);
        return events;
    }

private:
    uint32_t reportable_mask() const { return (interests_ & (ev::readable | ev::writable)) | ev::always; }

    bool registered_ = false;
    uint64_t token_ = 0;
    uint32_t interests_ = 0;
    uint32_t pending_ = 0;
    uint32_t reported_once_ = 0;
};

}  // namespace npipe
