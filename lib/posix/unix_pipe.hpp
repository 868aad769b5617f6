// The Linux pipe: one end of an AF_UNIX stream connection (client, adopted socket, or a server
// instance that accepts from its name's shared listening socket; see listener.hpp), made to behave
// like the Windows backend's buffered, non-blocking named pipe (SPEC section 6).
//
// Reads go straight from the socket into the caller's buffers in byte mode; in message mode
// (framing.hpp) they go through a small receive buffer that is parsed into messages. Writes go to
// the kernel at once; what the kernel does not take is kept in a write buffer of out_buffer_size
// bytes, drained from epoll (EPOLLOUT) in the background. A pipe binds for life to the first poll
// it is registered with; its fds live in that poll's epoll set (edge-triggered) and its events go
// through the per-pipe EventState.
//
// Locking: one mutex per pipe guards everything below; it may be held while calling into the
// poll (notify, ctl, linger) but the poll never calls a pipe while holding its own locks.
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "epoll_poll.hpp"
#include "errno_map.hpp"
#include "lib/core/backend.hpp"
#include "lib/core/event_state.hpp"
#include "listener.hpp"

namespace npipe::posix {

// A byte vector whose resize() does not zero the new bytes: the receive buffer grows by up to a
// whole message (16 MiB) before recv() fills it, and must not pay a memset for that every time.
template <class T>
struct UninitAllocator : std::allocator<T> {
    template <class U>
    struct rebind {
        using other = UninitAllocator<U>;
    };
    UninitAllocator() = default;
    template <class U>
    UninitAllocator(const UninitAllocator<U> &) noexcept {}
    template <class U>
    void construct(U *p) noexcept {
        ::new (static_cast<void *>(p)) U;
    }
    template <class U, class... Args>
    void construct(U *p, Args &&...args) {
        ::new (static_cast<void *>(p)) U(std::forward<Args>(args)...);
    }
};
using Bytes = std::vector<unsigned char, UninitAllocator<unsigned char>>;

class UnixPipe final : public Pipe,
                       public ReadySource,
                       public EpollSource,
                       public std::enable_shared_from_this<UnixPipe> {
public:
    struct Setup {
        bool server = false;
        uint32_t flags = 0;  // creation flags (pf::)
        uint32_t in_buffer_size = kDefaultBufferSize;
        uint32_t out_buffer_size = kDefaultBufferSize;
        uint32_t max_instances = 0;
        int32_t linger_ms = kDefaultLingerMs;
    };
    // A server instance (IDLE) of `listener`'s name.
    UnixPipe(const Setup &setup, std::shared_ptr<Listener> listener);
    // A connected end (client or adopted socket); takes ownership of `fd`.
    UnixPipe(const Setup &setup, int fd, uint64_t peer_pid);
    ~UnixPipe() override;

    // Pipe
    int32_t register_with(const std::shared_ptr<Poll> &poll, uint64_t token, uint32_t interests) override;
    int32_t reregister(const std::shared_ptr<Poll> &poll, uint64_t token, uint32_t interests) override;
    int32_t deregister(const std::shared_ptr<Poll> &poll) override;
    int32_t connect() override;
    int32_t disconnect() override;
    int32_t take_error() override;
    int64_t read(const IoVec *iov, size_t iovcnt, uint32_t *msg_flags) override;
    int64_t write(const IoVec *iov, size_t iovcnt) override;
    int32_t flush() override;
    void close() override;
    int32_t get_info(PipeInfo &info) override;
    int32_t raw_handle(intptr_t &out) override;

    // ReadySource
    bool collect(Event &event, bool &keep_queued) override;

    // EpollSource
    void on_os_event(uint32_t tag, uint32_t events) override;
    void on_poll_closed() override;
    void on_linger_expired() override;

private:
    enum class State { idle, connecting, connected };
    enum class Dir { read, write, flush };

    bool message_mode() const { return (setup_.flags & pf::message) != 0; }
    bool can_read() const { return (setup_.flags & pf::outbound_only) == 0; }
    bool can_write() const { return (setup_.flags & pf::inbound_only) == 0; }
    size_t write_pending() const { return wbuf_.size() - wpos_; }
    // Room for more bytes in the write buffer (out_buffer_size, bounded; as on Windows, bytes the
    // kernel has not taken yet count). A message larger than the room is taken when it is empty.
    size_t room() const { return write_cap_ > write_pending() ? write_cap_ - write_pending() : 0; }
    size_t read_buffered() const { return rbuf_.size() - rpos_; }

    int32_t check_io(Dir dir);
    int32_t bind_poll(const std::shared_ptr<EpollPoll> &poll);
    uint32_t conn_tag() const;
    void arm_listen(bool on);
    void reevaluate();
    void raise(uint32_t bits);
    uint32_t level_bits();
    bool frame_complete() const;

    int32_t try_accept(bool async);
    void attach_connection(int fd, uint64_t peer_pid);
    void reset_connection();
    void close_connection();
    void release_listener();
    void finish_close();

    int send_pending();
    void flush_background();
    int32_t write_failed(int err, bool background);
    int64_t send_direct(const unsigned char *prefix, size_t prefix_len, const IoVec *iov, size_t iovcnt);
    void append(const unsigned char *prefix, size_t prefix_len, const IoVec *iov, size_t iovcnt, size_t skip,
                size_t count);

    int64_t read_bytes(const IoVec *iov, size_t iovcnt);
    int64_t read_message(const IoVec *iov, size_t iovcnt, size_t total, uint32_t *msg_flags);
    int32_t fill(size_t want);
    int32_t read_failed(int err);

    std::mutex mu_;
    const Setup setup_;
    const size_t write_cap_;  // out_buffer_size within sane bounds (64 KiB .. 16 MiB), as on Windows
    std::shared_ptr<Listener> listener_;  // server: until close or poll close
    int fd_ = -1;                         // the connection
    int listen_fd_ = -1;                  // server: our dup of the listening socket in our epoll set
    State state_ = State::idle;
    uint32_t gen_ = 0;  // connection generation: tags epoll events of fd_

    EventState es_;
    std::shared_ptr<EpollPoll> poll_;  // bound for life at the first registration
    uint32_t src_id_ = 0;
    bool closed_ = false;     // npipe_close was called
    bool cancelled_ = false;  // the poll was closed
    bool lingering_ = false;

    // Read side (rbuf_ is used in message mode only).
    Bytes rbuf_;
    size_t rpos_ = 0;
    bool eof_ = false;
    Failure read_fail_;  // sticky, returned after the buffered bytes
    bool in_msg_ = false;  // a header was consumed, msg_left_ payload bytes follow
    size_t msg_left_ = 0;

    // Write side.
    Bytes wbuf_;
    size_t wpos_ = 0;
    Failure write_fail_;  // sticky: every later write returns it
    bool peer_gone_ = false;
    bool write_blocked_ = false;  // a write returned EAGAIN: WRITABLE when room frees
    bool flush_waiting_ = false;  // a flush returned EAGAIN: WRITABLE when drained

    Failure pending_;       // npipe_take_error: the first background failure
    Failure connect_fail_;  // a failed wait for a client (npipe_connect / npipe_take_error)

    uint64_t peer_pid_ = 0;
    uint64_t bytes_read_ = 0;
    uint64_t bytes_written_ = 0;
    uint64_t sent_conn_ = 0;  // bytes handed to the kernel on this connection
};

}  // namespace npipe::posix
