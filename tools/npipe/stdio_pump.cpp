#include "stdio_pump.hpp"

#include <thread>

#if defined(_WIN32)
#include <io.h>
#else
#include <cerrno>
#include <unistd.h>
#endif

namespace tool {

std::shared_ptr<StdinPump> StdinPump::start(npipe_poll_t poll, uint64_t wake_token, size_t chunk_size,
                                            size_t max_chunks) {
    auto p = std::make_shared<StdinPump>();
    p->poll_ = poll;
    p->token_ = wake_token;
    p->chunk_size_ = chunk_size;
    p->max_chunks_ = max_chunks;
    std::thread([p] { p->run(); }).detach();  // the thread owns a reference: the state outlives it
    return p;
}

void StdinPump::run() {
    for (;;) {
        std::string buf(chunk_size_, '\0');
#if defined(_WIN32)
        int n = _read(0, buf.data(), static_cast<unsigned int>(buf.size()));
#else
        ssize_t n = ::read(STDIN_FILENO, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
#endif
        {
            std::unique_lock<std::mutex> lock(mu_);
            if (n <= 0) {
                finished_ = true;
                failed_ = n < 0;
            } else {
                buf.resize(static_cast<size_t>(n));
                room_.wait(lock, [this] { return chunks_.size() < max_chunks_; });
                chunks_.push_back(std::move(buf));
            }
        }
        npipe_poll_wake(poll_, token_);  // NPIPE_EBADF once the poll is closed: nobody listens then
        if (n <= 0) return;
    }
}

StdinPump::Take StdinPump::take(std::string &out) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!chunks_.empty()) {
        out = std::move(chunks_.front());
        chunks_.pop_front();
        room_.notify_one();
        return Take::data;
    }
    if (finished_) return failed_ ? Take::error : Take::eof;
    return Take::none;
}

}  // namespace tool
