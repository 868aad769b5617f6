// A two-way, verified transfer over one npipe end, shared by the test suites and the helper program
// npipe_peer (which runs the other end in a second process): both sides regenerate each other's
// byte stream from a seed, so every byte that arrives is compared with the one that was sent,
// wherever the two ends live. Write and read sizes are random too (seeded), so the transfer cuts
// the streams at different places on each run. Uses only the public C API; no doctest here.
#pragma once
#include <npipe.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <vector>

namespace peer {

// splitmix64: a small reproducible generator (the same sequence in every process and compiler).
struct Rng {
    uint64_t s;
    explicit Rng(uint64_t seed) : s(seed) {}
    uint64_t next() {
        uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    // Uniform enough in [lo, hi].
    uint64_t between(uint64_t lo, uint64_t hi) { return lo + next() % (hi - lo + 1); }
};

// The byte stream of one direction: 8 bytes per generator step, in order.
struct Stream {
    Rng rng;
    uint64_t word = 0;
    unsigned left = 0;
    explicit Stream(uint64_t seed) : rng(seed) {}
    uint8_t next() {
        if (left == 0) {
            word = rng.next();
            left = 8;
        }
        const uint8_t b = static_cast<uint8_t>(word);
        word >>= 8;
        --left;
        return b;
    }
};

// The seeds of the two directions of a transfer with seed `seed`.
inline uint64_t server_stream_seed(uint64_t seed) { return seed * 2 + 1; }
inline uint64_t client_stream_seed(uint64_t seed) { return seed * 2 + 2; }

// One end's side of the transfer: sends `out_total` bytes of its stream in random-sized writes
// and checks `in_total` bytes of the peer's stream read in random-sized reads. A total of
// UINT64_MAX never ends (for the end that is going to be killed).
struct Transfer {
    npipe_t pipe;
    uint64_t out_total, in_total;
    Stream out, expect;
    Rng sizes;
    size_t max_write, max_read;
    uint64_t sent = 0, received = 0;
    uint64_t mismatch_at = UINT64_MAX;  // offset of the first byte that differed, if any
    bool eof = false;                   // npipe_read returned 0
    int64_t write_error = 0, read_error = 0;
    bool oversized_read = false;        // a read returned more than asked
    std::vector<uint8_t> wbuf, rbuf;
    size_t wpos = 0, wlen = 0;

    Transfer(npipe_t p, bool is_server, uint64_t seed, uint64_t out_bytes, uint64_t in_bytes,
             size_t max_write_size = 256 * 1024, size_t max_read_size = 256 * 1024)
        : pipe(p),
          out_total(out_bytes),
          in_total(in_bytes),
          out(is_server ? server_stream_seed(seed) : client_stream_seed(seed)),
          expect(is_server ? client_stream_seed(seed) : server_stream_seed(seed)),
          sizes(seed ^ (is_server ? 0x5E77E5ull : 0xC11E27ull)),
          max_write(max_write_size),
          max_read(max_read_size),
          wbuf(max_write_size),
          rbuf(max_read_size) {}

    bool failed() const { return mismatch_at != UINT64_MAX || oversized_read; }
    bool peer_gone() const { return eof || write_error == NPIPE_EPIPE || read_error == NPIPE_EPIPE; }
    bool done() const { return sent == out_total && received == in_total; }

    // Bytes one direction may move per pump before the other has its turn. Without a limit, an
    // endless writer whose peer reads fast never meets NPIPE_EAGAIN and so never reads: under
    // ThreadSanitizer the test process sent 1.1 GB in 20 s and received 300 KB, and the kill
    // point of its killed-peer test was not reached within the bound.
    static constexpr uint64_t kTurnBytes = uint64_t(1) << 20;
    bool turn_ended = false;  // the last pump stopped at kTurnBytes, not at NPIPE_EAGAIN

    // Writes and reads until both would block (or end), or a direction has had its turn; returns
    // whether anything moved.
    bool pump() {
        bool moved = false;
        turn_ended = false;
        const uint64_t sent_before = sent, received_before = received;
        while (sent < out_total && write_error == 0) {
            if (sent - sent_before >= kTurnBytes) {
                turn_ended = true;
                break;
            }
            if (wpos == wlen) {
                wlen = static_cast<size_t>(std::min<uint64_t>(sizes.between(1, max_write), out_total - sent));
                for (size_t i = 0; i < wlen; ++i) wbuf[i] = out.next();
                wpos = 0;
            }
            const int64_t n = npipe_write(pipe, wbuf.data() + wpos, wlen - wpos);
            if (n > 0) {
                wpos += static_cast<size_t>(n);
                sent += static_cast<uint64_t>(n);
                moved = true;
            } else {
                if (n != NPIPE_EAGAIN) write_error = n;
                break;
            }
        }
        while (!eof && read_error == 0 && received < in_total) {
            if (received - received_before >= kTurnBytes) {
                turn_ended = true;
                break;
            }
            const size_t len = static_cast<size_t>(std::min<uint64_t>(sizes.between(1, max_read), in_total - received));
            const int64_t n = npipe_read(pipe, rbuf.data(), len);
            if (n > static_cast<int64_t>(len)) {
                oversized_read = true;
                break;
            }
            if (n > 0) {
                for (int64_t i = 0; i < n; ++i)
                    if (rbuf[static_cast<size_t>(i)] != expect.next() && mismatch_at == UINT64_MAX)
                        mismatch_at = received + static_cast<uint64_t>(i);
                received += static_cast<uint64_t>(n);
                moved = true;
            } else if (n == 0) {
                eof = true;
            } else {
                if (n != NPIPE_EAGAIN) read_error = n;
                break;
            }
        }
        return moved;
    }
};

// Waits on `poll` (at most `ms` per wait) between pumps until `until` holds or `bound_ms` passes.
template <class Until>
bool pump_until(npipe_poll_t poll, Transfer &t, Until &&until, int32_t bound_ms, int32_t ms = 50) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(bound_ms);
    npipe_event_t ev[8];
    for (;;) {
        t.pump();
        if (until()) return true;
        if (t.failed() || std::chrono::steady_clock::now() >= deadline) return false;
        // A turn that ended early left work that no event will announce (edge-triggered): look
        // at the poll without waiting, then pump again.
        if (npipe_poll_wait(poll, ev, 8, t.turn_ended ? 0 : ms) < 0) return false;
    }
}

// Drives npipe_connect on a registered server until it returns NPIPE_OK (bounded).
inline int32_t connect_server(npipe_poll_t poll, npipe_t server, int32_t bound_ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(bound_ms);
    npipe_event_t ev[8];
    for (;;) {
        const int32_t rc = npipe_connect(server);
        if (rc != NPIPE_EAGAIN || std::chrono::steady_clock::now() >= deadline) return rc;
        npipe_poll_wait(poll, ev, 8, 50);
    }
}

}  // namespace peer
