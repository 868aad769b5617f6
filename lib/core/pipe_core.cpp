#include "pipe_core.hpp"

#include <algorithm>
#include <chrono>
#include <thread>
#include <utility>

#include "deadline.hpp"
#include "error_detail.hpp"
#include "framing.hpp"
#include "status.hpp"

namespace npipe {
namespace {

// The caller's out_buffer_size is a hint: a silly one (0 bytes, 4 GiB) must not mean a system
// call per byte or an unbounded buffer.
constexpr size_t kMinWriteCap = 64u * 1024u;
constexpr size_t kMaxWriteCap = 16u * 1024u * 1024u;
// Retrying an open: the first retry within 1 ms, then doubling, at most 50 ms apart.
constexpr int32_t kFirstOpenBackoffMs = 1;
constexpr int32_t kMaxOpenBackoffMs = 50;
// Re-checking whether the peer has read everything (npipe_drain): soon at first, since a reader
// that keeps up takes the bytes within moments, then doubling, so a slow reader costs at most 20
// checks a second.
constexpr int32_t kFirstDrainCheckMs = 1;
constexpr int32_t kMaxDrainCheckMs = 50;
// npipe_wait's receive takes at most this much per wake-up (or in_buffer_size, if smaller), and
// at least kMinWaitReceive so a tiny in_buffer_size does not mean a wake-up per byte.
constexpr size_t kMaxWaitReceive = 64u * 1024u;
constexpr size_t kMinWaitReceive = 4u * 1024u;

// What servers and clients alike take from their flags. A client "inbound only" reads only,
// "outbound only" writes only; a server the other way round, which is the same test of the bits.
PipeSetup setup_from_flags(uint32_t flags, int32_t linger_ms) {
    PipeSetup setup;
    setup.flags = flags;
    setup.can_read = !(flags & pf::outbound_only);
    setup.can_write = !(flags & pf::inbound_only);
    setup.message_read = setup.message_write = (flags & pf::message) != 0;
    setup.linger_ms = linger_ms;
    return setup;
}

}  // namespace

PipeSetup server_setup(const ServerConfig &config) {
    PipeSetup setup = setup_from_flags(config.flags, config.linger_ms);
    setup.server = true;
    setup.in_buffer_size = config.in_buffer_size;
    setup.out_buffer_size = config.out_buffer_size;
    setup.max_instances = config.max_instances;
    return setup;
}

PipeSetup client_setup(const ClientConfig &config) {
    PipeSetup setup = setup_from_flags(config.flags, config.linger_ms);
    setup.open_pending = true;
    setup.open_timeout_ms = config.timeout_ms;
    return setup;
}

PipeCore::PipeCore(const PipeSetup &setup)
    : PollableEndpoint<Pipe>("pipe"),
      write_queue_(std::clamp<size_t>(setup.out_buffer_size, kMinWriteCap, kMaxWriteCap)),
      setup_(setup),
      state_(setup.connected      ? State::connected
             : setup.open_pending ? State::connecting
                                  : State::idle),
      open_deadline_(Deadline::after_ms(setup.open_timeout_ms)),
      open_backoff_ms_(kFirstOpenBackoffMs) {}

int64_t PipeCore::os_read_direct(const IoVec *, size_t, size_t) { return 0; }

int64_t PipeCore::os_write_direct(const uint8_t *, size_t, const IoVec *, size_t) { return 0; }

void PipeCore::os_pause_before_retry(OpenAttempt::Outcome, int32_t ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

// ---------------------------------------------------------------------------------------------
// Registration and events

// The pipe makes progress from its first registration on: a deferred connect starts now, and so
// does a client's open.
void PipeCore::on_registered() {
    if (setup_.server && state_ == State::idle && connect_requested_) {
        const int32_t rc = begin_connect(false);
        if (rc < 0 && rc != st::again) raise(ev::connected | ev::error);
    }
    if (!setup_.server && state_ == State::connecting && !open_started_) attempt_open();
    os_read_more();
    raise_current_state();
}

uint32_t PipeCore::level_condition() { return condition(os_readable_bit()); }

// The OS's readable bit, asked only where condition() depends on it: a connected end that reads,
// with nothing queued here and no end or failure known.
uint32_t PipeCore::os_readable_bit() {
    if (!setup_.can_read || !connected() || released_ || !read_queue_.empty() || reading_ended()) return 0;
    return os_readable() ? ev::readable : 0;
}

// The readable/writable condition now: a read or write would not answer NPIPE_EAGAIN.
uint32_t PipeCore::condition(uint32_t os_bits) const {
    if (closed_ || canceled_) return 0;
    // A failed open: every read and write answers the failure at once.
    if (state_ == State::failed) return ev::readable | ev::writable;
    if (!connected()) return 0;
    uint32_t bits = 0;
    if (setup_.can_read && (!read_queue_.empty() || eof_ || read_failure_ || (os_bits & ev::readable)))
        bits |= ev::readable;
    if (setup_.can_write && ((write_queue_.room() > 0 && !os_full_while_receiving_) || peer_gone_ || write_failure_))
        bits |= ev::writable;
    return bits;
}

// (Re)registration reports what the current state warrants: nothing of an earlier registration
// leaks into this one, and nothing that holds now is missed.
void PipeCore::raise_current_state() {
    const uint32_t os_bits = connected() && !released_ ? os_condition() : 0;
    if ((os_bits & ev::write_closed) && setup_.can_write) peer_gone_ = true;
    uint32_t bits = condition(os_bits);
    if (connected()) {
        if (setup_.can_read && (eof_ || (os_bits & ev::read_closed))) bits |= ev::read_closed;
        if (setup_.can_write && peer_gone_) bits |= ev::write_closed;
    }
    if (first_failure_.has() || connect_failure_) bits |= ev::error;
    if (connect_failure_ || state_ == State::failed) bits |= ev::connected;
    raise(bits);
}

// ---------------------------------------------------------------------------------------------
// Owned by a listener

int32_t PipeCore::join_listener(const std::shared_ptr<Poll> &poll, std::weak_ptr<ReadySource> owner,
                                bool wait_for_client) {
    std::lock_guard lock(mu_);
    owner_ = std::move(owner);
    connect_requested_ = wait_for_client;
    return register_locked(poll, 0, 0);  // interests 0: only the always-reported bits reach the owner
}

PipeCore::Progress PipeCore::listener_progress(Failure &failure) {
    std::lock_guard lock(mu_);
    if (connected()) return Progress::connected;
    if (state_ == State::idle && connect_failure_) {
        failure = connect_failure_;
        return Progress::failed;
    }
    return Progress::waiting;
}

void PipeCore::leave_listener(bool private_poll) {
    std::lock_guard lock(mu_);
    owner_.reset();
    events_.disarm();
    if (private_poll) {
        // npipe_wait drives the pipe from now on, on the poll it shares with the listener; the
        // poll stays open while either of them does.
        share_private_poll();
        events_.arm(0, ev::readable | ev::writable);
    }
}

// ---------------------------------------------------------------------------------------------
// Server lifecycle

int32_t PipeCore::connect() {
    std::lock_guard lock(mu_);
    if (!setup_.server) return fail(st::inval, "npipe_connect is for server instances; this is a client end");
    if (canceled_) return fail_canceled();
    switch (state_) {
        case State::connected: return st::ok;
        case State::connecting: return fail(st::again, "still waiting for a client; NPIPE_CONNECTED follows");
        case State::idle:
        case State::failed: break;
    }
    if (connect_failure_) {
        const Failure f = std::move(connect_failure_);
        connect_failure_ = Failure{};
        return report(f);
    }
    if (!poll_) {
        connect_requested_ = true;
        return fail(st::again, "the pipe is not registered with a poll: waiting for a client starts at registration");
    }
    const int32_t rc = begin_connect(true);
    if (rc == st::again) return fail(st::again, "waiting for a client; NPIPE_CONNECTED follows");
    if (rc < 0) return report(std::exchange(connect_failure_, Failure{}));
    return rc;
}

// Starts the wait for a client. A failure is kept in connect_failure_ (the caller reports it,
// or raises NPIPE_CONNECTED | NPIPE_ERROR when no call is there to hear it).
int32_t PipeCore::begin_connect(bool in_connect_call) {
    connect_requested_ = false;
    state_ = State::connecting;
    Failure failure;
    const int32_t rc = os_start_connect(failure);
    if (rc == st::ok) {
        connected_now(!in_connect_call);
        return st::ok;
    }
    if (rc == st::again) return st::again;
    state_ = State::idle;
    connect_failure_ = failure ? failure : Failure{rc, 0, "waiting for a client failed"};
    return connect_failure_.code;
}

// NPIPE_CONNECTED is the news that a wait ended; a npipe_connect call that returns NPIPE_OK has
// told its caller already.
void PipeCore::connected_now(bool report_event) {
    state_ = State::connected;
    os_read_more();
    raise((report_event ? ev::connected : 0u) | (setup_.can_write ? ev::writable : 0u));
}

void PipeCore::connect_finished(const Failure &failure) {
    if (state_ != State::connecting || closed_ || canceled_) return;
    if (!failure) {
        connected_now(true);
        return;
    }
    state_ = State::idle;
    connect_failure_ = failure;
    raise(ev::connected | ev::error);
}

int32_t PipeCore::disconnect() {
    std::lock_guard lock(mu_);
    if (!setup_.server) return fail(st::inval, "npipe_disconnect is for server instances; this is a client end");
    if (canceled_) return fail_canceled();
    os_disconnect();
    reset_connection();
    return st::ok;
}

// The next connection on this instance sees nothing of the previous one: no data, EOF, failure
// or event.
void PipeCore::reset_connection() {
    state_ = State::idle;
    connect_requested_ = false;
    connect_failure_ = Failure{};
    first_failure_.clear();
    read_queue_.clear();
    eof_ = false;
    read_failure_ = Failure{};
    write_queue_.reset();
    os_full_while_receiving_ = false;
    peer_gone_ = false;
    write_failure_ = Failure{};
    undrained_ = false;
    drain_wanted_ = false;
    if (drain_timer_ && poll_) poll_->cancel_timer(this);
    drain_timer_ = false;
    peer_known_ = false;
    peer_ = PeerIdentity{};
    events_.reset_connection();
}

// The end of a wait for a client is reported before background failures: it is what the caller
// asks about after NPIPE_CONNECTED.
int32_t PipeCore::take_error() {
    std::lock_guard lock(mu_);
    if (canceled_) return fail_canceled();
    if (connect_failure_) return report(std::exchange(connect_failure_, Failure{}));
    if (first_failure_.has()) return report(first_failure_.take());
    return st::ok;
}

// ---------------------------------------------------------------------------------------------
// Reading

// The checks every read, write and flush makes, in the order the header fixes.
int32_t PipeCore::check_io_slow(Direction direction) {
    if (canceled_) return fail_canceled();
    if (direction != Direction::peer && !events_.registered())
        return fail(st::again, "pipe is not registered with a poll");
    if (state_ == State::connecting && !setup_.server)
        return fail(st::again, "connection in progress; NPIPE_CONNECTED follows");
    if (state_ == State::failed) return report(open_failure_);
    if (direction == Direction::read && !setup_.can_read)
        return fail(st::acces, "this pipe end was opened for writing only (NPIPE_OUTBOUND_ONLY)");
    if (direction == Direction::write && !setup_.can_write)
        return fail(st::acces, "this pipe end was opened for reading only (NPIPE_INBOUND_ONLY)");
    if (!connected())
        return fail(st::notconn, "server instance is not connected (npipe_connect, then NPIPE_CONNECTED)");
    return st::ok;
}

class PipeCore::IoLock {
public:
    explicit IoLock(PipeCore &pipe) : pipe_(pipe) {
        pipe_.mu_.lock();
        pipe_.io_holds_lock_.store(true);
    }
    ~IoLock() {
        pipe_.io_holds_lock_.store(false);
        pipe_.mu_.unlock();
        if (pipe_.wait_arming_owed_.load()) pipe_.arm_wait_owed();
    }
    IoLock(const IoLock &) = delete;
    IoLock &operator=(const IoLock &) = delete;

private:
    PipeCore &pipe_;
};

int64_t PipeCore::read(const IoVec *iov, size_t iovcnt, size_t total, uint32_t *msg_flags) {
    IoLock lock(*this);
    if (msg_flags) *msg_flags = 0;
    const int32_t rc = check_io(Direction::read);
    if (rc < 0) return rc;
    if (total == 0) return 0;
    size_t n = 0;
    bool got = false;
    if (setup_.message_read) {
        for (;;) {
            const ReadQueue::MessageRead r = read_queue_.read_message(iov, iovcnt, total, msg_flags == nullptr, !eof_);
            if (r.got) {
                n = r.bytes;
                got = true;
                if (msg_flags) *msg_flags = r.flags;
                break;
            }
            if (reading_ended() || released_ || receiving_ || !os_fill_read_queue()) break;
        }
    } else if (!read_queue_.empty()) {
        n = read_queue_.read_bytes(iov, iovcnt);
        got = n > 0;
    } else if (!reading_ended() && !released_ && !receiving_) {
        // (While npipe_wait receives, the bytes in the OS come after the ones it is taking.)
        const int64_t direct = os_read_direct(iov, iovcnt, total);
        n = direct > 0 ? static_cast<size_t>(direct) : 0;
        got = n > 0;
    }
    if (got) {
        bytes_read_ += n;
        os_read_more();  // room again: keep reading in the background
        return static_cast<int64_t>(n);
    }
    if (read_failure_) return report(read_failure_);
    if (eof_) return 0;
    return fail(st::again, "no data yet; wait for NPIPE_READABLE");
}

void PipeCore::on_eof(bool peer_gone_too) {
    uint32_t bits = 0;
    if (!eof_) {
        eof_ = true;
        bits |= ev::readable | ev::read_closed;
    }
    if (peer_gone_too && setup_.can_write && !peer_gone_) {
        peer_gone_ = true;
        if (write_queue_.used() > 0) {
            // Accepted and still in this end's buffer (queued, or handed to an OS write that has
            // not completed), now undeliverable: a failure, never a silent drop. The in-flight
            // write may fail later too (or, under Wine, stay pending until the handle closes);
            // the first failure is the one reported.
            first_failure_.note(failuref(st::pipe, 0, "the peer closed the pipe before %zu accepted bytes were written",
                                         write_queue_.used()));
            bits |= ev::error;
        }
        write_queue_.discard_queued();
        write_queue_.clear_owed();
        bits |= ev::write_closed | ev::writable;
    }
    raise(bits);
}

void PipeCore::on_read_failed(const Failure &failure) {
    if (!read_failure_) read_failure_ = failure;
    first_failure_.note(failure);
    raise(ev::readable | ev::error);
}

// ---------------------------------------------------------------------------------------------
// Writing

int64_t PipeCore::write(const IoVec *iov, size_t iovcnt, size_t total) {
    IoLock lock(*this);
    const int32_t rc = check_io(Direction::write);
    if (rc < 0) return rc;
    if (write_failure_) return report(write_failure_);
    if (peer_gone_) return fail(st::pipe, "the peer closed or disconnected the pipe");
    const bool whole = setup_.message_write;
    if (whole && total > kMaxMessageSize)
        return failf(st::msgsize, 0, "a message of %zu bytes exceeds the 16 MiB limit", total);
    if (!whole && total == 0) return 0;

    // Bytes already waiting go first (a synchronous backend hands them over now).
    if (write_queue_.has_queued()) {
        os_write_more();
        if (write_failure_) return report(write_failure_);
    }
    uint8_t header[framing::kHeaderSize];
    size_t prefix_len = 0;
    if (whole && setup_.framed) {
        framing::put_length(header, static_cast<uint32_t>(total));
        prefix_len = sizeof header;
    }
    const size_t unit = prefix_len + total;
    const bool was_idle = write_queue_.idle();
    // A failure from here on concerns this call's bytes only when nothing else was waiting: the
    // caller hears it now, so it is not also a background failure.
    write_call_owns_failure_ = was_idle;
    size_t done = 0;
    if (was_idle) {
        const int64_t sent = os_write_direct(header, prefix_len, iov, iovcnt);
        if (sent < 0) {
            write_call_owns_failure_ = false;
            return sent;
        }
        done = static_cast<size_t>(sent);
        if (done == unit && unit > 0) {  // the OS took it all (not an empty message): nothing to queue
            write_call_owns_failure_ = false;
            bytes_written_ += total;
            undrained_ = true;
            return static_cast<int64_t>(total);
        }
    }
    const size_t rest = unit - done;
    // While npipe_wait receives, nobody drives the poll that would hand queued bytes to the OS, and
    // the peer may be waiting for them before it answers: take only what the OS took (a byte
    // stream; messages never wait inside the OS), or what one OS write carries on by itself, and
    // WRITABLE when it has room again.
    const bool may_queue = !receiving_ || (was_idle && os_write_goes_on_undriven());
    const size_t take = may_queue ? write_queue_.acceptable(rest, whole) : 0;
    if (receiving_ && done + take < unit) os_full_while_receiving_ = true;
    if (whole ? take != rest : (done == 0 && take == 0)) {
        write_call_owns_failure_ = false;
        write_queue_.owe_on_room();
        if (receiving_)
            return fail(st::again,
                        "the OS's pipe buffer is full while another thread waits to read; wait for NPIPE_WRITABLE");
        return fail(st::again, whole ? "the write buffer has no room for the whole message; wait for NPIPE_WRITABLE"
                                     : "the write buffer is full; wait for NPIPE_WRITABLE");
    }
    if (take > 0 || (whole && done < unit) || (whole && unit == 0))
        write_queue_.append(header, prefix_len, iov, iovcnt, done, take, whole);
    const size_t accepted = done + take - prefix_len;
    bytes_written_ += accepted;
    os_write_more();  // hand it to the OS now, not at the next wait
    write_call_owns_failure_ = false;
    if (write_failure_) {
        bytes_written_ -= accepted;
        return report(write_failure_);
    }
    undrained_ = true;
    return static_cast<int64_t>(accepted);
}

void PipeCore::write_progressed() {
    const bool withheld = std::exchange(os_full_while_receiving_, false);  // the OS has room again
    if (closed_) {
        if (write_queue_.idle()) finish_close();  // everything delivered: the linger is over
        return;
    }
    if ((write_queue_.settle_owed() || withheld) && setup_.can_write) raise(ev::writable);
    if (drain_wanted_ && write_queue_.idle()) check_drained();
}

void PipeCore::on_write_failed(const Failure &failure) {
    const bool gone = failure.code == st::pipe;
    const bool lost = !write_queue_.idle() && !write_call_owns_failure_;
    if (!write_failure_) write_failure_ = failure;
    write_queue_.reset();
    // A writer waiting for room must learn that writes now fail.
    uint32_t bits = ev::writable;
    if (gone && !peer_gone_) {
        peer_gone_ = true;
        bits |= ev::write_closed;
    }
    if (lost) {
        // Accepted bytes are never dropped silently: NPIPE_ERROR now, npipe_take_error says which.
        first_failure_.note(failure);
        bits |= ev::error;
    }
    if (closed_) {
        finish_close();
        return;
    }
    if (setup_.can_write) raise(bits);
}

void PipeCore::on_peer_gone() {
    if (!setup_.can_write || peer_gone_) return;
    peer_gone_ = true;
    raise(ev::write_closed | ev::writable);
}

int32_t PipeCore::flush() {
    std::unique_lock lock(mu_);
    for (bool looked = false;; looked = true) {
        const int32_t rc = check_io(Direction::flush);
        if (rc < 0) return rc;
        if (write_failure_) return report(write_failure_);
        if (write_queue_.idle()) return st::ok;
        // The peer is gone: what is still in this end's buffer can never be flushed (the OS write
        // in flight fails or is cancelled later, and nothing is owed meanwhile).
        if (peer_gone_) return fail(st::pipe, "the peer closed or disconnected the pipe before everything was written");
        os_write_more();
        if (write_failure_) return report(write_failure_);
        if (write_queue_.idle()) return st::ok;
        // Driven by npipe_wait, the pipe hears that the OS finished a write only while its poll is
        // waited on, and npipe_wait(WRITABLE) answers at once while there is room: a loop of flush
        // and wait would never hear it (Windows, where a write completes later). Look once.
        if (looked || !look_at_private_poll(lock)) break;
    }
    write_queue_.owe_on_drain();
    return failf(st::again, 0, "%zu accepted bytes are still being written; NPIPE_WRITABLE follows when they are",
                 write_queue_.used());
}

// ---------------------------------------------------------------------------------------------
// Drain: flushed, then the peer has read it all (the OS says so), without a thread or a blocking
// flush: the poll's clock re-checks with backoff, and NPIPE_WRITABLE tells the caller.

int32_t PipeCore::drain() {
    std::unique_lock lock(mu_);
    for (bool looked = false;; looked = true) {
        const int32_t rc = check_io(Direction::flush);
        if (rc < 0) return rc;
        if (!undrained_) return st::ok;  // nothing accepted since the peer last had read everything
        if (write_failure_) return report(write_failure_);
        if (!write_queue_.idle()) os_write_more();
        if (write_failure_) return report(write_failure_);
        // As in flush(): a pipe driven by npipe_wait hears of finished writes only while its poll
        // is waited on. Look once before the answer.
        if (write_queue_.idle() || looked || !look_at_private_poll(lock)) break;
    }
    if (!drain_wanted_) drain_backoff_ms_ = kFirstDrainCheckMs;  // a new drain: the first check is soon
    if (!write_queue_.idle()) {
        if (peer_gone_)
            return failf(st::pipe, 0, "the peer left before %zu accepted bytes were written", write_queue_.used());
        drain_wanted_ = true;  // write_progressed asks the OS once they are written
        return failf(st::again, 0,
                     "%zu accepted bytes are still being written; NPIPE_WRITABLE follows once the peer has read them",
                     write_queue_.used());
    }
    const int64_t unread = os_peer_unread();
    if (unread < 0) return fail(st::pipe, "the peer left without reading everything written to it");
    if (unread == 0) {
        undrained_ = false;
        drain_wanted_ = false;
        return st::ok;
    }
    if (peer_gone_)
        return failf(st::pipe, 0, "the peer left with %llu written bytes unread",
                     static_cast<unsigned long long>(unread));
    drain_wanted_ = true;
    if (!drain_timer_) schedule_drain_check();
    return failf(st::again, 0, "the peer has not read %llu written bytes yet; NPIPE_WRITABLE follows when it has",
                 static_cast<unsigned long long>(unread));
}

// A drain answered NPIPE_EAGAIN and every accepted byte is written now: ask the OS, and keep
// asking until the peer has read them (NPIPE_WRITABLE) or has left (npipe_drain then says whether
// anything was lost).
void PipeCore::check_drained() {
    if (!drain_wanted_ || closed_ || canceled_ || !connected() || released_ || !write_queue_.idle()) return;
    if (!peer_gone_) {
        const int64_t unread = os_peer_unread();
        if (unread > 0) {
            if (!drain_timer_) schedule_drain_check();
            return;
        }
        if (unread == 0) undrained_ = false;
    }
    drain_wanted_ = false;
    if (setup_.can_write) raise(ev::writable);
}

void PipeCore::schedule_drain_check() {
    if (!poll_) return;
    drain_timer_ = true;
    poll_->set_timer(shared_from_this(), Deadline::after_ms(drain_backoff_ms_));
    drain_backoff_ms_ = std::min(drain_backoff_ms_ * 2, kMaxDrainCheckMs);
}

// ---------------------------------------------------------------------------------------------
// Peer identity: asked of the OS once per connection (the peer cannot change while connected,
// and Windows can only tell while it still has the client's last message)

int32_t PipeCore::peer_identity(PeerIdentity &out) {
    std::lock_guard lock(mu_);
    const int32_t rc = check_io(Direction::peer);
    if (rc < 0) return rc;
    if (closed_) return fail(st::badf, "the pipe was closed");  // by another thread, during this call
    if (!peer_known_) {
        PeerIdentity id;
        const int32_t os_rc = os_peer_identity(id);
        if (os_rc < 0) return os_rc;
        peer_ = std::move(id);
        peer_known_ = true;
    }
    out = peer_;
    return st::ok;
}

// ---------------------------------------------------------------------------------------------
// Client open: one policy for NPIPE_NONBLOCK_OPEN (driven by the poll's clock) and the blocking
// npipe_open (on the caller's thread)

namespace {

Failure timed_out(const Failure &last, int32_t timeout_ms) {
    return failuref(st::timedout, last.os_error, "%s, still after %d ms", last.message.c_str(),
                    static_cast<int>(timeout_ms));
}

}  // namespace

void PipeCore::attempt_open() {
    if (state_ != State::connecting || setup_.server || closed_ || canceled_) return;
    open_started_ = true;
    const OpenAttempt a = os_try_open();
    switch (a.outcome) {
        case OpenAttempt::connected: connected_now(true); return;
        case OpenAttempt::failed: open_failed(a.failure); return;
        case OpenAttempt::busy:
        case OpenAttempt::absent: break;
    }
    if (setup_.open_timeout_ms == 0) {  // one attempt: NPIPE_EBUSY / NPIPE_ENOENT
        open_failed(a.failure);
        return;
    }
    if (open_deadline_.passed()) {
        open_failed(timed_out(a.failure, setup_.open_timeout_ms));
        return;
    }
    if (a.outcome == OpenAttempt::busy && os_wait_for_instance(open_deadline_)) return;
    if (a.outcome == OpenAttempt::absent) os_watch_for_server();
    poll_->set_timer(shared_from_this(), Deadline::earlier(Deadline::after_ms(open_backoff_ms_), open_deadline_));
    open_backoff_ms_ = std::min(open_backoff_ms_ * 2, kMaxOpenBackoffMs);
}

void PipeCore::server_may_have_appeared() {
    if (state_ != State::connecting || !open_started_) return;
    open_backoff_ms_ = kFirstOpenBackoffMs;
    attempt_open();
}

void PipeCore::open_failed(const Failure &failure) {
    state_ = State::failed;
    open_failure_ = failure;
    connect_failure_ = failure;  // npipe_take_error reports it once; I/O keeps returning it
    raise(ev::connected | ev::error | ev::readable | ev::writable);
}

// The pipe's one timer serves the open's retries while it is connecting and the drain's
// re-checks once it is connected; the two never overlap.
void PipeCore::timer_fired() {
    std::lock_guard lock(mu_);
    if (state_ == State::connecting) {
        attempt_open();
        return;
    }
    drain_timer_ = false;
    check_drained();
}

void PipeCore::before_wait() {
    // Owed first, then the lock: a read or write that holds it either still says so (and will
    // find the debt after it unlocks) or has unlocked (and the lock is had here). Both may see
    // the debt; the exchange lets one of them pay it.
    wait_arming_owed_.store(true);
    std::unique_lock lock(mu_, std::try_to_lock);
    if (!lock.owns_lock()) {
        if (io_holds_lock_.load()) return;
        lock.lock();
    }
    if (wait_arming_owed_.exchange(false) && !canceled_ && !released_) os_before_wait(lock);
}

void PipeCore::arm_wait_owed() noexcept {
    std::unique_lock lock(mu_);
    if (!wait_arming_owed_.exchange(false) || canceled_ || released_) return;
    try {
        os_before_wait(lock);
    } catch (...) {
        // Out of memory (the read's op or buffer), in the destructor of the caller's lock, where
        // nothing may be thrown: the read that would have heard the next bytes is not armed, so
        // reading fails with the reason rather than waiting for ever (best effort: that may need
        // memory too).
        try {
            if (!lock.owns_lock()) lock.lock();
            on_read_failed(Failure{st::nomem, 0, "out of memory arming the pipe's read"});
        } catch (...) {}
    }
}

bool PipeCore::defer_until_wait() {
    return poll_ && poll_->defer(std::static_pointer_cast<PipeCore>(shared_from_this()));
}

int32_t PipeCore::open_blocking() {
    std::unique_lock lock(mu_);
    struct Ended {
        PipeCore &pipe;
        ~Ended() { pipe.os_open_ended(); }  // with mu_ held, like every hook
    } ended{*this};
    for (;;) {
        open_started_ = true;
        const OpenAttempt a = os_try_open();
        switch (a.outcome) {
            case OpenAttempt::connected: state_ = State::connected; return st::ok;
            case OpenAttempt::failed: return report(a.failure);
            case OpenAttempt::busy:
            case OpenAttempt::absent: break;
        }
        if (setup_.open_timeout_ms == 0) return report(a.failure);
        if (open_deadline_.passed()) return report(timed_out(a.failure, setup_.open_timeout_ms));
        const int32_t pause = open_deadline_.bound(open_backoff_ms_);
        open_backoff_ms_ = std::min(open_backoff_ms_ * 2, kMaxOpenBackoffMs);
        lock.unlock();
        os_pause_before_retry(a.outcome, pause);
        lock.lock();
    }
}

// ---------------------------------------------------------------------------------------------
// npipe_wait: the pipe on a private poll, driven by whichever waiting thread gets there first

uint32_t PipeCore::wait_condition(uint32_t interests) {
    // While another thread receives, what the OS holds comes after what it is taking: only the
    // queue counts.
    uint32_t bits = condition((interests & ev::readable) && !receiving_ ? os_readable_bit() : 0);
    const bool connect_failed = setup_.server && state_ == State::idle && connect_failure_;
    if (connect_failed) bits |= ev::readable | ev::writable;  // a failed connect counts for both
    // A one-way end's other direction answers at once (NPIPE_EACCES), never NPIPE_EAGAIN: so it
    // holds once connected, and a write-only client waiting to read still learns its open ended.
    if (connected() && !closed_ && !canceled_) {
        if (!setup_.can_read) bits |= ev::readable;
        if (!setup_.can_write) bits |= ev::writable;
    }
    bits &= interests;
    if (bits && (connected() || state_ == State::failed || connect_failed)) bits |= ev::connected;
    return bits;
}

// A blocking read through npipe_wait costs a read that finds nothing, a wait on the poll, and a
// second read once woken; a read that blocks in the OS wakes with the bytes in hand, one system
// call instead of two (the OS floor: bench/wait_floor). So a wait for READABLE alone, on a
// connected byte stream with nothing queued here either way, and no other thread driving the
// poll, waits inside the OS's receive and queues what it took. Meanwhile nobody drives the poll:
//   - reads take only from the queue (the OS's bytes come after the ones being received);
//   - writes take only what the OS takes at once (write());
//   - a close or npipe_disconnect from another thread makes the receive return (the backend ends
//     it and drops its bytes with the connection);
//   - any other wait, on another thread, drives the poll as usual.
bool PipeCore::wait_without_poll(uint32_t interests, const Deadline &deadline, std::unique_lock<FastMutex> &lock) {
    if (interests != ev::readable || receiving_ || !connected() || closed_ || canceled_ || released_) return false;
    if (!setup_.can_read || setup_.message_read || setup_.message_write || reading_ended()) return false;
    if (!read_queue_.empty() || !write_queue_.idle()) return false;
    const int32_t timeout_ms = deadline.remaining_ms();
    if (timeout_ms == 0) return false;
    const size_t size = std::clamp<size_t>(setup_.in_buffer_size, kMinWaitReceive, kMaxWaitReceive);
    std::vector<uint8_t> storage = read_queue_.take_spare(size);
    if (!os_begin_receive(timeout_ms, storage.data(), size)) {
        read_queue_.give_back_spare(std::move(storage));
        return false;
    }
    receiving_ = true;
    lock.unlock();
    const int64_t n = os_receive(storage.data(), size);
    lock.lock();
    receiving_ = false;
    if (os_end_receive(n, size) && n > 0) {
        read_queue_.push_filled(std::move(storage), static_cast<size_t>(n), true);
        data_arrived();
    } else {
        read_queue_.give_back_spare(std::move(storage));
    }
    return true;
}

// ---------------------------------------------------------------------------------------------
// Close, poll close, linger

void PipeCore::close() {
    close_with([this](bool private_poll) {
        connect_requested_ = false;
        read_queue_.clear();
        os_closing();
        // Nobody waits on a private poll once the pipe is closed, so nothing would drive a linger:
        // release now.
        if (private_poll)
            finish_close();
        else
            close_locked();
    });
}

void PipeCore::close_locked() {
    if (canceled_ || released_ || !poll_ || !connected() || setup_.linger_ms < 0 || write_queue_.idle()) {
        finish_close();
        return;
    }
    // Accepted bytes keep draining while the poll is waited on, for at most linger_ms.
    os_write_more();
    if (released_) return;  // the write failed and finished the close
    if (write_queue_.idle()) {
        finish_close();
        return;
    }
    if (!poll_->linger(shared_from_this(), Deadline::after_ms(setup_.linger_ms))) {
        finish_close();  // the poll is closing: nothing would drive the linger
        return;
    }
    lingering_ = true;
}

void PipeCore::finish_close() {
    write_queue_.reset();
    if (!released_) {
        released_ = true;
        os_release();
    }
    if (lingering_) {
        lingering_ = false;
        if (poll_) poll_->end_linger(this);
    }
}

void PipeCore::linger_expired() {
    std::lock_guard lock(mu_);
    lingering_ = false;  // the poll already forgot the linger
    finish_close();
}

void PipeCore::poll_closed() {
    std::lock_guard lock(mu_);
    if (canceled_) return;
    canceled_ = true;
    lingering_ = false;  // the poll dropped its linger list itself
    events_.disarm();
    connect_requested_ = false;
    read_queue_.clear();
    write_queue_.reset();
    if (!released_) {
        released_ = true;
        os_release();
    }
    poll_.reset();  // the poll's OS resources go as soon as the poll object does
    wake_waiters();
}

// ---------------------------------------------------------------------------------------------
// Introspection

int32_t PipeCore::get_info(PipeInfo &info) {
    std::lock_guard lock(mu_);
    info = PipeInfo{};
    info.flags = setup_.flags | (setup_.server ? pf::info_server : 0u);
    const bool live = connected() && !released_ && !canceled_;
    if (live && !eof_ && !peer_gone_) info.flags |= pf::info_connected;
    info.in_buffer_size = setup_.in_buffer_size;
    info.out_buffer_size = setup_.out_buffer_size;
    info.max_instances = setup_.max_instances;
    info.bytes_read = bytes_read_;
    info.bytes_written = bytes_written_;
    info.write_pending = write_queue_.used();
    info.read_available = read_queue_.buffered();
    if (live) {
        os_query_info(info);
        const int64_t unread = os_peer_unread();
        info.peer_unread = unread > 0 ? static_cast<uint64_t>(unread) : 0;
    }
    return st::ok;
}

int32_t PipeCore::raw_handle(intptr_t &out) {
    std::lock_guard lock(mu_);
    out = os_raw_handle();
    return st::ok;
}

}  // namespace npipe
