// Bytes accepted by npipe_write and not yet completed by the OS, and the write-side rules kept
// once for every platform:
//   - acceptance: byte mode takes what fits in the room left of the buffer (out_buffer_size,
//     bounded); a message goes whole or not at all, and one larger than the room is still taken
//     when nothing else is waiting (or it could never be sent);
//   - in-flight accounting: bytes handed to the OS count against the room until the OS completes
//     them (Windows' WriteFile in flight; Linux hands bytes over synchronously);
//   - the one NPIPE_WRITABLE rule: an edge is owed after NPIPE_EAGAIN from a write (when room
//     frees up) or from a flush (when everything has completed), and only then.
#pragma once
#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "types.hpp"

namespace npipe {

class WriteQueue {
public:
    explicit WriteQueue(size_t cap) : cap_(cap) {}

    size_t cap() const { return cap_; }
    size_t queued() const { return queued_; }
    size_t in_flight() const { return in_flight_; }
    size_t used() const { return queued_ + in_flight_; }
    size_t room() const { return cap_ > used() ? cap_ - used() : 0; }
    // Nothing accepted is waiting or in flight, not even an empty message.
    bool idle() const { return used() == 0 && pieces_.empty() && pieces_in_flight_ == 0; }
    bool has_queued() const { return !pieces_.empty(); }

    // How many of `unit` bytes are taken now (`whole`: a message, all or nothing).
    size_t acceptable(size_t unit, bool whole) const;
    // Queues bytes [skip, skip + count) of (prefix ++ iov). `new_piece`: a message, which must stay
    // one piece (Windows writes one message per WriteFile); bytes join the last piece.
    void append(const uint8_t *prefix, size_t prefix_len, const IoVec *iov, size_t iovcnt, size_t skip, size_t count,
                bool new_piece);

    // Handing bytes over, the synchronous way (Linux): up to `max` ranges of the queued bytes in
    // order, then consumed() with the count the OS took.
    size_t peek(IoVec *out, size_t max) const;
    void consumed(size_t n);
    // The asynchronous way (Windows): the first queued piece moves to "in flight"; completed()
    // returns its bytes to the room as the OS finishes them, piece_done() when the piece is through.
    std::vector<uint8_t> take_front();
    void completed(size_t n);
    void piece_done();
    // The storage of a piece the OS is through with, kept to hold the next piece, so a stream of
    // writes does not allocate (under Wine: through the slow process heap) once per write.
    void recycle(std::vector<uint8_t> storage);

    // The peer is gone: what was not handed to the OS yet can never be delivered (the caller
    // reports it); what is in flight completes (or fails) on its own.
    void discard_queued();
    // A new connection, a failed write or a stopped pipe: forget everything, debts included.
    void reset();

    void owe_on_room() { owed_room_ = true; }
    void owe_on_drain() { owed_drain_ = true; }
    // True when an owed NPIPE_WRITABLE is due now; the debts that were met are cleared.
    bool settle_owed();
    // True when any WRITABLE is owed (a failure pays every debt at once).
    bool clear_owed();

private:
    void pop_sent();  // the first piece is all handed over: its storage holds the next one

    struct Piece {
        std::vector<uint8_t> data;
        size_t offset = 0;  // bytes already handed to the OS (synchronous way)
    };
    const size_t cap_;
    std::deque<Piece> pieces_;
    std::vector<uint8_t> spare_;  // empty, with capacity: storage for the next piece
    size_t queued_ = 0;
    size_t in_flight_ = 0;
    size_t pieces_in_flight_ = 0;
    bool owed_room_ = false;
    bool owed_drain_ = false;
};

}  // namespace npipe
