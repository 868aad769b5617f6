#include "lib/posix/unix_pipe.hpp"

#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <utility>

#include "lib/core/error_detail.hpp"
#include "lib/core/status.hpp"
#include "lib/posix/errno_map.hpp"

namespace npipe::posix {
namespace {

// EPOLLOUT is asked for only while the kernel has refused bytes (want_write_space): a peer's every
// read would otherwise wake this end's poll, and a read that waits would pay a second wake-up.
constexpr uint32_t kConnEvents = EPOLLIN | EPOLLRDHUP | EPOLLET;
constexpr size_t kReceiveChunk = 64 * 1024;
// What a conversing reader asks for beyond the caller's buffers (UnixPipe::spill_).
constexpr size_t kSpill = 4096;
constexpr int kSendFlags = MSG_NOSIGNAL | MSG_DONTWAIT;  // never SIGPIPE, never block

bool peer_left(int err) { return err == EPIPE || err == ECONNRESET || err == ENOTCONN || err == ESHUTDOWN; }

// Who the peer is, from SO_PEERCRED; "the same user" is this process's effective uid, the one the
// kernel checks the socket file's mode against.
PeerIdentity identity_of(const PeerCred &cred) {
    PeerIdentity id;
    id.pid = cred.pid;
    id.uid = static_cast<uint32_t>(cred.uid);
    id.gid = static_cast<uint32_t>(cred.gid);
    if (cred.uid == geteuid()) id.flags |= peer::same_user;
    return id;
}

// Kernel iovecs for (prefix ++ iov), at most IOV_MAX of them.
size_t to_iovecs(const uint8_t *prefix, size_t prefix_len, const IoVec *iov, size_t iovcnt, iovec *out) {
    size_t k = 0;
    if (prefix_len) out[k++] = iovec{const_cast<uint8_t *>(prefix), prefix_len};
    for (size_t i = 0; i < iovcnt && k < IOV_MAX; ++i)
        if (iov[i].len) out[k++] = iovec{iov[i].base, iov[i].len};
    return k;
}

// sendmsg without SIGPIPE or blocking: the count taken, 0 when the kernel is full, or -errno.
ssize_t send_iovecs(int fd, iovec *v, size_t k) {
    if (k == 0) return 0;
    for (;;) {
        ssize_t n;
        if (k == 1) {  // one range: send, without the message header's set-up
            n = ::send(fd, v[0].iov_base, v[0].iov_len, kSendFlags);
        } else {
            msghdr m{};
            m.msg_iov = v;
            m.msg_iovlen = k;
            n = ::sendmsg(fd, &m, kSendFlags);
        }
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        return -errno;
    }
}

ssize_t recvmsg_nonblocking(int fd, iovec *v, size_t k) {
    msghdr m{};
    m.msg_iov = v;
    m.msg_iovlen = k;
    return ::recvmsg(fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
}

// The gathering paths, kept out of line: their IOV_MAX arrays would make every caller's frame
// 16 KiB, which costs a stack probe per page on every call. recv_iovecs receives into the
// caller's buffers, then into `spill` (none when its len is 0); `asked` is how many bytes the recv
// could take (at most IOV_MAX ranges go to the kernel), so a read shorter than that found the
// receive queue empty.
[[gnu::noinline]] ssize_t recv_iovecs(int fd, const IoVec *iov, size_t iovcnt, const IoVec &spill, size_t &asked) {
    iovec v[IOV_MAX];
    size_t k = to_iovecs(nullptr, 0, iov, iovcnt, v);
    if (spill.len && k < IOV_MAX) v[k++] = iovec{spill.base, spill.len};
    asked = 0;
    for (size_t i = 0; i < k; ++i) asked += v[i].iov_len;
    return recvmsg_nonblocking(fd, v, k);
}

[[gnu::noinline]] ssize_t send_gathered(int fd, const uint8_t *prefix, size_t prefix_len, const IoVec *iov,
                                        size_t iovcnt) {
    iovec v[IOV_MAX];
    return send_iovecs(fd, v, to_iovecs(prefix, prefix_len, iov, iovcnt, v));
}

}  // namespace

UnixPipe::UnixPipe(const PipeSetup &setup, std::shared_ptr<ListeningSocket> listener)
    : PipeCore(setup), listener_(std::move(listener)) {}

UnixPipe::UnixPipe(const PipeSetup &setup, int fd, uint64_t peer_pid) : PipeCore(setup) {
    attach_connection(fd, peer_pid);
}

UnixPipe::UnixPipe(const PipeSetup &setup, const sockaddr_un &address, socklen_t address_len, std::string path)
    : PipeCore(setup), address_(address), address_len_(address_len), path_(std::move(path)) {}

UnixPipe::~UnixPipe() {
    if (fd_ >= 0) ::close(fd_);
    if (listener_) listener_->release();
}

// ---------------------------------------------------------------------------------------------
// Registration and readiness

int32_t UnixPipe::os_attach(ReadyPoll &poll_base) {
    auto &poll = static_cast<EpollPoll &>(poll_base);  // create_poll makes nothing else on Linux
    const uint32_t id =
        poll.add_source(std::weak_ptr<EpollSource>(std::static_pointer_cast<UnixPipe>(shared_from_this())));
    int err = 0;
    const char *what = nullptr;
    if (fd_ >= 0 && write_queue_.has_queued()) out_armed_ = true;  // bytes queued before registration
    if (fd_ >= 0 && (err = poll.ctl(EPOLL_CTL_ADD, fd_, id, conn_tag(), conn_events())) != 0) {
        what = "epoll_ctl(ADD) of the socket";
    } else if (setup().server && listener_) {
        const int32_t rc =
            SocketWatch::of(listener_, std::static_pointer_cast<EpollPoll>(poll.shared_from_this()), watch_);
        if (rc < 0) {
            if (fd_ >= 0) poll.ctl(EPOLL_CTL_DEL, fd_, id, 0, 0);
            poll.remove_source(id);
            return rc;
        }
    }
    if (what) {
        poll.remove_source(id);
        return fail_errno(err, what);
    }
    source_id_ = id;
    return st::ok;
}

uint32_t UnixPipe::conn_tag() const { return generation_; }

uint32_t UnixPipe::conn_events() const { return kConnEvents | (out_armed_ ? EPOLLOUT : 0u); }

// EPOLLOUT is wanted once the kernel took less than it was offered, and dropped when an EPOLLOUT
// found nothing queued (so a bulk transfer that keeps the kernel full keeps it without a system
// call per episode). EPOLL_CTL_MOD re-evaluates the socket, so room that came meanwhile is
// reported at once.
void UnixPipe::want_write_space(bool wanted) {
    if (out_armed_ == wanted) return;
    out_armed_ = wanted;
    if (fd_ >= 0 && poll() && source_id_ != 0) epoll().ctl(EPOLL_CTL_MOD, fd_, source_id_, conn_tag(), conn_events());
}

void UnixPipe::on_os_event(uint32_t tag, uint32_t events) {
    std::lock_guard lock(mu_);
    if (canceled() || released()) return;
    if (fd_ < 0 || tag != conn_tag()) return;  // an event of an earlier connection
    if (closed()) {
        // Lingering: keep draining; a peer that left ends the linger.
        if (events & (EPOLLHUP | EPOLLERR)) {
            on_write_failed(Failure{st::pipe, 0, "the peer closed the pipe"});
            return;
        }
        os_write_more();
        write_progressed();
        return;
    }
    if (setup().can_read) {
        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) input_ = KernelInput::arrived;
        if (events & (EPOLLRDHUP | EPOLLHUP)) {
            peer_finished_ = true;
            peer_stopped_sending();
        } else if (events & (EPOLLIN | EPOLLERR))
            data_arrived();
    }
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
        const bool had_queued = write_queue_.has_queued();
        if (had_queued) os_write_more();
        write_progressed();
        if (!had_queued && (events & EPOLLOUT)) want_write_space(false);
    }
    if (events & EPOLLHUP) on_peer_gone();
}

// The socket's readiness right now (no waiting), for (re)registration and level mode.
uint32_t UnixPipe::os_condition() {
    if (fd_ < 0) return 0;
    pollfd p{fd_, POLLIN | POLLOUT | POLLRDHUP, 0};
    const short re = ::poll(&p, 1, 0) > 0 ? p.revents : 0;
    uint32_t bits = 0;
    if (re & (POLLIN | POLLRDHUP | POLLHUP | POLLERR)) bits |= ev::readable;
    if (re & (POLLRDHUP | POLLHUP)) bits |= ev::read_closed;
    if (re & POLLHUP) bits |= ev::write_closed;
    return bits;
}

// From the last event or read where they tell; poll(2) only when neither does (a new connection,
// or a read that filled the caller's buffer and so may have left bytes behind).
bool UnixPipe::os_readable() {
    if (input_ == KernelInput::unknown)
        input_ = (os_condition() & ev::readable) ? KernelInput::arrived : KernelInput::empty;
    return input_ == KernelInput::arrived;
}

// After a read took `n` of the `asked` bytes: a short read emptied the receive queue. Once the
// peer has finished sending, its end of stream is still to be read, and no event will say so again.
void UnixPipe::took_input(size_t n, size_t asked) {
    input_ = n < asked && !peer_finished_ ? KernelInput::empty : KernelInput::unknown;
}

// A new connection, or none: nothing is known of its receive queue yet.
void UnixPipe::forget_input() {
    input_ = KernelInput::unknown;
    spill_ = true;
    peer_finished_ = false;
}

// After a recv that failed with `err`: EAGAIN found the receive queue empty; anything else ends
// the reading.
void UnixPipe::took_nothing(int err) {
    if (err == EAGAIN || err == EWOULDBLOCK)
        input_ = KernelInput::empty;
    else
        read_failed(err);
}

// ---------------------------------------------------------------------------------------------
// npipe_wait's receive: recv blocks until bytes come, the peer leaves or the time is up, and
// returns with the bytes (PipeCore::wait_without_poll says when and why).

bool UnixPipe::os_begin_receive(int32_t timeout_ms, uint8_t * /*buf*/, size_t /*len*/) {
    // recv itself starts in os_receive, unlocked: a close meanwhile shuts the socket down first.
    if (fd_ < 0 || receiving_fd_ >= 0) return false;
    if (!blocking_allowed_) {
        const int flags = fcntl(fd_, F_GETFL);
        if (flags < 0 || fcntl(fd_, F_SETFL, flags & ~O_NONBLOCK) != 0) return false;
        blocking_allowed_ = true;
        receive_timeout_ms_ = -1;  // a new socket has no SO_RCVTIMEO
    }
    // A timeout a little shorter than the time left is kept (recv returns early and the wait
    // looks again), so a caller waiting with a deadline does not pay a setsockopt per wait.
    const bool keep = receive_timeout_ms_ < 0 ? timeout_ms < 0
                                              : timeout_ms >= receive_timeout_ms_ &&
                                                    (timeout_ms < 0 || timeout_ms / 2 <= receive_timeout_ms_);
    if (!keep) {
        timeval tv{};  // zero: no limit
        if (timeout_ms > 0) {
            tv.tv_sec = timeout_ms / 1000;
            tv.tv_usec = static_cast<suseconds_t>(timeout_ms % 1000) * 1000;
        }
        if (setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) return false;
        receive_timeout_ms_ = timeout_ms;
    }
    receiving_fd_ = fd_;
    return true;
}

int64_t UnixPipe::os_receive(uint8_t *buf, size_t len) {
    const ssize_t n = ::recv(receiving_fd_, buf, len, 0);
    return n >= 0 ? n : -errno;
}

bool UnixPipe::os_end_receive(int64_t result, size_t asked) {
    const int fd = std::exchange(receiving_fd_, -1);
    if (fd != fd_) {
        ::close(fd);  // shut down by close_connection, which left the closing to us
        return false;
    }
    if (result > 0) {
        // An EPOLLIN a poll driver took meanwhile may be news of bytes after these: keep it.
        if (input_ != KernelInput::arrived) took_input(static_cast<size_t>(result), asked);
    } else if (result == 0) {
        on_eof(false);
    } else if (result != -EINTR && result != -EAGAIN && result != -EWOULDBLOCK) {
        read_failed(static_cast<int>(-result));
    }
    return true;
}

// ---------------------------------------------------------------------------------------------
// Connection lifecycle

int UnixPipe::attach_connection(int fd, uint64_t peer_pid) {
    fd_ = fd;
    peer_pid_ = peer_pid;
    ++generation_;
    forget_input();
    blocking_allowed_ = false;
    // One-way ends: shut the other direction so the peer sees it at once.
    if (!setup().can_write) shutdown(fd_, SHUT_WR);
    if (!setup().can_read) shutdown(fd_, SHUT_RD);
    out_armed_ = false;
    if (poll()) return epoll().ctl(EPOLL_CTL_ADD, fd_, source_id_, conn_tag(), conn_events());
    return 0;
}

// One non-blocking connect. AF_UNIX connects never pend: the kernel queues the connection in the
// listener's backlog at once, or answers why not.
PipeCore::OpenAttempt UnixPipe::os_try_open() {
    OpenAttempt a;
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        a.failure = errno_failure(errno, "socket");
        return a;
    }
    int err = 0;
    while (::connect(fd, reinterpret_cast<const sockaddr *>(&address_), address_len_) != 0) {
        if (errno == EINTR) continue;
        err = errno;
        break;
    }
    if (err != 0) {
        ::close(fd);
        if (err == ENOENT || err == ECONNREFUSED) {  // no socket, or nobody listening on it yet
            a.outcome = OpenAttempt::absent;
            a.failure = failuref(st::noent, static_cast<uint32_t>(err), "no server is listening on %s", path_.c_str());
        } else if (err == EAGAIN) {
            a.outcome = OpenAttempt::busy;
            a.failure = failuref(st::busy, static_cast<uint32_t>(err), "pipe %s is busy (its listen backlog is full)",
                                 path_.c_str());
        } else if (err == EACCES || err == EPERM) {
            a.failure = errno_failure(err, "connect (permission denied on the pipe's socket)", st::acces);
        } else if (err == ENOTDIR) {
            a.failure = errno_failure(err, "connect", st::noent);
        } else {
            a.failure = errno_failure(err, "connect");
        }
        return a;
    }
    const PeerCred cred = peer_cred(fd);
    if (refuses(cred)) {
        ::close(fd);
        a.failure =
            failuref(st::acces, 0, "the server of %s runs as uid %u, not as this user (NPIPE_CURRENT_USER_ONLY)",
                     path_.c_str(), static_cast<unsigned>(cred.uid));
        return a;
    }
    stop_watching_name();  // found: nothing to wait for any more
    err = attach_connection(fd, cred.pid);
    if (err != 0) {
        a.failure = errno_failure(err, "epoll_ctl(ADD) of the connected socket");
        close_connection();
        return a;
    }
    a.outcome = OpenAttempt::connected;
    return a;
}

namespace {

// The socket path's directory and file name, for the name watch.
std::pair<std::string, std::string> split_path(const std::string &path) {
    const size_t slash = path.rfind('/');
    if (slash == std::string::npos) return {".", path};
    return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

}  // namespace

void UnixPipe::os_watch_for_server() {
    const auto [dir, file] = split_path(path_);
    if (!name_watch_ && !NameWatch::of(dir, std::static_pointer_cast<EpollPoll>(poll()), name_watch_)) return;
    name_watch_->enqueue(file, std::static_pointer_cast<UnixPipe>(shared_from_this()));
}

void UnixPipe::stop_watching_name() {
    if (name_watch_) name_watch_->forget(this);
    name_watch_.reset();
}

void UnixPipe::name_appeared() {
    std::lock_guard lock(mu_);
    server_may_have_appeared();
}

// The blocking open: where nobody listens yet, wait in poll(2) on the thread's inotify descriptor
// instead of sleeping, so a server that appears is tried at once. The watch is in place before
// the next attempt, so a name created in between is found by that attempt.
void UnixPipe::os_pause_before_retry(OpenAttempt::Outcome outcome, int32_t ms) {
    if (outcome == OpenAttempt::absent) {
        const auto [dir, file] = split_path(path_);
        DirectoryWatch &watch = thread_directory_watch();
        if (uses_thread_watch_ || (uses_thread_watch_ = watch.watch(dir))) {
            watch.wait_for(file, ms);
            return;
        }
    }
    PipeCore::os_pause_before_retry(outcome, ms);
}

void UnixPipe::os_open_ended() {
    if (uses_thread_watch_) thread_directory_watch().unwatch();
    uses_thread_watch_ = false;
}

int32_t UnixPipe::os_start_connect(Failure &failure) {
    listening_ = true;
    if (!watch_) return st::again;
    // Queue first, then look: a client that arrives in between wakes the watch, which then finds
    // this instance waiting.
    watch_->enqueue(std::static_pointer_cast<UnixPipe>(shared_from_this()));
    return try_accept(failure);
}

// The next client waiting for an instance of the name: one already accepted for an instance that
// stopped waiting, else the backlog's oldest. -1 with errno set when there is none (EAGAIN) or the
// socket fails.
int UnixPipe::next_waiting_client() {
    for (;;) {
        const int c = listener_->take_unclaimed();
        if (c >= 0) return c;
        const int accepted = accept4(listener_->fd(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (accepted >= 0 || (errno != EINTR && errno != ECONNABORTED)) return accepted;
    }
}

int32_t UnixPipe::try_accept(Failure &failure) {
    for (;;) {
        const int c = next_waiting_client();
        if (c < 0) {
            const int err = errno;
            if (err == EAGAIN || err == EWOULDBLOCK) return st::again;
            failure = errno_failure(err, "accept of a client");
            return failure.code;
        }
        const int32_t rc = take_client(c, failure);
        if (rc != st::again) return rc;  // st::again: a foreign client was dropped; keep looking
    }
}

// Takes the accepted client `fd` (consumed in every case): st::ok, st::again when the client was
// a foreign user's and was dropped (NPIPE_CURRENT_USER_ONLY), or a failure.
int32_t UnixPipe::take_client(int fd, Failure &failure) {
    const PeerCred cred = peer_cred(fd);
    if (refuses(cred)) {
        ::close(fd);
        return st::again;
    }
    const int err = attach_connection(fd, cred.pid);
    if (err != 0) {
        failure = errno_failure(err, "epoll_ctl(ADD) of the accepted socket");
        close_connection();
        return failure.code;
    }
    return st::ok;
}

// NPIPE_CURRENT_USER_ONLY: a peer of another user is refused, a client as a Windows instance's
// security descriptor refuses it, a server as the Windows client's check_server_is_current_user does.
bool UnixPipe::refuses(const PeerCred &cred) const {
    return (setup().flags & pf::current_user_only) && !(identity_of(cred).flags & peer::same_user);
}

UnixPipe::Offer UnixPipe::offer_client(int fd) {
    std::lock_guard lock(mu_);
    if (!connecting() || closed() || canceled() || released() || fd_ >= 0) return Offer::not_waiting;
    Failure failure;
    const int32_t rc = take_client(fd, failure);
    if (rc == st::again) return Offer::refused;
    connect_finished(failure);  // connected (no failure) or why not
    return Offer::taken;
}

void UnixPipe::close_connection() {
    if (fd_ >= 0) {
        if (poll()) epoll().ctl(EPOLL_CTL_DEL, fd_, source_id_, 0, 0);
        if (fd_ == receiving_fd_) {
            // npipe_wait's receive is in recv on it, on another thread: shutting the socket down
            // ends that recv at once, and the receive closes the descriptor as it returns, so its
            // number cannot be given to another file while a recv may still be about to use it.
            shutdown(fd_, SHUT_RDWR);
        } else {
            ::close(fd_);
        }
        fd_ = -1;
    }
    decoder_.reset();
    std::vector<uint8_t>().swap(receive_buffer_);
    peer_pid_ = 0;
    sent_on_connection_ = 0;
    peer_reset_ = false;
    out_armed_ = false;
    forget_input();
}

// DisconnectNamedPipe drops the client of a listening Windows instance even when the server has
// not taken it yet (no ConnectNamedPipe, or not completed). Here that client waits with the name's
// socket for whichever instance takes it first, so an instance that was listening without a client
// drops the oldest one waiting, as its Windows twin would have. One that was not listening (it has
// been disconnected since its creation or its last npipe_connect) leaves them to the other
// instances: no Windows client could have come for it.
void UnixPipe::os_disconnect() {
    if (fd_ < 0 && listening_ && listener_) drop_waiting_client();
    listening_ = false;
    close_connection();
}

// The client try_accept would take. Another user's client (NPIPE_CURRENT_USER_ONLY) is closed as
// try_accept closes it, and the look goes on: it could not have connected to a Windows instance
// either.
void UnixPipe::drop_waiting_client() {
    for (;;) {
        const int c = next_waiting_client();
        if (c < 0) return;  // nobody waits (EAGAIN), or the socket cannot say: nothing to drop
        const bool foreign = refuses(peer_cred(c));
        ::close(c);
        if (!foreign) return;
    }
}

void UnixPipe::release_listener() {
    watch_.reset();
    if (listener_) {
        listener_->release();
        listener_.reset();
    }
}

void UnixPipe::os_closing() { release_listener(); }

void UnixPipe::os_release() {
    release_listener();
    stop_watching_name();
    close_connection();
    if (poll() && source_id_ != 0) epoll().remove_source(source_id_);
    source_id_ = 0;
}

// ---------------------------------------------------------------------------------------------
// Reading

void UnixPipe::read_failed(int err) {
    if (err == ECONNRESET) peer_reset_ = true;  // the peer closed with our bytes unread: for drain
    // A reset or broken connection is the end of the stream, like an orderly close.
    if (peer_left(err))
        on_eof(false);
    else
        on_read_failed(errno_failure(err, "recv"));
}

// The end of a direct read that could take `asked` bytes (past the caller's `total` if it
// spilled) and returned `n` (errno set when negative): what it says of the receive queue.
[[gnu::always_inline]] inline int64_t UnixPipe::took_direct(ssize_t n, size_t asked, size_t total, bool spilled) {
    if (n == 0) {
        on_eof(false);
        return 0;
    }
    if (n < 0) {
        took_nothing(errno);
        spill_ = true;
        return 0;
    }
    const size_t got = static_cast<size_t>(n);
    took_input(got, asked);
    if (got < asked)
        spill_ = true;  // the queue is empty again: keep asking for a little more
    else if (spilled)
        spill_ = false;  // even the spill filled up: streaming
    return static_cast<int64_t>(std::min(got, total));
}

int64_t UnixPipe::os_read_direct(const IoVec *iov, size_t iovcnt, size_t total) {
    if (fd_ < 0) return 0;
    if (poll() && epoll().has_blocked_waiter()) {
        // A short read or EAGAIN found the receive queue empty, and the poll reports whatever
        // comes after that (EPOLLIN sets `arrived`). A thread blocked waiting on the poll is about
        // to report bytes that came meanwhile: "would block" without a system call, and the event
        // follows. With nobody waiting, the kernel is asked, so bytes sent before this call are
        // taken.
        if (input_ == KernelInput::empty) return 0;
        // The spill pays off only where the next read can then skip its recv, so only here: a
        // thread that reads and waits in turn reads plainly.
        if (spill_) return read_spilling(iov, iovcnt, total);
    }
    size_t asked = total;
    ssize_t n;
    do {  // one buffer (npipe_read): recv straight into it; several: gathered
        n = iovcnt == 1 ? ::recv(fd_, iov[0].base, iov[0].len, MSG_DONTWAIT)
                        : recv_iovecs(fd_, iov, iovcnt, IoVec{nullptr, 0}, asked);
    } while (n < 0 && errno == EINTR);
    return took_direct(n, asked, total, false);
}

// Out of line: its buffer would cost every read's frame a stack probe.
[[gnu::noinline]] int64_t UnixPipe::read_spilling(const IoVec *iov, size_t iovcnt, size_t total) {
    uint8_t spill[kSpill];  // on the stack: a pipe keeps no storage for it
    ssize_t n;
    size_t asked = 0;
    do {
        if (iovcnt == 1) {
            iovec v[2] = {{iov[0].base, iov[0].len}, {spill, sizeof spill}};
            asked = iov[0].len + sizeof spill;
            n = recvmsg_nonblocking(fd_, v, 2);
        } else {
            n = recv_iovecs(fd_, iov, iovcnt, IoVec{spill, sizeof spill}, asked);
        }
    } while (n < 0 && errno == EINTR);
    if (n > 0 && static_cast<size_t>(n) > total)
        read_queue_.push(std::vector<uint8_t>(spill, spill + (static_cast<size_t>(n) - total)), true);
    return took_direct(n, asked, total, true);
}

bool UnixPipe::os_fill_read_queue() {
    if (fd_ < 0) return false;
    receive_buffer_.resize(kReceiveChunk);
    for (;;) {
        const ssize_t n = ::recv(fd_, receive_buffer_.data(), receive_buffer_.size(), MSG_DONTWAIT);
        if (n > 0) {
            took_input(static_cast<size_t>(n), receive_buffer_.size());
            const Failure bad = decoder_.feed(receive_buffer_.data(), static_cast<size_t>(n), read_queue_);
            if (bad) on_read_failed(bad);
            return true;
        }
        if (n == 0) {
            on_eof(false);  // a message cut off by the end stays cut off: its rest never comes
            return false;
        }
        if (errno == EINTR) continue;
        took_nothing(errno);
        return false;
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

Failure UnixPipe::write_failure(int err) {
    if (err == ECONNRESET) peer_reset_ = true;
    return peer_left(err) ? errno_failure(err, "the peer closed the pipe", st::pipe) : errno_failure(err, "send");
}

int64_t UnixPipe::os_write_direct(const uint8_t *prefix, size_t prefix_len, const IoVec *iov, size_t iovcnt) {
    if (fd_ < 0) return 0;
    ssize_t n;
    if (prefix_len == 0 && iovcnt == 1 && iov[0].len > 0) {  // npipe_write: no gathering
        iovec one{iov[0].base, iov[0].len};
        n = send_iovecs(fd_, &one, 1);
    } else {
        n = send_gathered(fd_, prefix, prefix_len, iov, iovcnt);
    }
    if (n >= 0) {
        sent_on_connection_ += static_cast<uint64_t>(n);
        size_t offered = prefix_len;
        for (size_t i = 0; i < iovcnt; ++i) offered += iov[i].len;
        if (static_cast<size_t>(n) < offered) want_write_space(true);  // the rest is queued
        return n;
    }
    const Failure failure = write_failure(static_cast<int>(-n));
    on_write_failed(failure);
    return report(failure);
}

void UnixPipe::os_write_more() {
    while (fd_ >= 0 && write_queue_.has_queued()) {
        IoVec ranges[64];
        iovec v[64];
        const size_t k = write_queue_.peek(ranges, 64);
        for (size_t i = 0; i < k; ++i) v[i] = iovec{ranges[i].base, ranges[i].len};
        const ssize_t n = send_iovecs(fd_, v, k);
        if (n < 0) {
            on_write_failed(write_failure(static_cast<int>(-n)));
            return;
        }
        if (n == 0 && k > 0) {
            want_write_space(true);  // the kernel is full: EPOLLOUT continues
            return;
        }
        write_queue_.consumed(static_cast<size_t>(n));
        sent_on_connection_ += static_cast<uint64_t>(n);
    }
}

// ---------------------------------------------------------------------------------------------
// Introspection

void UnixPipe::os_query_info(PipeInfo &info) {
    info.peer_pid = peer_pid_;
    if (fd_ < 0) return;
    int n = 0;
    if (setup().can_read && ioctl(fd_, FIONREAD, &n) == 0 && n > 0) info.read_available += static_cast<uint64_t>(n);
}

int64_t UnixPipe::os_peer_unread() {
    if (fd_ < 0) return 0;
    // A peer that closes its socket with bytes unread resets the connection: the kernel sets
    // ECONNRESET on this end, which one recv or send reports (read_failed / write_failure note
    // it) and poll() shows as POLLERR until then. Once the peer's queue is freed, SIOCOUTQ says
    // 0, so this comes first.
    if (!peer_reset_) {
        pollfd p{fd_, 0, 0};
        if (::poll(&p, 1, 0) > 0 && (p.revents & POLLERR)) {
            int err = 0;
            socklen_t len = sizeof err;
            if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) {
                if (err == ECONNRESET)
                    peer_reset_ = true;
                else
                    read_failed(err);  // what the next recv would have reported
            }
        }
    }
    if (peer_reset_) return st::pipe;
    // SIOCOUTQ counts the kernel memory of what the peer has not read yet (slightly more than the
    // bytes); it is 0 exactly when the peer has read everything. Bounded by what we sent.
    int n = 0;
    if (ioctl(fd_, SIOCOUTQ, &n) != 0 || n <= 0) return 0;
    return static_cast<int64_t>(std::min<uint64_t>(static_cast<uint64_t>(n), sent_on_connection_));
}

int32_t UnixPipe::os_peer_identity(PeerIdentity &out) {
    if (fd_ < 0) return fail(st::notconn, "the pipe has no connection");
    const PeerCred cred = peer_cred(fd_);
    if (cred.uid == static_cast<uid_t>(-1)) return fail_errno(errno, "getsockopt(SO_PEERCRED)");
    out = identity_of(cred);
    return st::ok;
}

intptr_t UnixPipe::os_raw_handle() {
    if (fd_ >= 0) return fd_;
    if (listener_) return listener_->fd();
    return -1;
}

}  // namespace npipe::posix
