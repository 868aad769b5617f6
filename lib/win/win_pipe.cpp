#include "lib/win/win_pipe.hpp"

#include <algorithm>
#include <bit>

#include "lib/core/error_detail.hpp"
#include "lib/core/status.hpp"
#include "lib/win/nt_api.hpp"
#include "lib/win/unique_handle.hpp"
#include "lib/win/win_error.hpp"
#include "lib/win/win_security.hpp"

namespace npipe::win {
namespace {

// Buffer hints are the caller's; these bounds keep a silly hint (0 B or 4 GiB) from turning into
// a silly allocation per read.
constexpr size_t kMinReadBuffer = 4096;
constexpr size_t kMaxReadBuffer = 16u * 1024u * 1024u;
constexpr size_t kMaxReadPieces = 1024;  // bounds memory when a peer floods empty messages
// What a pipe that has received waits with (byte mode): 4 KiB at first, doubled while such reads
// come back full (the peer's messages are bigger: one read each instead of two), at most 64 KiB,
// halved when one comes back three quarters empty. It is pinned while the pipe is idle.
constexpr size_t kMinConversationRead = 4096;
constexpr size_t kMaxConversationRead = 64u * 1024u;

}  // namespace

WinPipe::WinPipe(const PipeSetup &setup, HANDLE handle, bool reads_bytes)
    : PipeCore(setup),
      handle_(handle),
      read_cap_(std::clamp<size_t>(setup.in_buffer_size, kMinReadBuffer, kMaxReadBuffer)),
      reads_bytes_(reads_bytes) {}

// A client's handle starts in byte read mode whatever the pipe's type (Windows documents it, Wine
// does the same); os_try_open switches it to message read mode for setup.message_read.
WinPipe::WinPipe(const PipeSetup &setup, OpenTarget target)
    : PipeCore(setup),
      handle_(INVALID_HANDLE_VALUE),
      read_cap_(std::clamp<size_t>(setup.in_buffer_size, kMinReadBuffer, kMaxReadBuffer)),
      reads_bytes_(!setup.message_read),
      target_(std::move(target)) {}

WinPipe::~WinPipe() {
    if (handle_ != INVALID_HANDLE_VALUE) CloseHandle(handle_);
    if (pipe_root_ != INVALID_HANDLE_VALUE) CloseHandle(pipe_root_);
}

int32_t WinPipe::os_attach(ReadyPoll &poll) {
    if (handle_ == INVALID_HANDLE_VALUE) return st::ok;        // a client not open yet joins when it is
    return join_port(static_cast<IocpPoll &>(poll), handle_);  // create_poll makes nothing else on Windows
}

int32_t WinPipe::join_port(IocpPoll &port, HANDLE h) {
    const int32_t rc = port.associate(h);
    if (rc < 0) return rc;
    // What completes at once is settled inline and queues no packet, on handles that read bytes
    // only: in message read mode a synchronous ERROR_MORE_DATA may or may not queue a packet
    // under this mode (undocumented), and a wrong guess leaks or double-frees an op (bug A).
    // The read mode is known without asking the OS (reads_bytes_): one request fewer per pipe end.
    skip_ = reads_bytes_ && SetFileCompletionNotificationModes(
                                h, FILE_SKIP_COMPLETION_PORT_ON_SUCCESS | FILE_SKIP_SET_EVENT_ON_HANDLE) != FALSE;
    probing_ = skip_;
    return st::ok;
}

std::unique_ptr<OverlappedOp> WinPipe::make_op(OpKind kind) {
    auto op = std::make_unique<OverlappedOp>();
    op->kind = kind;
    op->generation = generation_;
    op->target = std::static_pointer_cast<WinPipe>(shared_from_this());
    return op;
}

void WinPipe::complete(OverlappedOp &op, DWORD bytes, DWORD error) {
    std::lock_guard lock(mu_);
    if (&op == probe_) probe_ = nullptr;  // whatever follows, the op is freed after this call
    // Late packets of an earlier connection (before npipe_disconnect) or of a stopped pipe carry
    // nothing for anyone: no data, EOF, error or event leaks into the next connection.
    if (op.generation != generation_ || canceled() || released() || op.settled) return;
    switch (op.kind) {
        case OpKind::connect:
            if (!closed()) on_connect_done(error);
            break;
        case OpKind::read:
            read_in_flight_ = false;
            if (closed()) break;
            if (error == ERROR_OPERATION_ABORTED && op.canceled_as_thread_ended) {
                os_read_more();  // the thread that started it ended (Wine): read again from here
                break;
            }
            if (op.bytes_left_behind) {
                // Bytes were taken off the pipe and nobody has them: the stream cannot go on whole.
                on_read_failed(Failure{st::io, 0,
                                       "ReadFile: Wine dropped the bytes of a read whose thread ended as it "
                                       "completed; the stream has a gap (docs/design.md, \"I/O whose thread ended\")"});
                break;
            }
            on_read_done(op, bytes, error);
            os_read_more();
            break;
        case OpKind::probe:
            // Bytes arrived (or the stream ended): read them now, then probe again when needed.
            probe_ = nullptr;
            read_in_flight_ = false;
            if (closed()) break;
            if (error != ERROR_SUCCESS)
                on_read_failure(error);
            else
                issue_read(read_cap_);
            os_read_more();
            break;
        case OpKind::write:
            // A pipe's write that succeeds has put all its bytes in the pipe; only the count was
            // lost with the status block.
            if (op.status_block_lost && error == ERROR_SUCCESS)
                bytes = static_cast<DWORD>(op.buffer.size() - op.offset);
            on_write_done(op, bytes, error);  // a closed pipe keeps draining during its linger
            break;
        case OpKind::instance_wait:
            // An instance freed up (or the wait timed out, or failed): the next attempt tells.
            instance_wait_in_flight_ = false;
            if (!closed()) open_retry();
            break;
    }
}

// ---------------------------------------------------------------------------------------------
// Client open

PipeCore::OpenAttempt WinPipe::os_try_open() {
    OpenAttempt a;
    const DWORD flags = FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION;
    UniqueHandle h;
    for (;;) {
        // NULL security attributes: the handle is not inheritable.
        h.reset(CreateFileW(target_.path.c_str(), target_.access | target_.optional_access, 0, nullptr, OPEN_EXISTING,
                            flags, nullptr));
        if (h.valid()) break;
        const DWORD err = GetLastError();
        if (err == ERROR_ACCESS_DENIED && target_.optional_access != 0) {
            target_.optional_access = 0;
            continue;
        }
        if (err == ERROR_PIPE_BUSY) {
            a.outcome = OpenAttempt::busy;
            a.failure = win32_failure(err, "CreateFileW (all instances are busy)", st::busy);
        } else if (err == ERROR_FILE_NOT_FOUND) {
            a.outcome = OpenAttempt::absent;
            a.failure = win32_failure(err, "CreateFileW (no pipe of that name)", st::noent);
        } else {
            a.failure = win32_failure(err, "CreateFileW (opening the pipe)");
        }
        return a;
    }
    if (setup().message_read) {
        DWORD mode = PIPE_READMODE_MESSAGE;
        if (!SetNamedPipeHandleState(h.get(), &mode, nullptr, nullptr)) {
            const DWORD err = GetLastError();
            a.failure =
                win32_failure(err, "SetNamedPipeHandleState (message read mode; is the server in message mode?)",
                              err == ERROR_INVALID_PARAMETER ? st::inval : 0);
            return a;
        }
    }
    if (setup().flags & pf::current_user_only) {
        const KeptDetail kept;  // the check reports through fail(): keep the caller's detail
        const int32_t rc = check_server_is_current_user(h.get());
        if (rc < 0) {
            a.failure = kept.captured(rc);
            return a;
        }
    }
    DWORD type = 0, out_size = 0, in_size = 0, max_inst = 0;
    if (GetNamedPipeInfo(h.get(), &type, &out_size, &in_size, &max_inst)) {
        // The write side follows the pipe's type; GetNamedPipeInfo answers from the server's side:
        // its out buffer is our in buffer.
        PipeSetup &s = setup_to_complete();
        s.message_write = (type & PIPE_TYPE_MESSAGE) != 0;
        s.in_buffer_size = out_size;
        s.out_buffer_size = in_size;
        s.max_instances = max_inst == PIPE_UNLIMITED_INSTANCES ? 0 : max_inst;
    }
    if (poll()) {
        const KeptDetail kept;
        const int32_t rc = join_port(iocp(), h.get());
        if (rc < 0) {
            a.failure = kept.captured(rc);
            return a;
        }
    }
    handle_ = h.release();
    a.outcome = OpenAttempt::connected;
    return a;
}

bool WinPipe::os_wait_for_instance(Deadline deadline) {
    if (target_.wait_name.empty() || instance_wait_in_flight_ || !poll() || canceled()) return false;
    if (pipe_root_ == INVALID_HANDLE_VALUE) {
        pipe_root_ = open_pipe_root();
        if (pipe_root_ == INVALID_HANDLE_VALUE) return false;
        const KeptDetail kept;
        if (iocp().associate(pipe_root_) < 0) {
            CloseHandle(pipe_root_);
            pipe_root_ = INVALID_HANDLE_VALUE;
            return false;
        }
    }
    auto op = make_op(OpKind::instance_wait);
    iocp().op_started();
    const LONG status = start_pipe_wait(pipe_root_, target_.wait_name, deadline.remaining_ms(), &op->ov, op->buffer);
    if (status >= 0) {  // STATUS_PENDING or a success: the packet follows
        op.release();
        instance_wait_in_flight_ = true;
        return true;
    }
    iocp().op_finished();  // no instance at all (or no such wait here): the clock retries
    return false;
}

void WinPipe::os_pause_before_retry(OpenAttempt::Outcome outcome, int32_t ms) {
    // Busy: WaitNamedPipeW returns as soon as an instance is free, so the pause is no longer than
    // needed. Absent (or between instances): a plain pause.
    if (outcome == OpenAttempt::busy && WaitNamedPipeW(target_.path.c_str(), static_cast<DWORD>(ms))) return;
    if (outcome == OpenAttempt::busy && GetLastError() != ERROR_FILE_NOT_FOUND) return;
    Sleep(static_cast<DWORD>(ms));
}

// ---------------------------------------------------------------------------------------------
// Server lifecycle

int32_t WinPipe::os_start_connect(Failure &failure) {
    auto op = make_op(OpKind::connect);
    iocp().op_started();
    const DWORD err = ConnectNamedPipe(handle_, &op->ov) ? ERROR_SUCCESS : GetLastError();
    // Overlapped ConnectNamedPipe is not documented to succeed synchronously; if it does, a packet
    // is queued like for any other success (the completion finishes the connect), unless the
    // handle skips packets for what completes at once: then it is connected now.
    if (err == ERROR_SUCCESS && skip_) {
        iocp().op_finished();
        return st::ok;
    }
    if (err == ERROR_SUCCESS || err == ERROR_IO_PENDING) {
        op.release();  // owned by the kernel until its packet is dequeued
        return st::again;
    }
    iocp().op_finished();  // failed at once: no packet will come
    // The client came before us (and, for ERROR_NO_DATA, already left: its EOF is read next).
    if (err == ERROR_PIPE_CONNECTED || err == ERROR_NO_DATA) return st::ok;
    failure = win32_failure(err, "ConnectNamedPipe");
    return failure.code;
}

void WinPipe::on_connect_done(DWORD error) {
    if (error == ERROR_SUCCESS || error == ERROR_PIPE_CONNECTED || error == ERROR_NO_DATA) {
        connect_finished(Failure{});
        return;
    }
    connect_finished(win32_failure(error, "ConnectNamedPipe"));
}

void WinPipe::os_disconnect() {
    // Every op issued so far belongs to the old connection: its packet will be dropped.
    ++generation_;
    wait_for_unlocked_read();  // a read being started is issued before the cancel, and dropped
    if (handle_ != INVALID_HANDLE_VALUE) {
        CancelIoEx(handle_, nullptr);
        // Fails harmlessly (ERROR_PIPE_NOT_CONNECTED / LISTENING) on an instance without a client.
        DisconnectNamedPipe(handle_);
    }
    read_in_flight_ = false;
    probe_ = nullptr;
    write_in_flight_ = false;
    next_read_size_ = 0;
    received_ = false;
    streaming_ = false;
    conversation_read_ = kMinConversationRead;
    last_look_ = LastLook::not_yet;
    direct_read_ = kMinConversationRead;
}

// ---------------------------------------------------------------------------------------------
// Reading

bool WinPipe::may_read() const {
    if (!setup().can_read || canceled() || closed() || released() || !connected() || !poll() || read_in_flight_ ||
        receive_.active || reading_ended())
        return false;
    const bool room = read_queue_.buffered() < read_cap_ && read_queue_.pieces() < kMaxReadPieces;
    return room || read_queue_.message_incomplete();
}

void WinPipe::os_read_more() {
    if (!may_read()) return;
    // A probe is needed only once somebody waits: until then a read asks the OS itself
    // (os_read_direct), which saves the probe that would otherwise go out after every read.
    if (probing_) {
        if (!defer_until_wait()) arm_idle_read();
        return;
    }
    const size_t size = next_read_size_ ? next_read_size_ : read_cap_;
    next_read_size_ = 0;
    issue_read(size);
}

void WinPipe::os_before_wait(std::unique_lock<FastMutex> &lock) {
    if (probing_ && may_read()) arm_idle_read(&lock);
}

void WinPipe::arm_idle_read(std::unique_lock<FastMutex> *lock) {
    // A pipe that has not received anything yet on this connection waits with a zero-byte read
    // (no buffer). One that has waits with a buffered read, which takes the bytes with its packet
    // instead of a second read after the probe's; given the caller's lock, that read starts
    // without it (issue_read_unlocked).
    if (!received_)
        arm_probe();
    else if (lock)
        issue_read_unlocked(idle_read_size(), *lock);
    else
        issue_read(idle_read_size());
}

size_t WinPipe::idle_read_size() const {
    // A small one while it converses, one of the full size while bytes stream in (the last read
    // filled its buffer).
    return streaming_ ? read_cap_ : std::min(conversation_read_, read_cap_);
}

int64_t WinPipe::os_read_direct(const IoVec *iov, size_t iovcnt, size_t /*total*/) {
    // Nothing is queued (the core asks only then). A read in flight brings what arrives with its
    // packet; otherwise ask the OS now, the cheapest way the last look suggests (each request is a
    // kernel transition, and under Wine a round trip to the server).
    if (!probing_) return 0;
    if (probe_ && HasOverlappedIoCompleted(&probe_->ov)) {
        // The probe has finished and its packet is on its way: it only frees the op now (bug A:
        // the packet still comes, and nothing is concluded from the peeked status but "done").
        probe_->settled = true;
        probe_ = nullptr;
        read_in_flight_ = false;
        // It finished because bytes came (or the stream ended): read at once with a full buffer,
        // as its packet would have (complete), one request where asking first is two.
        last_look_ = LastLook::found_bytes;
        direct_read_ = read_cap_;
    }
    if (!may_read()) return 0;
    size_t asked = 0;  // the size of a read issued to take bytes the last look found
    switch (last_look_) {
        case LastLook::found_bytes:
            // A reader slower than its writer: read at once, one request fewer than asking first.
            // A byte-mode read takes what is there without waiting for more; when nothing is, it
            // waits for bytes like an idle read.
            asked = direct_read_;
            issue_read(asked);
            break;
        case LastLook::found_nothing:
            // A reader faster than its writer: ask with what waits for bytes itself, one request
            // if still nothing is there, two if something is.
            arm_idle_read();
            break;
        case LastLook::not_yet: {
            // The connection's first look: ask (FilePipeLocalInformation, one request, where
            // PeekNamedPipe or a zero-byte read that completes at once are two), then read what is
            // there, sized so the read completes at once; else the probe waits for bytes.
            PipeLocalInfo local;
            if (query_pipe_local_info(handle_, local) && local.read_data_available > 0)
                issue_read(std::min<size_t>(local.read_data_available, read_cap_));
            else
                arm_idle_read();  // nothing there, or the query failed: wait for bytes, or hear the failure
            break;
        }
    }
    const size_t got = read_queue_.buffered();  // the queue was empty: what this call's read took
    if (got == 0) {
        last_look_ = LastLook::found_nothing;
        return 0;
    }
    looked_and_found(got, asked > 0 && got >= asked);
    return static_cast<int64_t>(read_queue_.read_bytes(iov, iovcnt));
}

void WinPipe::looked_and_found(size_t got, bool filled) {
    last_look_ = LastLook::found_bytes;
    // The next direct read is sized to what this look found (a whole buffer, twice that: more was
    // waiting), so small messages do not allocate and zero read_cap_ bytes per read, and a stream
    // still reaches full-size reads.
    direct_read_ = std::clamp(std::bit_ceil(got) * (filled ? 2 : 1), kMinConversationRead, read_cap_);
}

void WinPipe::arm_probe() {
    auto op = make_op(OpKind::probe);
    static uint8_t nothing;  // a zero-byte read still wants a buffer address; nothing is written there
    iocp().op_started();
    const BOOL ok = ReadFile(handle_, &nothing, 0, nullptr, &op->ov);
    const DWORD err = ok ? ERROR_SUCCESS : GetLastError();
    if (ok) {  // bytes are waiting; skip-on-success: no packet follows
        iocp().op_finished();
        issue_read(read_cap_);
        return;
    }
    // ERROR_MORE_DATA cannot answer a zero-byte read in byte mode; if it ever did, a packet may
    // follow, and an op that waits for a packet in vain only leaks, where one freed too early
    // would be used after free (bug A).
    if (err == ERROR_IO_PENDING || err == ERROR_MORE_DATA) {
        probe_ = op.release();
        read_in_flight_ = true;
        return;
    }
    iocp().op_finished();
    on_read_failure(err);
}

void WinPipe::issue_read(size_t size) {
    auto op = prepare_read(size);
    const BOOL ok = ReadFile(handle_, op->buffer.data(), static_cast<DWORD>(size), nullptr, &op->ov);
    settle_read(std::move(op), ok, ok ? ERROR_SUCCESS : GetLastError());
}

// The read armed before the poll's thread waits is started without the pipe's lock. That thread has
// just handed out the pipe's events, so the thread they went to is about to read the bytes they
// announced; with the lock held across ReadFile (under Wine a request to the server) it would wait
// for that call, and sleep and be woken to do so: measured under Wine, about 1.4 times per round
// trip of a ping-pong whose events a reactor hands to other threads (docs/design.md). Meanwhile
// read_in_flight_ keeps every other read off the handle, and what would close or disconnect the
// handle waits for the call (wait_for_unlocked_read), so the call never meets a closed handle, nor
// takes bytes of a connection that came after npipe_disconnect. The usual outcome, a read left
// pending, needs no lock either: its packet settles it, and that packet comes to this same thread
// (the poll's one waiter), or is dropped if the connection or the pipe ended meanwhile.
void WinPipe::issue_read_unlocked(size_t size, std::unique_lock<FastMutex> &lock) {
    auto op = prepare_read(size);
    const HANDLE handle = handle_;
    const uint64_t generation = generation_;
    read_in_flight_ = true;
    read_unlocked_.store(true, std::memory_order_relaxed);
    lock.unlock();
    const BOOL ok = ReadFile(handle, op->buffer.data(), static_cast<DWORD>(size), nullptr, &op->ov);
    const DWORD err = ok ? ERROR_SUCCESS : GetLastError();
    const bool packet_follows = ok ? !skip_ : err == ERROR_IO_PENDING || err == ERROR_MORE_DATA;
    if (packet_follows) {
        op.release();
        read_unlocked_.store(false, std::memory_order_release);
        return;
    }
    lock.lock();
    read_unlocked_.store(false, std::memory_order_release);
    read_in_flight_ = false;
    if (generation == generation_ && !closed() && !canceled() && !released()) {
        settle_read(std::move(op), ok, err);
        return;
    }
    // Disconnected, closed or stopped meanwhile: what the read took belongs to nobody now.
    iocp().op_finished();
}

void WinPipe::wait_for_unlocked_read() {
    // Rare: a close or disconnect in the moment the poll's thread spends in that ReadFile, which
    // does not block (the handle is overlapped). mu_ is held by the caller (every os_ hook runs
    // under it); it is let go while the other thread finishes the call.
    while (read_unlocked_.load(std::memory_order_acquire)) {
        mu_.unlock();
        SwitchToThread();
        mu_.lock();
    }
}

std::unique_ptr<OverlappedOp> WinPipe::prepare_read(size_t size) {
    auto op = make_op(OpKind::read);
    // Storage of a piece already read out when it is big enough (no allocation, no zeroing); a
    // message read beyond the buffer's size gets storage of its own, which is not kept after.
    op->buffer = size <= read_cap_ ? read_queue_.take_spare(size) : std::vector<uint8_t>(size);
    op->read_size = size;
    ThreadReads::started(*op, handle_);  // may throw (out of memory): before the op counts as started
    iocp().op_started();
    return op;
}

void WinPipe::settle_read(std::unique_ptr<OverlappedOp> op, BOOL ok, DWORD err) {
    if (ok && skip_) {  // completed at once, no packet: the op is ours again (and unlists itself)
        iocp().op_finished();
        on_read_done(*op, static_cast<DWORD>(op->ov.InternalHigh), ERROR_SUCCESS);
        return;
    }
    // Otherwise TRUE, pending and ERROR_MORE_DATA all queue a packet: the byte count comes with it.
    if (ok || err == ERROR_IO_PENDING || err == ERROR_MORE_DATA) {
        op.release();
        read_in_flight_ = true;
        return;
    }
    iocp().op_finished();
    on_read_failure(err);
}

void WinPipe::on_read_done(OverlappedOp &op, DWORD bytes, DWORD error) {
    if (error != ERROR_SUCCESS && error != ERROR_MORE_DATA) {
        on_read_failure(error);
        return;
    }
    const bool partial = error == ERROR_MORE_DATA && setup().message_read;
    // In message mode a 0-byte success is an empty message, not EOF.
    if (bytes > 0) received_ = true;
    streaming_ = bytes > 0 && bytes >= op.read_size;
    if (op.read_size == std::min(conversation_read_, read_cap_) && bytes > 0 && !setup().message_read) {
        if (streaming_)
            conversation_read_ = std::min(conversation_read_ * 2, kMaxConversationRead);
        else if (bytes <= op.read_size / 4)
            conversation_read_ = std::max(conversation_read_ / 2, kMinConversationRead);
    }
    if (bytes > 0 || setup().message_read) {
        queue_read(std::move(op.buffer), std::min<size_t>(bytes, op.read_size), !partial);
        data_arrived();
    }
    if (partial) {
        // Size the next read to the rest of this message so it usually arrives in one piece.
        DWORD left = 0;
        if (PeekNamedPipe(handle_, nullptr, 0, nullptr, nullptr, &left) && left > 0)
            next_read_size_ = std::min<size_t>(std::max<size_t>(left, read_cap_), kMaxMessageSize);
    }
}

void WinPipe::queue_read(std::vector<uint8_t> storage, size_t got, bool end_of_message) {
    if (storage.size() <= read_cap_) {
        read_queue_.push_filled(std::move(storage), got, end_of_message);
        return;
    }
    // A message bigger than the buffer: its storage is not kept to read into again.
    storage.resize(got);
    if (got < storage.capacity() / 4) storage.shrink_to_fit();
    read_queue_.push(std::move(storage), end_of_message);
}

void WinPipe::on_read_failure(DWORD error) {
    if (error == ERROR_PIPE_LISTENING) return;  // no client yet: the read starts at connect
    // A Windows pipe cannot be half-closed: the end of the stream is the end of writing too.
    if (is_end_of_connection(error))
        on_eof(true);
    else
        on_read_failed(win32_failure(error, "ReadFile"));
}

// ---------------------------------------------------------------------------------------------
// npipe_wait's receive (PipeCore::wait_without_poll says when and why). Waiting on the port costs
// a dequeue that finds it empty, the wait, and the dequeue of the packet (under Wine three
// requests to the server); a read whose event is waited for costs the wait alone, as a blocking
// ReadFile does. The ReadFile starts under the pipe's lock, so a close or npipe_disconnect finds
// it there and cancels it (CancelIoEx on the handle cancels every read of it), and a read issued
// late can never take a next connection's bytes. Its low event bit keeps its completion off the
// port: it is not an op, and no packet is expected for it.

bool WinPipe::os_begin_receive(int32_t timeout_ms, uint8_t *buf, size_t len) {
    // Handles that read bytes with skip-on-success only, and no read of the poll's in flight (its
    // bytes would come first, with its packet).
    if (!probing_ || read_in_flight_ || receive_.active || handle_ == INVALID_HANDLE_VALUE) return false;
    if (!receive_.event.valid()) {
        receive_.event.reset(CreateEventW(nullptr, TRUE, FALSE, nullptr));
        if (!receive_.event.valid()) return false;
    }
    receive_.ov = OVERLAPPED{};
    receive_.ov.hEvent = reinterpret_cast<HANDLE>(reinterpret_cast<uintptr_t>(receive_.event.get()) | 1);
    receive_.handle = handle_;
    receive_.timeout_ms = timeout_ms < 0 ? INFINITE : static_cast<DWORD>(timeout_ms);
    receive_.generation = generation_;
    receive_.bytes = 0;
    receive_.error = ERROR_SUCCESS;
    receive_.pending = false;
    DWORD got = 0;
    const BOOL ok = ReadFile(handle_, buf, static_cast<DWORD>(len), &got, &receive_.ov);
    const DWORD err = ok ? ERROR_SUCCESS : GetLastError();
    if (ok)
        receive_.bytes = got;
    else if (err == ERROR_IO_PENDING)
        receive_.pending = true;
    else
        receive_.error = err;
    receive_.active = true;
    return true;
}

int64_t WinPipe::os_receive(uint8_t * /*buf*/, size_t /*len*/) {
    if (receive_.pending) {
        if (WaitForSingleObject(receive_.event.get(), receive_.timeout_ms) != WAIT_OBJECT_0) {
            // The time is up: cancel, and wait for the read to end, since the OVERLAPPED and the
            // buffer must outlive it. (After a close meanwhile the handle value is stale; the
            // close has cancelled the read already, and a stale cancel names this OVERLAPPED,
            // which no other read uses.)
            CancelIoEx(receive_.handle, &receive_.ov);
            WaitForSingleObject(receive_.event.get(), INFINITE);
        }
        DWORD got = 0;
        // The read has ended: this reads its outcome from the OVERLAPPED and waits for nothing.
        if (GetOverlappedResult(receive_.handle, &receive_.ov, &got, FALSE))
            receive_.bytes = got;
        else
            receive_.error = GetLastError();
    }
    return receive_.error == ERROR_SUCCESS ? static_cast<int64_t>(receive_.bytes) : -1;
}

bool WinPipe::os_end_receive(int64_t result, size_t asked) {
    receive_.active = false;
    // A close or npipe_disconnect meanwhile: what the read took belongs to the old connection.
    if (receive_.generation != generation_ || released() || handle_ == INVALID_HANDLE_VALUE) return false;
    if (result > 0) {
        received_ = true;
        streaming_ = static_cast<size_t>(result) >= asked;
        looked_and_found(static_cast<size_t>(result), streaming_);
        return true;
    }
    // Nothing: the time was up (cancelled), or a zero-byte write of a foreign peer; else the end.
    if (receive_.error != ERROR_SUCCESS && receive_.error != ERROR_OPERATION_ABORTED) {
        on_read_failure(receive_.error);
        return true;
    }
    // Another thread may have gone into the poll's wait meanwhile, when it could arm no read (this
    // one was the read): arm it now, or it would not hear of bytes that come later.
    os_read_more();
    return true;
}

// ---------------------------------------------------------------------------------------------
// Writing

void WinPipe::os_write_more() {
    // A loop, not recursion: writes that complete at once let the next queued piece go at once.
    while (!write_in_flight_ && write_queue_.has_queued() && !canceled() && !released() && poll()) {
        auto op = make_op(OpKind::write);
        op->buffer = write_queue_.take_front();
        issue_write(std::move(op));
    }
}

void WinPipe::issue_write(std::unique_ptr<OverlappedOp> op) {
    const DWORD len = static_cast<DWORD>(op->buffer.size() - op->offset);
    iocp().op_started();
    const BOOL ok = WriteFile(handle_, op->buffer.data() + op->offset, len, nullptr, &op->ov);
    const DWORD err = ok ? ERROR_SUCCESS : GetLastError();
    if (ok && skip_) {
        // Completed at once and no packet follows: settled here, the op is ours again. The rest
        // of a partial write goes out as a new operation.
        iocp().op_finished();
        const size_t done = std::min<size_t>(op->ov.InternalHigh, len);
        write_queue_.completed(done);
        op->offset += done;
        if (op->offset < op->buffer.size() && done > 0) {
            op->ov = OVERLAPPED{};
            issue_write(std::move(op));
        } else {
            write_queue_.piece_done();
            write_queue_.recycle(std::move(op->buffer));
        }
        return;
    }
    if (ok && op->ov.InternalHigh == len) {
        // Completed at once: the bytes are in the pipe now, so flush() may already say so and the
        // next write may go out. The packet still comes; it only frees the op. The op is alive
        // here: its packet cannot be handled before we drop the pipe lock.
        op->settled = true;
        op.release();
        write_queue_.completed(len);
        write_queue_.piece_done();
        return;
    }
    if (ok || err == ERROR_IO_PENDING) {
        op.release();
        write_in_flight_ = true;
        return;
    }
    iocp().op_finished();
    on_write_failure(err);
}

void WinPipe::on_write_done(OverlappedOp &op, DWORD bytes, DWORD error) {
    write_in_flight_ = false;
    if (error != ERROR_SUCCESS) {
        on_write_failure(error);
        return;
    }
    const size_t done = std::min<size_t>(bytes, op.buffer.size() - op.offset);
    op.offset += done;
    write_queue_.completed(done);
    if (op.offset < op.buffer.size() && done > 0) {
        // Partial completion: re-issue the rest as one new op (exactly one packet per op).
        auto rest = make_op(OpKind::write);
        rest->buffer = std::move(op.buffer);
        rest->offset = op.offset;
        issue_write(std::move(rest));
    } else {
        write_queue_.piece_done();
        write_queue_.recycle(std::move(op.buffer));
    }
    os_write_more();
    write_progressed();
}

void WinPipe::on_write_failure(DWORD error) {
    if (is_end_of_connection(error))
        on_write_failed(Failure{st::pipe, error, "WriteFile: the peer closed or disconnected the pipe"});
    else
        on_write_failed(win32_failure(error, "WriteFile"));
}

// ---------------------------------------------------------------------------------------------
// Release and introspection

void WinPipe::os_release() {
    wait_for_unlocked_read();  // the handle goes only after a read being started was issued
    if (pipe_root_ != INVALID_HANDLE_VALUE) {
        CancelIoEx(pipe_root_, nullptr);  // a busy wait in flight ends; its packet only frees the op
        CloseHandle(pipe_root_);
        pipe_root_ = INVALID_HANDLE_VALUE;
    }
    probe_ = nullptr;
    if (handle_ == INVALID_HANDLE_VALUE) return;
    // Cancel first so every pending op completes (with ERROR_OPERATION_ABORTED) and its packet
    // frees the op; then the handle goes at once, independent of the ops.
    CancelIoEx(handle_, nullptr);
    CloseHandle(handle_);
    handle_ = INVALID_HANDLE_VALUE;
}

void WinPipe::os_query_info(PipeInfo &info) {
    ULONG pid = 0;
    if (setup().server ? GetNamedPipeClientProcessId(handle_, &pid) : GetNamedPipeServerProcessId(handle_, &pid))
        info.peer_pid = pid;
    DWORD avail = 0;
    if (setup().can_read && PeekNamedPipe(handle_, nullptr, 0, nullptr, &avail, nullptr)) info.read_available += avail;
}

int64_t WinPipe::os_peer_unread() { return static_cast<int64_t>(query_peer_unread(handle_)); }

int32_t WinPipe::os_peer_identity(PeerIdentity &out) {
    if (!setup().server) return server_identity(handle_, out);
    // Windows lets a server take on its client's identity only after a message of the client was
    // read; until the library has received bytes, say so rather than let the OS answer vaguely (a
    // server that only writes never receives any: there only Windows can tell).
    if (!received_ && setup().can_read)
        return fail(st::again,
                    "the client has sent nothing yet: Windows identifies a client only after its first "
                    "bytes were received");
    return client_identity(handle_, out);
}

intptr_t WinPipe::os_raw_handle() {
    // After the poll was closed the OS handle is released: INVALID_HANDLE_VALUE says so honestly.
    return reinterpret_cast<intptr_t>(handle_);
}

}  // namespace npipe::win
