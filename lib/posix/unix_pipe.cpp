#include "unix_pipe.hpp"

#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "errno_map.hpp"
#include "framing.hpp"
#include "lib/core/error_detail.hpp"
#include "lib/core/status.hpp"

namespace npipe::posix {
namespace {

constexpr uint32_t kTagListen = 1;  // tag bit 0: 1 = our dup of the listening socket, 0 = the connection
constexpr uint32_t kConnEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
constexpr size_t kReadChunk = 64 * 1024;
constexpr int kSendFlags = MSG_NOSIGNAL | MSG_DONTWAIT;  // never SIGPIPE, never block
constexpr const char *kCanceled = "the pipe's poll was closed; the pipe can make no more progress";
constexpr int32_t kEof = 1;                              // fill(): the peer will send nothing more
// The caller's out_buffer_size is a hint: a silly one (1 byte, 4 GiB) must not mean a syscall per
// byte or an unbounded buffer. Same bounds as the Windows backend.
constexpr size_t kMinWriteCap = 64u * 1024u;
constexpr size_t kMaxWriteCap = 16u * 1024u * 1024u;

size_t total_length(const IoVec *iov, size_t n) {
    size_t total = 0;
    for (size_t i = 0; i < n; ++i) total = iov[i].len > SIZE_MAX - total ? SIZE_MAX : total + iov[i].len;
    return total;
}

// Up to `cap` kernel iovecs for the bytes of `iov` from offset `skip` on.
size_t to_iovecs(const IoVec *iov, size_t n, size_t skip, iovec *out, size_t cap) {
    size_t k = 0;
    for (size_t i = 0; i < n && k < cap; ++i) {
        if (skip >= iov[i].len) {
            skip -= iov[i].len;
            continue;
        }
        out[k].iov_base = static_cast<char *>(iov[i].base) + skip;
        out[k].iov_len = iov[i].len - skip;
        skip = 0;
        if (out[k].iov_len) ++k;
    }
    return k;
}

bool peer_left(int err) { return err == EPIPE || err == ECONNRESET || err == ENOTCONN || err == ESHUTDOWN; }

}  // namespace

UnixPipe::UnixPipe(const Setup &setup, std::shared_ptr<Listener> listener)
    : setup_(setup),
      write_cap_(std::clamp<size_t>(setup.out_buffer_size, kMinWriteCap, kMaxWriteCap)),
      listener_(std::move(listener)) {}

UnixPipe::UnixPipe(const Setup &setup, int fd, uint64_t peer_pid)
    : setup_(setup), write_cap_(std::clamp<size_t>(setup.out_buffer_size, kMinWriteCap, kMaxWriteCap)) {
    attach_connection(fd, peer_pid);
}

UnixPipe::~UnixPipe() {
    if (fd_ >= 0) ::close(fd_);
    if (listen_fd_ >= 0) ::close(listen_fd_);
    if (listener_) listener_->release();
}

// ---------------------------------------------------------------------------------------------
// Registration and events

int32_t UnixPipe::register_with(const std::shared_ptr<Poll> &poll, uint64_t token, uint32_t interests) {
    std::lock_guard<std::mutex> lock(mu_);
    if (cancelled_) return fail(st::canceled, kCanceled);
    if (closed_) return fail(st::badf, "the pipe is closed");
    auto ep = std::static_pointer_cast<EpollPoll>(poll);
    if (poll_ && poll_ != ep)
        return fail(st::exist, "the pipe is bound to another poll (a pipe belongs to the first poll it was "
                               "registered with, for life)");
    if (es_.registered()) return fail(st::exist, "the pipe is already registered with this poll");
    if (!poll_) {
        const int32_t rc = bind_poll(ep);
        if (rc < 0) return rc;
    }
    es_.arm(token, interests);
    reevaluate();
    return st::ok;
}

int32_t UnixPipe::reregister(const std::shared_ptr<Poll> &poll, uint64_t token, uint32_t interests) {
    std::lock_guard<std::mutex> lock(mu_);
    if (cancelled_) return fail(st::canceled, kCanceled);
    if (poll_ && poll_ != poll) return fail(st::exist, "the pipe is bound to another poll");
    if (!es_.registered()) return fail(st::noent, "the pipe is not registered with a poll");
    es_.arm(token, interests);
    reevaluate();
    return st::ok;
}

int32_t UnixPipe::deregister(const std::shared_ptr<Poll> &poll) {
    std::lock_guard<std::mutex> lock(mu_);
    if (cancelled_) return fail(st::canceled, kCanceled);
    if (poll_ && poll_ != poll) return fail(st::exist, "the pipe is bound to another poll");
    if (!es_.registered()) return fail(st::noent, "the pipe is not registered with a poll");
    es_.disarm();
    return st::ok;
}

int32_t UnixPipe::bind_poll(const std::shared_ptr<EpollPoll> &poll) {
    const uint32_t id = poll->add_source(std::weak_ptr<EpollSource>(weak_from_this()));
    if (poll->is_closed()) {
        // Closed between the caller's check and add_source: on_close may have missed us.
        poll->remove_source(id);
        return fail(st::badf, "the poll is closed");
    }
    int err = 0;
    const char *what = nullptr;
    if (fd_ >= 0 && (err = poll->ctl(EPOLL_CTL_ADD, fd_, id, conn_tag(), kConnEvents)) != 0) {
        what = "epoll_ctl(ADD) of the socket";
    } else if (setup_.server && listener_) {
        listen_fd_ = fcntl(listener_->fd(), F_DUPFD_CLOEXEC, 0);
        if (listen_fd_ < 0) {
            err = errno;
            what = "dup of the listening socket";
        } else if ((err = poll->ctl(EPOLL_CTL_ADD, listen_fd_, id, kTagListen,
                                    state_ == State::connecting ? EPOLLIN | EPOLLET : EPOLLET)) != 0) {
            what = "epoll_ctl(ADD) of the listening socket";
            ::close(listen_fd_);
            listen_fd_ = -1;
        }
        if (what && fd_ >= 0) poll->ctl(EPOLL_CTL_DEL, fd_, id, 0, 0);
    }
    if (what) {
        poll->remove_source(id);
        return fail_errno(err, what);
    }
    poll_ = poll;
    src_id_ = id;
    return st::ok;
}

uint32_t UnixPipe::conn_tag() const { return static_cast<uint32_t>(gen_ << 1); }

void UnixPipe::arm_listen(bool on) {
    if (poll_ && listen_fd_ >= 0)
        poll_->ctl(EPOLL_CTL_MOD, listen_fd_, src_id_, kTagListen, on ? EPOLLIN | EPOLLET : EPOLLET);
}

void UnixPipe::raise(uint32_t bits) {
    if (bits && es_.raise(bits) && poll_ && !cancelled_) poll_->notify(shared_from_this());
}

// The socket's readiness right now (no waiting), for (re)registration and level mode.
static short socket_state(int fd) {
    pollfd p{fd, POLLIN | POLLOUT | POLLRDHUP, 0};
    return ::poll(&p, 1, 0) > 0 ? p.revents : 0;
}

bool UnixPipe::frame_complete() const {
    if (in_msg_) return read_buffered() >= msg_left_;
    if (read_buffered() < framing::kHeaderSize) return false;
    return read_buffered() - framing::kHeaderSize >= framing::get_length(rbuf_.data() + rpos_);
}

uint32_t UnixPipe::level_bits() {
    if (fd_ < 0) return 0;
    const short re = socket_state(fd_);
    uint32_t bits = 0;
    if (can_read() && (eof_ || read_fail_.code != 0 || (message_mode() && frame_complete()) ||
                       (re & (POLLIN | POLLRDHUP | POLLHUP | POLLERR))))
        bits |= ev::readable;
    if (can_write() && !peer_gone_ && write_fail_.code == 0 && room() > 0)
        bits |= ev::writable;
    return bits;
}

// (Re)registration: report what the current state warrants, and start a pending connect.
void UnixPipe::reevaluate() {
    if (setup_.server && state_ == State::connecting) {
        arm_listen(true);
        try_accept(true);
        return;  // a new connection raises its own events
    }
    if (fd_ < 0) return;
    const short re = socket_state(fd_);
    uint32_t bits = level_bits();
    if (can_read() && (eof_ || (re & (POLLRDHUP | POLLHUP)))) bits |= ev::read_closed;
    if (can_write() && (peer_gone_ || (re & POLLHUP))) {
        peer_gone_ = true;
        bits |= ev::write_closed;
    }
    if (read_fail_.code != 0 || write_fail_.code != 0) bits |= ev::error;
    raise(bits);
}

bool UnixPipe::collect(Event &event, bool &keep_queued) {
    std::lock_guard<std::mutex> lock(mu_);
    const uint32_t level = es_.level() && !cancelled_ ? level_bits() : 0;
    const uint32_t events = es_.take(level, keep_queued);
    if (events == 0) return false;
    event = Event{es_.token(), events, 0};
    return true;
}

void UnixPipe::on_os_event(uint32_t tag, uint32_t events) {
    std::lock_guard<std::mutex> lock(mu_);
    if (cancelled_) return;
    if (tag & kTagListen) {
        if (!closed_ && state_ == State::connecting && es_.registered()) try_accept(true);
        return;
    }
    if (fd_ < 0 || tag != conn_tag()) return;  // an event of an earlier connection
    if (closed_) {
        // Lingering: keep draining, close once everything is in the kernel or the peer is gone.
        if (send_pending() != 0 || write_pending() == 0 || (events & (EPOLLHUP | EPOLLERR))) finish_close();
        return;
    }
    uint32_t bits = 0;
    if (can_read()) {
        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) bits |= ev::readable;
        if (events & (EPOLLRDHUP | EPOLLHUP)) bits |= ev::read_closed;
    }
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) flush_background();
    if (can_write() && (events & EPOLLHUP) && !peer_gone_) {
        peer_gone_ = true;
        bits |= ev::write_closed;
    }
    raise(bits);
}

void UnixPipe::on_poll_closed() {
    std::lock_guard<std::mutex> lock(mu_);
    if (cancelled_) return;
    cancelled_ = true;
    lingering_ = false;  // the poll dropped its linger list itself
    es_.disarm();
    release_listener();
    close_connection();
    poll_.reset();  // the epoll set and eventfd go as soon as the poll object does
}

void UnixPipe::on_linger_expired() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!lingering_) return;
    lingering_ = false;  // the poll already forgot the linger
    finish_close();
}

// ---------------------------------------------------------------------------------------------
// Connection lifecycle

void UnixPipe::attach_connection(int fd, uint64_t peer_pid) {
    fd_ = fd;
    peer_pid_ = peer_pid;
    state_ = State::connected;
    ++gen_;
    // One-way ends: shut the other direction so the peer sees it at once.
    if (!can_write()) shutdown(fd_, SHUT_WR);
    if (!can_read()) shutdown(fd_, SHUT_RD);
    if (poll_) {
        const int err = poll_->ctl(EPOLL_CTL_ADD, fd_, src_id_, conn_tag(), kConnEvents);
        if (err != 0) {
            read_fail_ = errno_failure(err, "epoll_ctl(ADD) of the accepted socket");
            write_fail_ = read_fail_;
            if (pending_.code == 0) pending_ = read_fail_;
        }
    }
}

int32_t UnixPipe::try_accept(bool async) {
    if (!listener_) return st::again;
    for (;;) {
        const int c = accept4(listener_->fd(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (c < 0) {
            const int err = errno;
            if (err == EAGAIN || err == EWOULDBLOCK) return st::again;
            if (err == EINTR || err == ECONNABORTED) continue;
            state_ = State::idle;
            arm_listen(false);
            Failure f = errno_failure(err, "accept of a client");
            if (!async) return report(f);
            connect_fail_ = std::move(f);
            raise(ev::connected | ev::error);
            return connect_fail_.code;
        }
        const PeerCred cred = peer_cred(c);
        if ((setup_.flags & pf::current_user_only) && cred.uid != geteuid()) {
            ::close(c);  // a foreign user's client: drop it and keep waiting
            continue;
        }
        arm_listen(false);
        attach_connection(c, cred.pid);
        uint32_t bits = ev::writable | (async ? ev::connected : 0);
        if (read_fail_.code != 0) bits |= ev::error;
        raise(bits);
        return st::ok;
    }
}

void UnixPipe::close_connection() {
    if (fd_ >= 0) {
        if (poll_) poll_->ctl(EPOLL_CTL_DEL, fd_, src_id_, 0, 0);
        ::close(fd_);
        fd_ = -1;
    }
    Bytes().swap(wbuf_);
    wpos_ = 0;
    Bytes().swap(rbuf_);
    rpos_ = 0;
}

void UnixPipe::reset_connection() {
    close_connection();
    state_ = State::idle;
    arm_listen(false);
    eof_ = false;
    read_fail_ = Failure{};
    in_msg_ = false;
    msg_left_ = 0;
    write_fail_ = Failure{};
    peer_gone_ = false;
    write_blocked_ = false;
    flush_waiting_ = false;
    pending_ = Failure{};
    connect_fail_ = Failure{};
    peer_pid_ = 0;
    sent_conn_ = 0;
    es_.reset_connection();
}

void UnixPipe::release_listener() {
    if (listen_fd_ >= 0) {
        // DEL before close: the dup shares its file with the listener, so closing the dup alone
        // would leave the registration in the epoll set.
        if (poll_) poll_->ctl(EPOLL_CTL_DEL, listen_fd_, src_id_, 0, 0);
        ::close(listen_fd_);
        listen_fd_ = -1;
    }
    if (listener_) {
        listener_->release();
        listener_.reset();
    }
}

void UnixPipe::finish_close() {
    close_connection();
    if (poll_) {
        if (lingering_) poll_->end_linger(src_id_);
        poll_->remove_source(src_id_);
    }
    lingering_ = false;
}

int32_t UnixPipe::connect() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!setup_.server) return fail(st::inval, "npipe_connect is for server instances; this is a client end");
    if (cancelled_) return fail(st::canceled, kCanceled);
    if (closed_) return fail(st::badf, "the pipe is closed");
    switch (state_) {
        case State::connected: return st::ok;
        case State::connecting: return fail(st::again, "still waiting for a client; NPIPE_CONNECTED follows");
        case State::idle: break;
    }
    if (connect_fail_.code != 0) {
        const Failure f = std::move(connect_fail_);
        connect_fail_ = Failure{};
        return report(f);
    }
    state_ = State::connecting;
    if (!es_.registered())
        return fail(st::again, "waiting for a client starts when the pipe is registered with a poll");
    arm_listen(true);
    const int32_t rc = try_accept(false);
    if (rc == st::again) return fail(st::again, "waiting for a client; NPIPE_CONNECTED follows");
    return rc;
}

int32_t UnixPipe::disconnect() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!setup_.server) return fail(st::inval, "npipe_disconnect is for server instances; this is a client end");
    if (cancelled_) return fail(st::canceled, kCanceled);
    if (closed_) return fail(st::badf, "the pipe is closed");
    reset_connection();
    return st::ok;
}

int32_t UnixPipe::take_error() {
    std::lock_guard<std::mutex> lock(mu_);
    if (cancelled_) return fail(st::canceled, kCanceled);
    Failure *slot = pending_.code != 0 ? &pending_ : connect_fail_.code != 0 ? &connect_fail_ : nullptr;
    if (!slot) return st::ok;
    const Failure f = std::move(*slot);
    *slot = Failure{};
    return report(f);
}

void UnixPipe::close() {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    closed_ = true;
    es_.disarm();
    release_listener();
    if (fd_ >= 0 && write_pending() > 0 && setup_.linger_ms >= 0 && !cancelled_) {
        const int err = send_pending();  // best effort at once, also for a pipe without a poll
        if (err == 0 && write_pending() > 0 && poll_) {
            // Keep delivering from the poll for at most linger_ms; the poll keeps us alive.
            lingering_ = true;
            poll_->start_linger(src_id_, shared_from_this(), setup_.linger_ms);
            return;
        }
    }
    finish_close();
}

// ---------------------------------------------------------------------------------------------
// Writing

int32_t UnixPipe::check_io(Dir dir) {
    if (cancelled_) return fail(st::canceled, kCanceled);
    if (closed_) return fail(st::badf, "the pipe is closed");
    if (!es_.registered()) return fail(st::again, "pipe is not registered with a poll");
    if (dir == Dir::read && !can_read())
        return fail(st::acces, "this end was opened for writing only (NPIPE_OUTBOUND_ONLY)");
    if (dir == Dir::write && !can_write())
        return fail(st::acces, "this end was opened for reading only (NPIPE_INBOUND_ONLY)");
    if (fd_ < 0) {
        if (setup_.server)
            return fail(st::notconn, "server instance is not connected (npipe_connect, then NPIPE_CONNECTED)");
        return fail(st::notconn, "the pipe's socket was released");
    }
    return st::ok;
}

// Hands buffered bytes to the kernel until it would block. Returns 0 or the errno of a failure.
int UnixPipe::send_pending() {
    while (write_pending() > 0) {
        const ssize_t n = ::send(fd_, wbuf_.data() + wpos_, write_pending(), kSendFlags);
        if (n > 0) {
            wpos_ += static_cast<size_t>(n);
            sent_conn_ += static_cast<uint64_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        return n < 0 ? errno : EIO;
    }
    if (write_pending() == 0) {
        wpos_ = 0;
        if (wbuf_.capacity() > 4u * write_cap_) Bytes().swap(wbuf_);
        else wbuf_.clear();
    }
    return 0;
}

void UnixPipe::flush_background() {
    if (write_pending() > 0) {
        const int err = send_pending();
        if (err != 0) {
            write_failed(err, true);
            return;
        }
    }
    uint32_t bits = 0;
    if (write_blocked_ && room() > 0) {
        write_blocked_ = false;
        bits |= ev::writable;
    }
    if (flush_waiting_ && write_pending() == 0) {
        flush_waiting_ = false;
        bits |= ev::writable;
    }
    raise(bits);
}

// A send failed. `background`: it was sending buffered bytes the caller already had accepted.
int32_t UnixPipe::write_failed(int err, bool background) {
    const bool gone = peer_left(err);
    write_fail_ = gone ? errno_failure(err, "the peer closed the pipe", st::pipe) : errno_failure(err, "send");
    const bool lost = background && write_pending() > 0;
    Bytes().swap(wbuf_);
    wpos_ = 0;
    uint32_t bits = 0;
    if (gone && !peer_gone_) {
        peer_gone_ = true;
        bits |= ev::write_closed;
    }
    if (lost || !gone) {
        // Accepted bytes are never dropped silently: NPIPE_ERROR and npipe_take_error say so.
        bits |= ev::error;
        if (pending_.code == 0) pending_ = write_fail_;
    }
    if (write_blocked_ || flush_waiting_) bits |= ev::writable;
    write_blocked_ = flush_waiting_ = false;
    raise(bits);
    return write_fail_.code;
}

// Appends bytes [skip, skip + count) of (prefix ++ iov) to the write buffer.
void UnixPipe::append(const unsigned char *prefix, size_t prefix_len, const IoVec *iov, size_t iovcnt, size_t skip,
                      size_t count) {
    if (wpos_ > 0 && wpos_ >= wbuf_.size() / 2) {
        wbuf_.erase(wbuf_.begin(), wbuf_.begin() + static_cast<std::ptrdiff_t>(wpos_));
        wpos_ = 0;
    }
    wbuf_.reserve(wbuf_.size() + count);
    auto take = [&](const unsigned char *p, size_t len) {
        if (count == 0) return;
        if (skip >= len) {
            skip -= len;
            return;
        }
        const size_t n = std::min(len - skip, count);
        wbuf_.insert(wbuf_.end(), p + skip, p + skip + n);
        skip = 0;
        count -= n;
    };
    if (prefix_len) take(prefix, prefix_len);
    for (size_t i = 0; i < iovcnt && count > 0; ++i) take(static_cast<const unsigned char *>(iov[i].base), iov[i].len);
}

// sendmsg of (prefix ++ iov) straight from the caller's buffers; returns the bytes the kernel took
// (0 when it would block) or a failure already reported.
int64_t UnixPipe::send_direct(const unsigned char *prefix, size_t prefix_len, const IoVec *iov, size_t iovcnt) {
    iovec v[IOV_MAX];
    size_t k = 0;
    if (prefix_len) v[k++] = iovec{const_cast<unsigned char *>(prefix), prefix_len};
    k += to_iovecs(iov, iovcnt, 0, v + k, IOV_MAX - k);
    if (k == 0) return 0;
    msghdr m{};
    m.msg_iov = v;
    m.msg_iovlen = k;
    for (;;) {
        const ssize_t n = ::sendmsg(fd_, &m, kSendFlags);
        if (n >= 0) {
            sent_conn_ += static_cast<uint64_t>(n);
            return n;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        write_failed(errno, false);
        return report(write_fail_);
    }
}

int64_t UnixPipe::write(const IoVec *iov, size_t iovcnt) {
    std::lock_guard<std::mutex> lock(mu_);
    int32_t rc = check_io(Dir::write);
    if (rc < 0) return rc;
    if (write_fail_.code != 0) return report(write_fail_);
    if (peer_gone_) return fail(st::pipe, "the peer closed the pipe");
    const size_t total = total_length(iov, iovcnt);
    if (message_mode()) {
        if (total > kMaxMessageSize)
            return failf(st::msgsize, 0, "a message of %zu bytes exceeds the 16 MiB limit", total);
    } else if (total == 0) {
        return 0;
    }
    if (write_pending() > 0) {
        const int err = send_pending();
        if (err != 0) {
            write_failed(err, true);
            return report(write_fail_);
        }
    }
    unsigned char header[framing::kHeaderSize];
    const unsigned char *prefix = nullptr;
    size_t prefix_len = 0;
    if (message_mode()) {
        framing::put_length(header, static_cast<uint32_t>(total));
        prefix = header;
        prefix_len = sizeof header;
    }
    const size_t unit = prefix_len + total;
    if (write_pending() > 0) {
        // Behind buffered bytes: byte mode takes what fits; a message goes whole or not at all.
        const size_t take = message_mode() ? (room() >= unit ? unit : 0) : std::min(room(), unit);
        if (take == 0) {
            write_blocked_ = true;
            return fail(st::again, "the write buffer is full; wait for NPIPE_WRITABLE");
        }
        append(prefix, prefix_len, iov, iovcnt, 0, take);
        bytes_written_ += take - prefix_len;
        return static_cast<int64_t>(take - prefix_len);
    }
    const int64_t sent = send_direct(prefix, prefix_len, iov, iovcnt);
    if (sent < 0) return sent;
    size_t done = static_cast<size_t>(sent);
    if (done < unit) {
        // The kernel is full: buffer the rest (a message whole, even beyond out_buffer_size).
        const size_t take = message_mode() ? unit - done : std::min(room(), unit - done);
        if (done == 0 && take == 0) {
            write_blocked_ = true;
            return fail(st::again, "the write buffer is full; wait for NPIPE_WRITABLE");
        }
        append(prefix, prefix_len, iov, iovcnt, done, take);
        done += take;
    }
    const size_t accepted = done - prefix_len;
    bytes_written_ += accepted;
    return static_cast<int64_t>(accepted);
}

int32_t UnixPipe::flush() {
    std::lock_guard<std::mutex> lock(mu_);
    int32_t rc = check_io(Dir::flush);
    if (rc < 0) return rc;
    if (write_fail_.code != 0) return report(write_fail_);
    if (write_pending() == 0) return st::ok;
    const int err = send_pending();
    if (err != 0) {
        write_failed(err, true);
        return report(write_fail_);
    }
    if (write_pending() == 0) return st::ok;
    flush_waiting_ = true;
    return failf(st::again, 0, "%zu bytes are still waiting for the kernel; NPIPE_WRITABLE follows when they are handed over",
                 write_pending());
}

// ---------------------------------------------------------------------------------------------
// Reading

int64_t UnixPipe::read(const IoVec *iov, size_t iovcnt, uint32_t *msg_flags) {
    std::lock_guard<std::mutex> lock(mu_);
    if (msg_flags) *msg_flags = 0;
    int32_t rc = check_io(Dir::read);
    if (rc < 0) return rc;
    const size_t total = total_length(iov, iovcnt);
    if (total == 0) return 0;
    if (message_mode()) return read_message(iov, iovcnt, total, msg_flags);
    return read_bytes(iov, iovcnt);
}

int32_t UnixPipe::read_failed(int err) {
    if (peer_left(err)) {
        // A reset or broken connection is the end of the stream, like an orderly close.
        eof_ = true;
        raise(ev::read_closed);
        return kEof;
    }
    read_fail_ = errno_failure(err, "recv");
    if (pending_.code == 0) pending_ = read_fail_;
    raise(ev::error);
    return report(read_fail_);
}

int64_t UnixPipe::read_bytes(const IoVec *iov, size_t iovcnt) {
    if (read_fail_.code != 0) return report(read_fail_);
    if (eof_) return 0;
    iovec v[IOV_MAX];
    msghdr m{};
    m.msg_iov = v;
    m.msg_iovlen = to_iovecs(iov, iovcnt, 0, v, IOV_MAX);
    for (;;) {
        const ssize_t n = ::recvmsg(fd_, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n > 0) {
            bytes_read_ += static_cast<uint64_t>(n);
            return n;
        }
        if (n == 0) {
            eof_ = true;
            raise(ev::read_closed);
            return 0;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return fail(st::again, "no data yet; wait for NPIPE_READABLE");
        const int32_t rc = read_failed(errno);
        return rc == kEof ? 0 : rc;
    }
}

// Pulls more bytes from the socket into rbuf_ (at least one recv of max(64 KiB, want)).
// Returns st::ok, kEof, st::again (not reported) or a reported failure.
int32_t UnixPipe::fill(size_t want) {
    if (read_fail_.code != 0) return report(read_fail_);
    if (eof_) return kEof;
    if (rpos_ > 0 && (rpos_ == rbuf_.size() || rpos_ >= kReadChunk)) {
        rbuf_.erase(rbuf_.begin(), rbuf_.begin() + static_cast<std::ptrdiff_t>(rpos_));
        rpos_ = 0;
    }
    const size_t chunk = std::max(kReadChunk, want);
    const size_t old = rbuf_.size();
    rbuf_.resize(old + chunk);
    for (;;) {
        const ssize_t n = ::recv(fd_, rbuf_.data() + old, chunk, MSG_DONTWAIT);
        if (n > 0) {
            rbuf_.resize(old + static_cast<size_t>(n));
            return st::ok;
        }
        rbuf_.resize(old);
        if (n == 0) {
            eof_ = true;
            raise(ev::read_closed);
            return kEof;
        }
        if (errno == EINTR) {
            rbuf_.resize(old + chunk);
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) return st::again;
        return read_failed(errno);
    }
}

int64_t UnixPipe::read_message(const IoVec *iov, size_t iovcnt, size_t total, uint32_t *msg_flags) {
    for (;;) {
        if (!in_msg_) {
            while (read_buffered() < framing::kHeaderSize) {
                const int32_t rc = fill(framing::kHeaderSize - read_buffered());
                if (rc == st::again) return fail(st::again, "no complete message yet; wait for NPIPE_READABLE");
                if (rc == kEof) return 0;  // end of the stream (a torn header at the end is dropped)
                if (rc < 0) return rc;
            }
            const uint32_t len = framing::get_length(rbuf_.data() + rpos_);
            if (len > kMaxMessageSize) {
                read_fail_ = Failure{st::io, 0,
                                     "a message header announces " + std::to_string(len) +
                                         " bytes, over the 16 MiB limit: the peer does not use npipe message framing"};
                if (pending_.code == 0) pending_ = read_fail_;
                raise(ev::error);
                return report(read_fail_);
            }
            rpos_ += framing::kHeaderSize;
            in_msg_ = true;
            msg_left_ = len;
            if (len == 0) {
                in_msg_ = false;
                if (msg_flags) {
                    *msg_flags = mf::empty;
                    return 0;
                }
                continue;  // npipe_read skips empty messages
            }
        }
        const size_t want = std::min(total, msg_left_);
        while (read_buffered() < want) {
            const int32_t rc = fill(want - read_buffered());
            if (rc == st::again) return fail(st::again, "the rest of the message has not arrived; wait for NPIPE_READABLE");
            if (rc == kEof) break;
            if (rc < 0) return rc;
        }
        const size_t n = std::min(want, read_buffered());
        if (n == 0) return 0;  // the stream ended inside a message: the rest never comes
        size_t copied = 0;
        for (size_t i = 0; i < iovcnt && copied < n; ++i) {
            const size_t part = std::min(iov[i].len, n - copied);
            if (part) std::memcpy(iov[i].base, rbuf_.data() + rpos_ + copied, part);
            copied += part;
        }
        rpos_ += n;
        msg_left_ -= n;
        if (msg_left_ == 0) in_msg_ = false;
        else if (msg_flags && !(eof_ && read_buffered() == 0)) *msg_flags = mf::partial;
        if (rpos_ == rbuf_.size()) {
            rbuf_.clear();
            rpos_ = 0;
        }
        bytes_read_ += n;
        return static_cast<int64_t>(n);
    }
}

// ---------------------------------------------------------------------------------------------
// Info

int32_t UnixPipe::get_info(PipeInfo &info) {
    std::lock_guard<std::mutex> lock(mu_);
    info.flags = (setup_.flags & (pf::server_mask | pf::client_mask)) | (setup_.server ? pf::info_server : 0) |
                 (fd_ >= 0 ? pf::info_connected : 0);
    info.in_buffer_size = setup_.in_buffer_size;
    info.out_buffer_size = setup_.out_buffer_size;
    info.max_instances = setup_.max_instances;
    info.peer_pid = peer_pid_;
    info.bytes_read = bytes_read_;
    info.bytes_written = bytes_written_;
    info.write_pending = write_pending();
    uint64_t buffered = 0;
    if (message_mode()) {
        // Payload bytes in the receive buffer: walk the frames.
        size_t pos = rpos_;
        size_t left = in_msg_ ? msg_left_ : 0;
        while (pos < rbuf_.size()) {
            if (left == 0) {
                if (rbuf_.size() - pos < framing::kHeaderSize) break;
                left = framing::get_length(rbuf_.data() + pos);
                pos += framing::kHeaderSize;
                continue;
            }
            const size_t part = std::min(left, rbuf_.size() - pos);
            buffered += part;
            pos += part;
            left -= part;
        }
    }
    info.read_available = buffered;
    info.peer_unread = 0;
    if (fd_ >= 0) {
        int n = 0;
        if (ioctl(fd_, FIONREAD, &n) == 0 && n > 0) info.read_available += static_cast<uint64_t>(n);
        // SIOCOUTQ counts the kernel memory of what the peer has not read yet (slightly more than
        // the bytes); it is 0 exactly when the peer has read everything. Bounded by what we sent.
        n = 0;
        if (ioctl(fd_, SIOCOUTQ, &n) == 0 && n > 0)
            info.peer_unread = std::min<uint64_t>(static_cast<uint64_t>(n), sent_conn_);
    }
    return st::ok;
}

int32_t UnixPipe::raw_handle(intptr_t &out) {
    std::lock_guard<std::mutex> lock(mu_);
    int fd = fd_;
    if (fd < 0 && listen_fd_ >= 0) fd = listen_fd_;
    if (fd < 0 && listener_) fd = listener_->fd();
    out = fd;
    return st::ok;
}

}  // namespace npipe::posix
