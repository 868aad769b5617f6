// What has arrived from the peer and not been read yet, as pieces {bytes, end_of_message}, and the
// message-mode read rules, kept once for every platform:
//   - a read never merges two messages and never returns more than the caller's buffers hold;
//   - a message that fits the caller's buffers is returned whole: while only part of it has
//     arrived, the read waits (NPIPE_EAGAIN) rather than hand out a piece;
//   - the rest of a message that did not fit is flagged NPIPE_MSG_PARTIAL;
//   - an empty message is reported by npipe_read_msg (NPIPE_MSG_EMPTY) and skipped by npipe_read.
// Windows pushes what each ReadFile completed; Linux pushes what its frame decoder cut out of the
// stream. In byte mode the pieces are plain bytes and reads cross piece boundaries freely.
#pragma once
#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "types.hpp"

namespace npipe {

class ReadQueue {
public:
    struct MessageRead {
        size_t bytes = 0;
        uint32_t flags = 0;  // mf::partial / mf::empty
        bool got = false;    // something (maybe an empty message) was read
    };

    void push(std::vector<uint8_t> bytes, bool end_of_message);
    // Storage of at least `size` bytes for the next piece: the storage of the last piece read out
    // when it is big enough, so what fills one per wake-up (npipe_wait's receive, a Windows
    // ReadFile) does not allocate (nor zero) a buffer per round trip or per read of a stream.
    std::vector<uint8_t> take_spare(size_t size);
    // What a read into storage from take_spare took: its first `got` bytes. The storage comes back
    // once they have been read out, unless they are a few bytes behind other pieces: then they are
    // copied out, so they do not pin a whole buffer while they wait, and the storage is kept now.
    void push_filled(std::vector<uint8_t> storage, size_t got, bool end_of_message);
    // Storage from take_spare that took nothing (a receive that timed out or was refused): kept
    // for the next take_spare.
    void give_back_spare(std::vector<uint8_t> storage);
    bool empty() const { return pieces_.empty(); }
    size_t pieces() const { return pieces_.size(); }
    // Payload bytes buffered (read_available's library part).
    size_t buffered() const { return buffered_; }
    void clear();

    // Byte mode: fills the caller's buffers from as many pieces as it takes.
    size_t read_bytes(const IoVec *iov, size_t iovcnt);
    // Message mode: one message or the next part of one. `skip_empty`: npipe_read, which does not
    // report empty messages. `more_may_come`: false once the stream has ended, so a message cut
    // off by the end is not flagged partial (its rest never comes). `total`: the size of the
    // caller's buffers.
    MessageRead read_message(const IoVec *iov, size_t iovcnt, size_t total, bool skip_empty, bool more_may_come);
    // The last piece queued is part of a message whose end has not arrived: the OS must keep
    // delivering it, whatever the buffer's fill level, or a reader waiting for it never wakes.
    bool message_incomplete() const { return !pieces_.empty() && !pieces_.back().end_of_message; }

private:
    struct Piece {
        std::vector<uint8_t> data;
        size_t size = 0;  // of data, the bytes that arrived
        size_t offset = 0;
        bool end_of_message = true;
        bool spare = false;  // storage from take_spare
    };
    void pop_front();
    // The first `size` bytes of `storage` from take_spare, which goes back to be taken again once
    // it has been read out (push_filled decides when that is worth it).
    void push_spare(std::vector<uint8_t> storage, size_t size, bool end_of_message);

    std::deque<Piece> pieces_;
    size_t buffered_ = 0;
    std::vector<uint8_t> spare_;
};

}  // namespace npipe
