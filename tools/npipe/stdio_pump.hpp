// stdin for a poll-driven loop. The library has no stdin integration (a console or pipe stdin
// cannot join an IOCP, and mixing it into epoll would not port), so a helper thread reads stdin
// with plain blocking reads and hands each chunk to the loop, waking it with npipe_poll_wake.
// The queue is bounded: when the loop stops taking chunks (the pipe is full), the thread stops
// reading, so stdin sees back-pressure instead of the tool buffering without limit.
#pragma once
#include <npipe.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

namespace tool {

class StdinPump {
public:
    // Starts the reader thread. It lives until stdin ends or fails (it is detached: a thread
    // blocked in read() must not keep the process from exiting).
    static std::shared_ptr<StdinPump> start(npipe_poll_t poll, uint64_t wake_token, size_t chunk_size = 64 * 1024,
                                            size_t max_chunks = 4);

    enum class Take { none, data, eof, error };
    // Never blocks. data: `out` holds one chunk. eof / error: stdin is finished (after all chunks),
    // returned again on every later call. none: nothing yet (a wake follows when there is).
    Take take(std::string &out);

private:
    void run();

    npipe_poll_t poll_ = 0;
    uint64_t token_ = 0;
    size_t chunk_size_ = 0;
    size_t max_chunks_ = 0;
    std::mutex mu_;
    std::condition_variable room_;
    std::deque<std::string> chunks_;
    bool finished_ = false;
    bool failed_ = false;
};

}  // namespace tool
