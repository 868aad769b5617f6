#include "lib/win/win_pipe.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "lib/core/error_detail.hpp"
#include "lib/core/status.hpp"
#include "lib/win/nt_api.hpp"
#include "lib/win/win_error.hpp"

namespace npipe::win {
namespace {

constexpr const char *kNotRegistered = "pipe is not registered with a poll";
// Buffer hints are the caller's; these bounds keep a silly hint (0 B or 4 GiB) from turning into
// a silly allocation per read or an unbounded write buffer.
constexpr size_t kMinReadBuffer = 4096;
constexpr size_t kMaxReadBuffer = 16u * 1024u * 1024u;
constexpr size_t kMinWriteCap = 64u * 1024u;
constexpr size_t kMaxWriteCap = 16u * 1024u * 1024u;
constexpr size_t kMaxReadChunks = 1024;  // bounds memory when a peer floods empty messages

size_t total_length(const IoVec *iov, size_t iovcnt) {
    size_t total = 0;
    for (size_t i = 0; i < iovcnt; ++i) total += iov[i].len;
    return total;
}

// Fills the caller's buffers in order, across chunk boundaries.
class IovWriter {
public:
    IovWriter(const IoVec *iov, size_t iovcnt) : iov_(iov), cnt_(iovcnt) { skip_full(); }
    size_t put(const uint8_t *src, size_t n) {
        size_t done = 0;
        while (done < n && idx_ < cnt_) {
            const size_t k = std::min(n - done, iov_[idx_].len - off_);
            std::memcpy(static_cast<uint8_t *>(iov_[idx_].base) + off_, src + done, k);
            done += k;
            off_ += k;
            skip_full();
        }
        return done;
    }
    bool full() const { return idx_ >= cnt_; }

private:
    void skip_full() {
        while (idx_ < cnt_ && off_ >= iov_[idx_].len) {
            ++idx_;
            off_ = 0;
        }
    }
    const IoVec *iov_;
    size_t cnt_;
    size_t idx_ = 0;
    size_t off_ = 0;
};

// Appends the first `take` bytes of the caller's buffers to `out`.
void gather(const IoVec *iov, size_t iovcnt, size_t take, std::vector<uint8_t> &out) {
    out.reserve(out.size() + take);
    for (size_t i = 0; i < iovcnt && take > 0; ++i) {
        const size_t k = std::min(take, iov[i].len);
        const auto *p = static_cast<const uint8_t *>(iov[i].base);
        out.insert(out.end(), p, p + k);
        take -= k;
    }
}

}  // namespace

WinPipe::WinPipe(const PipeSetup &setup)
    : setup_(setup),
      handle_(setup.handle),
      state_(setup.connected ? State::connected : State::idle),
      read_cap_(std::clamp<size_t>(setup.in_buffer_size, kMinReadBuffer, kMaxReadBuffer)),
      write_cap_(std::clamp<size_t>(setup.out_buffer_size, kMinWriteCap, kMaxWriteCap)) {}

WinPipe::~WinPipe() {
    if (handle_ != INVALID_HANDLE_VALUE) CloseHandle(handle_);
}

// ---------------------------------------------------------------------------------------------
// Registration and events

int32_t WinPipe::register_with(const std::shared_ptr<Poll> &poll_base, uint64_t token, uint32_t interests) {
    // Every poll on Windows is an IocpPoll (create_poll makes nothing else).
    auto poll = std::static_pointer_cast<IocpPoll>(poll_base);
    std::lock_guard<std::mutex> lock(mu_);
    if (canceled_) return fail(st::canceled, "the pipe's poll was closed");
    if (poll_ && poll_ != poll)
        return fail(st::exist, "pipe is bound for life to the poll it was first registered with");
    if (events_.registered()) return fail(st::exist, "pipe is already registered");
    if (!poll_) {
        const int32_t rc = poll->associate(handle_, weak_from_this());
        if (rc < 0) return rc;
        poll_ = poll;
    }
    events_.arm(token, interests);
    // The pipe makes progress from its first registration on: a deferred connect starts now,
    // a connected end starts reading.
    if (setup_.server && state_ == State::idle && connect_requested_) {
        const int32_t rc = begin_connect();
        if (rc < 0 && rc != st::again) {
            connect_error_ = rc;
            connect_os_error_ = last_os_error();
            raise(ev::connected | ev::error);
        }
    }
    maybe_issue_read();
    raise_current_state();
    return st::ok;
}

int32_t WinPipe::reregister(const std::shared_ptr<Poll> &poll_base, uint64_t token, uint32_t interests) {
    auto poll = std::static_pointer_cast<IocpPoll>(poll_base);
    std::lock_guard<std::mutex> lock(mu_);
    if (canceled_) return fail(st::canceled, "the pipe's poll was closed");
    if (!events_.registered()) return fail(st::noent, "pipe is not registered");
    if (poll_ != poll) return fail(st::exist, "pipe is registered with another poll");
    events_.arm(token, interests);
    raise_current_state();
    return st::ok;
}

int32_t WinPipe::deregister(const std::shared_ptr<Poll> &poll_base) {
    auto poll = std::static_pointer_cast<IocpPoll>(poll_base);
    std::lock_guard<std::mutex> lock(mu_);
    if (canceled_) return fail(st::canceled, "the pipe's poll was closed");
    if (!events_.registered()) return fail(st::noent, "pipe is not registered");
    if (poll_ != poll) return fail(st::exist, "pipe is registered with another poll");
    // In-flight ops keep running (their results are buffered); only the reporting stops, and the
    // ready list's collect() finds nothing for this registration any more.
    events_.disarm();
    return st::ok;
}

uint32_t WinPipe::current_condition() const {
    if (!connected() || closed_ || canceled_) return 0;
    uint32_t bits = 0;
    if (setup_.can_read && (!read_queue_.empty() || eof_ || read_error_ != 0)) bits |= ev::readable;
    if (setup_.can_write && (write_used() < write_cap_ || peer_gone_ || write_error_ != 0)) bits |= ev::writable;
    return bits;
}

void WinPipe::raise(uint32_t bits) {
    if (events_.raise(bits) && poll_) poll_->notify(shared_from_this());
}

void WinPipe::raise_current_state() {
    uint32_t bits = current_condition();
    if (connected()) {
        if (eof_ && setup_.can_read) bits |= ev::read_closed;
        if (peer_gone_ && setup_.can_write) bits |= ev::write_closed;
    }
    if (first_error_ != 0 || connect_error_ != 0) bits |= ev::error;
    if (connect_error_ != 0) bits |= ev::connected;
    raise(bits);
}

bool WinPipe::collect(Event &event, bool &keep_queued) {
    std::lock_guard<std::mutex> lock(mu_);
    const uint32_t level_bits = events_.level() ? current_condition() : 0;
    const uint32_t bits = events_.take(level_bits, keep_queued);
    if (bits == 0) return false;
    event = Event{events_.token(), bits, 0};
    return true;
}

// ---------------------------------------------------------------------------------------------
// Server lifecycle

std::unique_ptr<OverlappedOp> WinPipe::make_op(OpKind kind) {
    auto op = std::make_unique<OverlappedOp>();
    op->kind = kind;
    op->generation = generation_;
    op->target = shared_from_this();
    return op;
}

int32_t WinPipe::begin_connect() {
    connect_requested_ = false;
    auto op = make_op(OpKind::connect);
    poll_->op_started();
    if (ConnectNamedPipe(handle_, &op->ov)) {
        // Overlapped ConnectNamedPipe is not documented to succeed synchronously; if it does, a
        // packet is queued like for any other success, and the completion finishes the connect.
        op.release();
        state_ = State::connecting;
        return st::again;
    }
    const DWORD err = GetLastError();
    if (err == ERROR_IO_PENDING) {
        op.release();  // owned by the kernel until its packet is dequeued
        state_ = State::connecting;
        return st::again;
    }
    poll_->op_finished();  // failed at once: no packet will come
    if (err == ERROR_PIPE_CONNECTED || err == ERROR_NO_DATA) {
        // The client came before us (and, for ERROR_NO_DATA, already left: its EOF is read next).
        on_connected();
        return st::ok;
    }
    return fail_win32(err, "ConnectNamedPipe");
}

void WinPipe::on_connected() {
    state_ = State::connected;
    maybe_issue_read();
    raise(ev::connected | (setup_.can_write ? ev::writable : 0u));
}

void WinPipe::on_connect_done(DWORD error) {
    if (state_ != State::connecting) return;
    if (error == ERROR_SUCCESS || error == ERROR_PIPE_CONNECTED || error == ERROR_NO_DATA) {
        on_connected();
        return;
    }
    state_ = State::idle;
    connect_error_ = status_from_win32(error);
    connect_os_error_ = error;
    raise(ev::connected | ev::error);
}

int32_t WinPipe::connect() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!setup_.server) return fail(st::inval, "npipe_connect needs a server end; this is a client");
    if (canceled_) return fail(st::canceled, "the pipe's poll was closed");
    switch (state_) {
    case State::connected: return st::ok;
    case State::connecting: return fail(st::again, "waiting for a client to connect");
    case State::idle: break;
    }
    if (connect_error_ != 0) {
        const int32_t rc = connect_error_;
        connect_error_ = 0;
        return fail_win32_as(rc, connect_os_error_, "the last ConnectNamedPipe");
    }
    if (!poll_) {
        connect_requested_ = true;
        return fail(st::again, "pipe is not registered with a poll: the connect starts at registration");
    }
    const int32_t rc = begin_connect();
    if (rc == st::again) return fail(st::again, "waiting for a client to connect");
    return rc;
}

int32_t WinPipe::take_error() {
    std::lock_guard<std::mutex> lock(mu_);
    if (canceled_) return fail(st::canceled, "the pipe's poll was closed");
    if (connect_error_ != 0) {
        const int32_t rc = connect_error_;
        connect_error_ = 0;
        return fail_win32_as(rc, connect_os_error_, "ConnectNamedPipe");
    }
    if (first_error_ != 0) {
        const int32_t rc = first_error_;
        first_error_ = 0;
        return fail_win32_as(rc, first_os_error_, "a background pipe operation");
    }
    return st::ok;
}

void WinPipe::reset_connection_state() {
    read_queue_.clear();
    read_buffered_ = 0;
    next_read_size_ = 0;
    read_inflight_ = false;
    eof_ = false;
    read_error_ = 0;
    read_os_error_ = 0;
    write_queue_.clear();
    write_queued_ = 0;
    write_inflight_bytes_ = 0;
    write_inflight_ = false;
    peer_gone_ = false;
    write_error_ = 0;
    write_os_error_ = 0;
    first_error_ = 0;
    first_os_error_ = 0;
    connect_error_ = 0;
    connect_os_error_ = 0;
    connect_requested_ = false;
    events_.reset_connection();
}

int32_t WinPipe::disconnect() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!setup_.server) return fail(st::inval, "npipe_disconnect needs a server end; this is a client");
    if (canceled_) return fail(st::canceled, "the pipe's poll was closed");
    // Every op issued so far belongs to the old connection: its packet will be dropped.
    ++generation_;
    if (handle_ != INVALID_HANDLE_VALUE) {
        CancelIoEx(handle_, nullptr);
        // Fails harmlessly (ERROR_PIPE_NOT_CONNECTED / LISTENING) on an instance without a client.
        DisconnectNamedPipe(handle_);
    }
    reset_connection_state();
    state_ = State::idle;
    return st::ok;
}

// ---------------------------------------------------------------------------------------------
// Reading

int32_t WinPipe::check_io() {
    if (canceled_) return fail(st::canceled, "the pipe's poll was closed");
    if (!events_.registered()) return fail(st::again, kNotRegistered);
    return st::ok;
}

void WinPipe::maybe_issue_read() {
    if (!setup_.can_read || canceled_ || closed_ || !connected() || !poll_ || read_inflight_ || eof_ ||
        read_error_ != 0 || handle_ == INVALID_HANDLE_VALUE)
        return;
    if (read_buffered_ >= read_cap_ || read_queue_.size() >= kMaxReadChunks) return;
    size_t size = next_read_size_ ? next_read_size_ : read_cap_;
    next_read_size_ = 0;
    auto op = make_op(OpKind::read);
    op->buffer.resize(size);
    poll_->op_started();
    const BOOL ok = ReadFile(handle_, op->buffer.data(), static_cast<DWORD>(size), nullptr, &op->ov);
    const DWORD err = ok ? ERROR_SUCCESS : GetLastError();
    // TRUE, pending and ERROR_MORE_DATA all queue a packet: the byte count comes with it (bug B).
    if (ok || err == ERROR_IO_PENDING || err == ERROR_MORE_DATA) {
        op.release();
        read_inflight_ = true;
        return;
    }
    poll_->op_finished();
    on_read_failure(err);
}

void WinPipe::on_read_done(OverlappedOp &op, DWORD bytes, DWORD error) {
    read_inflight_ = false;
    if (error == ERROR_SUCCESS || error == ERROR_MORE_DATA) {
        const bool partial = error == ERROR_MORE_DATA;
        if (bytes > 0 || setup_.message_read) {
            // In message mode a 0-byte success is an empty message, not EOF.
            op.buffer.resize(std::min<size_t>(bytes, op.buffer.size()));
            read_buffered_ += op.buffer.size();
            read_queue_.push_back(ReadChunk{std::move(op.buffer), 0, !partial || !setup_.message_read});
            raise(ev::readable);
        }
        if (partial && setup_.message_read) {
            // Size the next read to the rest of this message so it usually arrives in one piece.
            DWORD left = 0;
            if (PeekNamedPipe(handle_, nullptr, 0, nullptr, nullptr, &left) && left > 0)
                next_read_size_ = std::min<size_t>(std::max<size_t>(left, read_cap_), kMaxMessageSize);
        }
        maybe_issue_read();
        return;
    }
    on_read_failure(error);
}

void WinPipe::on_read_failure(DWORD error) {
    if (error == ERROR_PIPE_LISTENING) return;  // no client yet: the read starts at connect
    if (is_end_of_connection(error)) {
        // Sticky EOF: no further ReadFile, read() returns the buffered bytes then 0 forever. The peer
        // is gone both ways, so writes report NPIPE_EPIPE from now on too.
        eof_ = true;
        uint32_t bits = ev::readable | ev::read_closed;
        if (setup_.can_write && !peer_gone_) {
            peer_gone_ = true;
            if (write_queued_ > 0) {  // accepted, never handed to the OS, now undeliverable
                note_failure(st::pipe, error);
                bits |= ev::error;
            }
            write_queue_.clear();
            write_queued_ = 0;
            bits |= ev::write_closed | ev::writable;
        }
        raise(bits);
        return;
    }
    read_error_ = status_from_win32(error);
    read_os_error_ = error;
    note_failure(read_error_, error);
    raise(ev::readable | ev::error);
}

void WinPipe::note_failure(int32_t status, DWORD os_error) {
    if (first_error_ == 0) {
        first_error_ = status;
        first_os_error_ = os_error;
    }
}

int64_t WinPipe::read(const IoVec *iov, size_t iovcnt, uint32_t *msg_flags) {
    std::lock_guard<std::mutex> lock(mu_);
    int32_t rc = check_io();
    if (rc < 0) return rc;
    if (!setup_.can_read) return fail(st::acces, "this pipe end was opened for writing only");
    if (setup_.server && !connected()) return fail(st::notconn, "server instance is not connected");
    if (total_length(iov, iovcnt) == 0) return 0;
    const int64_t n = setup_.message_read ? read_message(iov, iovcnt, msg_flags) : read_bytes(iov, iovcnt);
    if (n > 0 || (n == 0 && msg_flags && (*msg_flags & mf::empty))) {
        bytes_read_ += static_cast<uint64_t>(n);
        maybe_issue_read();  // room again: keep one read outstanding
        return n;
    }
    if (read_error_ != 0) return fail_win32_as(read_error_, read_os_error_, "ReadFile");
    if (eof_) return 0;
    return fail(st::again, "no data buffered yet");
}

int64_t WinPipe::read_bytes(const IoVec *iov, size_t iovcnt) {
    IovWriter out(iov, iovcnt);
    size_t n = 0;
    while (!read_queue_.empty() && !out.full()) {
        ReadChunk &c = read_queue_.front();
        const size_t k = out.put(c.data.data() + c.offset, c.data.size() - c.offset);
        c.offset += k;
        n += k;
        read_buffered_ -= k;
        if (c.offset == c.data.size()) read_queue_.pop_front();
    }
    return static_cast<int64_t>(n);
}

int64_t WinPipe::read_message(const IoVec *iov, size_t iovcnt, uint32_t *msg_flags) {
    // Empty messages: reported by read_msg, skipped by read.
    while (!read_queue_.empty()) {
        const ReadChunk &c = read_queue_.front();
        if (!(c.data.empty() && c.end_of_message)) break;
        read_queue_.pop_front();
        if (msg_flags) {
            *msg_flags = mf::empty;
            return 0;
        }
    }
    if (read_queue_.empty()) return 0;
    IovWriter out(iov, iovcnt);
    size_t n = 0;
    bool partial = false;
    for (;;) {
        ReadChunk &c = read_queue_.front();
        const size_t k = out.put(c.data.data() + c.offset, c.data.size() - c.offset);
        c.offset += k;
        n += k;
        read_buffered_ -= k;
        if (c.offset < c.data.size()) {  // the caller's buffer is full mid-message
            partial = true;
            break;
        }
        const bool end = c.end_of_message;
        read_queue_.pop_front();
        if (end) break;  // never merge two messages
        if (read_queue_.empty() || out.full()) {  // the rest of this message comes later
            partial = true;
            break;
        }
    }
    if (msg_flags && partial) *msg_flags = mf::partial;
    return static_cast<int64_t>(n);
}

// ---------------------------------------------------------------------------------------------
// Writing

void WinPipe::maybe_issue_write() {
    // A loop, not recursion: writes that complete at once let the next queued message go at once.
    while (!write_inflight_ && !write_queue_.empty() && !canceled_ && poll_ && handle_ != INVALID_HANDLE_VALUE) {
        auto op = make_op(OpKind::write);
        op->buffer = std::move(write_queue_.front());
        write_queue_.pop_front();
        write_queued_ -= op->buffer.size();
        write_inflight_bytes_ = op->buffer.size();
        issue_write(std::move(op));
    }
}

void WinPipe::issue_write(std::unique_ptr<OverlappedOp> op) {
    const DWORD len = static_cast<DWORD>(op->buffer.size() - op->offset);
    poll_->op_started();
    const BOOL ok = WriteFile(handle_, op->buffer.data() + op->offset, len, nullptr, &op->ov);
    const DWORD err = ok ? ERROR_SUCCESS : GetLastError();
    if (ok && op->ov.InternalHigh == len) {
        // Completed at once: the bytes are in the pipe now, so flush() may already say so and the
        // next write may go out. The packet still comes (no skip-on-success mode); it only frees
        // the op. The op is alive here: its packet cannot be handled before we drop the pipe lock.
        op->settled = true;
        op.release();
        write_inflight_bytes_ = 0;
        return;
    }
    if (ok || err == ERROR_IO_PENDING) {
        op.release();
        write_inflight_ = true;
        return;
    }
    poll_->op_finished();
    write_inflight_bytes_ = 0;
    on_write_failure(err);
}

void WinPipe::on_write_done(OverlappedOp &op, DWORD bytes, DWORD error) {
    write_inflight_ = false;
    if (error != ERROR_SUCCESS) {
        write_inflight_bytes_ = 0;
        on_write_failure(error);
        return;
    }
    op.offset += std::min<size_t>(bytes, op.buffer.size() - op.offset);
    if (op.offset < op.buffer.size() && bytes > 0) {
        // Partial completion: re-issue the rest as one new op (exactly one packet per op: bug H).
        auto rest = make_op(OpKind::write);
        rest->buffer = std::move(op.buffer);
        rest->offset = op.offset;
        write_inflight_bytes_ = rest->buffer.size() - rest->offset;
        issue_write(std::move(rest));
    } else {
        write_inflight_bytes_ = 0;
    }
    maybe_issue_write();
    if (closed_) {
        if (!write_inflight_ && write_queue_.empty()) finish_linger();  // everything delivered
        return;
    }
    // Room freed (and maybe everything flushed): the WRITABLE edge after an EAGAIN or a flush.
    if (setup_.can_write) raise(ev::writable);
}

void WinPipe::on_write_failure(DWORD error) {
    // The bytes not yet written cannot be delivered any more; the failure is reported instead.
    write_queue_.clear();
    write_queued_ = 0;
    if (is_end_of_connection(error)) {
        // Accepted bytes that can no longer reach the peer are a failure, never a silent drop:
        // NPIPE_ERROR now, NPIPE_EPIPE from take_error once.
        note_failure(st::pipe, error);
        uint32_t bits = ev::error | ev::writable;
        if (!peer_gone_) {
            peer_gone_ = true;
            bits |= ev::write_closed;
        }
        raise(bits);
    } else if (write_error_ == 0) {
        write_error_ = status_from_win32(error);
        write_os_error_ = error;
        note_failure(write_error_, error);
        raise(ev::error | ev::writable);
    }
    if (closed_) finish_linger();
}

int64_t WinPipe::write(const IoVec *iov, size_t iovcnt) {
    std::lock_guard<std::mutex> lock(mu_);
    int32_t rc = check_io();
    if (rc < 0) return rc;
    if (!setup_.can_write) return fail(st::acces, "this pipe end was opened for reading only");
    if (setup_.server && !connected()) return fail(st::notconn, "server instance is not connected");
    if (write_error_ != 0) return fail_win32_as(write_error_, write_os_error_, "an earlier background WriteFile");
    if (peer_gone_) return fail(st::pipe, "the peer closed or disconnected the pipe");
    const size_t total = total_length(iov, iovcnt);
    const size_t used = write_used();
    if (setup_.message_write) {
        if (total > kMaxMessageSize)
            return failf(st::msgsize, 0, "message of %zu bytes exceeds the 16 MiB limit", total);
        // A whole message or nothing; one larger than the free room still goes when the buffer is empty.
        if (used > 0 && used + total > write_cap_)
            return fail(st::again, "write buffer has no room for the whole message");
        std::vector<uint8_t> msg;
        gather(iov, iovcnt, total, msg);
        write_queue_.push_back(std::move(msg));
        write_queued_ += total;
        bytes_written_ += total;
        const bool had_failure = first_error_ != 0;
        maybe_issue_write();
        if (write_error_ != 0 || peer_gone_) return refuse_failed_write(total, had_failure);
        return static_cast<int64_t>(total);
    }
    if (total == 0) return 0;
    if (used >= write_cap_) return fail(st::again, "write buffer is full");
    const size_t take = std::min(total, write_cap_ - used);
    // Byte mode: everything waiting for WriteFile shares one chunk (the in-flight one was moved out).
    if (write_queue_.empty()) write_queue_.emplace_back();
    gather(iov, iovcnt, take, write_queue_.back());
    write_queued_ += take;
    bytes_written_ += take;
    const bool had_failure = first_error_ != 0;
    maybe_issue_write();  // hand it to the OS now, not at the next wait
    if (write_error_ != 0 || peer_gone_) return refuse_failed_write(take, had_failure);
    return static_cast<int64_t>(take);
}

int64_t WinPipe::refuse_failed_write(size_t accepted, bool had_failure) {
    // WriteFile failed at once on this call's bytes (nothing else was in flight, or it would not
    // have been issued): report the failure now instead of pretending the bytes were taken. The
    // caller hears it here, so take_error need not repeat it.
    bytes_written_ -= accepted;
    if (!had_failure) {
        first_error_ = 0;
        first_os_error_ = 0;
    }
    if (write_error_ != 0) return fail_win32_as(write_error_, write_os_error_, "WriteFile");
    return fail(st::pipe, "the peer closed or disconnected the pipe");
}

int32_t WinPipe::flush() {
    std::lock_guard<std::mutex> lock(mu_);
    int32_t rc = check_io();
    if (rc < 0) return rc;
    if (setup_.server && !connected()) return fail(st::notconn, "server instance is not connected");
    if (write_error_ != 0) return fail_win32_as(write_error_, write_os_error_, "an earlier background WriteFile");
    if (write_used() == 0) return st::ok;
    return fail(st::again, "accepted bytes are still being written");
}

// ---------------------------------------------------------------------------------------------
// Completions, close, poll close

void WinPipe::complete(OverlappedOp &op, DWORD bytes, DWORD error) {
    std::lock_guard<std::mutex> lock(mu_);
    // Late packets of an earlier connection (before npipe_disconnect) or of a stopped pipe carry
    // nothing for anyone: no data, EOF, error or event leaks into the next connection (bug E).
    if (op.generation != generation_ || canceled_ || op.settled) return;
    switch (op.kind) {
    case OpKind::connect:
        if (!closed_) on_connect_done(error);
        break;
    case OpKind::read:
        if (!closed_) on_read_done(op, bytes, error);
        break;
    case OpKind::write:
        on_write_done(op, bytes, error);  // a closed pipe keeps draining during its linger
        break;
    }
}

void WinPipe::close_handle_now() {
    if (handle_ == INVALID_HANDLE_VALUE) return;
    // Cancel first so every pending op completes (with ERROR_OPERATION_ABORTED) and its packet
    // frees the op; then the handle goes at once, independent of the ops (bug F).
    CancelIoEx(handle_, nullptr);
    CloseHandle(handle_);
    handle_ = INVALID_HANDLE_VALUE;
}

void WinPipe::finish_linger() {
    close_handle_now();
    if (poll_) poll_->remove_lingering(this);
}

void WinPipe::close() {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    closed_ = true;
    events_.disarm();
    connect_requested_ = false;
    read_queue_.clear();
    read_buffered_ = 0;
    const bool pending = write_inflight_ || !write_queue_.empty();
    if (!poll_ || canceled_ || !pending || setup_.linger_ms < 0 || handle_ == INVALID_HANDLE_VALUE) {
        write_queue_.clear();
        write_queued_ = 0;
        close_handle_now();
        return;
    }
    // Accepted bytes keep draining while the poll is waited on, for at most linger_ms.
    maybe_issue_write();
    if (!write_inflight_ && write_queue_.empty()) {
        close_handle_now();
        return;
    }
    if (!poll_->add_lingering(shared_from_this(),
                              IocpPoll::Clock::now() + std::chrono::milliseconds(setup_.linger_ms))) {
        write_queue_.clear();
        write_queued_ = 0;
        close_handle_now();
    }
}

void WinPipe::linger_expired() {
    std::lock_guard<std::mutex> lock(mu_);
    write_queue_.clear();
    write_queued_ = 0;
    close_handle_now();
}

void WinPipe::poll_closed() {
    std::lock_guard<std::mutex> lock(mu_);
    canceled_ = true;
    events_.disarm();
    connect_requested_ = false;
    read_queue_.clear();
    read_buffered_ = 0;
    write_queue_.clear();
    write_queued_ = 0;
    write_inflight_bytes_ = 0;
    close_handle_now();
}

// ---------------------------------------------------------------------------------------------
// Introspection

int32_t WinPipe::get_info(PipeInfo &info) {
    std::lock_guard<std::mutex> lock(mu_);
    info = PipeInfo{};
    info.flags = setup_.flags | (setup_.server ? pf::info_server : 0u);
    if (connected() && !eof_ && !peer_gone_ && !canceled_ && handle_ != INVALID_HANDLE_VALUE)
        info.flags |= pf::info_connected;
    info.in_buffer_size = setup_.in_buffer_size;
    info.out_buffer_size = setup_.out_buffer_size;
    info.max_instances = setup_.max_instances;
    info.bytes_read = bytes_read_;
    info.bytes_written = bytes_written_;
    info.write_pending = write_used();
    info.read_available = read_buffered_;
    if (handle_ == INVALID_HANDLE_VALUE || !connected()) return st::ok;
    ULONG pid = 0;
    if (setup_.server ? GetNamedPipeClientProcessId(handle_, &pid) : GetNamedPipeServerProcessId(handle_, &pid))
        info.peer_pid = pid;
    DWORD avail = 0;
    if (setup_.can_read && PeekNamedPipe(handle_, nullptr, 0, nullptr, &avail, nullptr)) info.read_available += avail;
    info.peer_unread = query_peer_unread(handle_);
    return st::ok;
}

int32_t WinPipe::raw_handle(intptr_t &out) {
    std::lock_guard<std::mutex> lock(mu_);
    // After the poll was closed the OS handle is released: INVALID_HANDLE_VALUE says so honestly.
    out = reinterpret_cast<intptr_t>(handle_);
    return st::ok;
}

}  // namespace npipe::win
