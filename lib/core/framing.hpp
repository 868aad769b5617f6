// Message mode over a byte stream (Linux AF_UNIX; both ends must use NPIPE_MESSAGE):
//
//     message := length payload
//     length  := 4 bytes, little-endian unsigned, the payload size (0 .. 16 MiB)
//
// An empty message is a bare header. A writer queues header and payload as one unit, so messages
// never interleave; the reader's FrameDecoder turns the stream back into message pieces. A length
// above 16 MiB is not something npipe writes: the decoder reports it as a protocol error, which
// in practice means the peer is not using message mode (a byte-mode writer, or a foreign program).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "failure.hpp"
#include "read_queue.hpp"
#include "status.hpp"
#include "types.hpp"

namespace npipe::framing {

constexpr size_t kHeaderSize = 4;

inline void put_length(uint8_t *out, uint32_t n) {
    out[0] = static_cast<uint8_t>(n);
    out[1] = static_cast<uint8_t>(n >> 8);
    out[2] = static_cast<uint8_t>(n >> 16);
    out[3] = static_cast<uint8_t>(n >> 24);
}

inline uint32_t get_length(const uint8_t *in) {
    return static_cast<uint32_t>(in[0]) | static_cast<uint32_t>(in[1]) << 8 | static_cast<uint32_t>(in[2]) << 16 |
           static_cast<uint32_t>(in[3]) << 24;
}

// Incremental decoder: feed() whatever the stream delivered (any split, headers included) and it
// queues the payload as message pieces, the last piece of each message marked end_of_message.
class FrameDecoder {
public:
    // Returns a failure (NPIPE_EIO) on a length over the limit; nothing after it is decoded.
    Failure feed(const uint8_t *data, size_t n, ReadQueue &out) {
        while (n > 0) {
            if (!in_message_) {
                const size_t k = std::min(n, kHeaderSize - header_fill_);
                for (size_t i = 0; i < k; ++i) header_[header_fill_ + i] = data[i];
                header_fill_ += k;
                data += k;
                n -= k;
                if (header_fill_ < kHeaderSize) break;
                header_fill_ = 0;
                const uint32_t len = get_length(header_);
                if (len > kMaxMessageSize)
                    return failuref(st::io, 0,
                                    "a message header announces %u bytes, over the 16 MiB limit: the peer is not "
                                    "writing in message mode (both ends must use NPIPE_MESSAGE)",
                                    static_cast<unsigned>(len));
                if (len == 0) {
                    out.push({}, true);
                    continue;
                }
                in_message_ = true;
                left_ = len;
                continue;
            }
            const size_t k = std::min(n, left_);
            left_ -= k;
            out.push(std::vector<uint8_t>(data, data + k), left_ == 0);
            data += k;
            n -= k;
            if (left_ == 0) in_message_ = false;
        }
        return Failure{};
    }
    void reset() {
        in_message_ = false;
        header_fill_ = 0;
        left_ = 0;
    }

private:
    uint8_t header_[kHeaderSize] = {};
    size_t header_fill_ = 0;
    bool in_message_ = false;
    size_t left_ = 0;
};

}  // namespace npipe::framing
