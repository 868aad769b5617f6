// Message mode over an AF_UNIX stream (both ends must use NPIPE_MESSAGE):
//
//     message := length payload
//     length  := 4 bytes, little-endian unsigned, the payload size (0 .. 16 MiB)
//
// An empty message is a bare header. A writer emits header and payload as one unit of its write
// buffer, so messages never interleave; a reader never merges two messages. A length above
// 16 MiB is not something npipe writes: the reader reports it as a protocol error (NPIPE_EIO).
#pragma once
#include <cstddef>
#include <cstdint>

namespace npipe::posix::framing {

constexpr size_t kHeaderSize = 4;

inline void put_length(unsigned char *out, uint32_t n) {
    out[0] = static_cast<unsigned char>(n);
    out[1] = static_cast<unsigned char>(n >> 8);
    out[2] = static_cast<unsigned char>(n >> 16);
    out[3] = static_cast<unsigned char>(n >> 24);
}

inline uint32_t get_length(const unsigned char *in) {
    return static_cast<uint32_t>(in[0]) | static_cast<uint32_t>(in[1]) << 8 | static_cast<uint32_t>(in[2]) << 16 |
           static_cast<uint32_t>(in[3]) << 24;
}

}  // namespace npipe::posix::framing
