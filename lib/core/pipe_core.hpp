// The portable pipe: every rule of the header's poll and pipe sections that is not an OS call, written once for
// every platform. A backend (lib/win, lib/posix) derives from PipeCore and implements only the
// os_* hooks below; it reports what the OS did through the protected event functions. Both run
// under the pipe's one mutex, so a rule never sees half of an OS result.
//
//   state        IDLE -> CONNECTING -> CONNECTED (servers; clients and adopted ends start
//                CONNECTED); npipe_disconnect resets every per-connection field at once.
//   registration cancelled -> not registered / bound elsewhere -> bind for life -> arm -> re-raise,
//                in that order on every platform.
//   events       EventState (edge/level, READ_CLOSED/WRITE_CLOSED once per connection).
//   failures     a sticky read failure, a sticky write failure, the failure of the last wait for
//                a client, and the first background failure (npipe_take_error).
//   read side    ReadQueue (message rules); a backend may read straight into the caller's buffers
//                when nothing is queued (Linux byte mode).
//   write side   WriteQueue (acceptance, in-flight accounting, the one WRITABLE rule); a backend may
//                hand bytes to the OS straight from the caller's buffers when nothing is queued.
//   npipe_wait   READABLE alone, with nothing to read or write here, may wait inside the OS's
//                receive (Linux) instead of on the poll: see wait_without_poll.
//   drain        flushed, then the OS asked (os_peer_unread) until the peer has read every accepted
//                byte, re-checked on the poll's clock with backoff; NPIPE_WRITABLE when drained.
//   identity     asked of the OS once per connection and kept (os_peer_identity).
//   close        the handle is gone at once; accepted bytes drain for at most linger_ms while the
//                poll is waited on (the poll's linger list), then the OS handles are released.
//
// Lock order: the pipe's mutex, then the poll's (notify, linger); the poll never calls a pipe with
// a lock of its own held, and every caller into a pipe holds a strong reference to it.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "backend.hpp"
#include "deadline.hpp"
#include "event_state.hpp"
#include "failure.hpp"
#include "pollable_core.hpp"
#include "read_queue.hpp"
#include "status.hpp"
#include "write_queue.hpp"

namespace npipe {

// Everything a pipe end knows about how it was made (server instance, client or adopted handle).
struct PipeSetup {
    bool server = false;
    bool connected = false;       // clients and adopted connected ends start CONNECTED
    uint32_t flags = 0;           // creation flags, reported by npipe_get_info
    bool can_read = true;         // false: outbound-only server / write-only client
    bool can_write = true;        // false: inbound-only server / read-only client
    bool message_read = false;    // reads keep message boundaries
    bool message_write = false;   // every write is one message
    bool framed = false;          // messages travel with an in-band length header (framing.hpp)
    bool open_pending = false;    // a client whose open is still to be made (starts CONNECTING)
    int32_t open_timeout_ms = 0;  // 0 = one attempt, < 0 = forever; counted from npipe_open
    uint32_t in_buffer_size = kDefaultBufferSize;
    uint32_t out_buffer_size = kDefaultBufferSize;
    uint32_t max_instances = 0;
    int32_t linger_ms = kDefaultLingerMs;
};

// The setup every platform derives from the caller's options; a backend adjusts only what its OS
// decides (Windows: the write side follows the pipe's type; Linux: messages are framed).
PipeSetup server_setup(const ServerConfig &config);
PipeSetup client_setup(const ClientConfig &config);

class PipeCore : public PollableEndpoint<Pipe> {
public:
    explicit PipeCore(const PipeSetup &setup);

    // Pipe (registration and npipe_wait: PollableEndpoint)
    int32_t connect() final;
    int32_t disconnect() final;
    int32_t take_error() final;
    int64_t read(const IoVec *iov, size_t iovcnt, size_t total, uint32_t *msg_flags) final;
    int64_t write(const IoVec *iov, size_t iovcnt, size_t total) final;
    int32_t flush() final;
    int32_t drain() final;
    int32_t peer_identity(PeerIdentity &out) final;
    void close() final;
    int32_t get_info(PipeInfo &info) final;
    int32_t raw_handle(intptr_t &out) final;
    int32_t open_blocking() final;

    // PollMember
    void poll_closed() final;
    void linger_expired() final;
    void timer_fired() final;
    void before_wait() final;

    // A listener's side of its pipes (lib/core/listener_core.*). join_listener binds the pipe to the
    // listener's poll for life, with no events of its own (`owner` hears of its changes), and
    // starts waiting for a client when `wait_for_client`.
    enum class Progress { waiting, connected, failed };
    int32_t join_listener(const std::shared_ptr<Poll> &poll, std::weak_ptr<ReadySource> owner, bool wait_for_client);
    // Connected (a client that already left counts: its data, then EOF), failed (the wait ended
    // without a client: `failure` says why), or still waiting.
    Progress listener_progress(Failure &failure);
    // npipe_accept: the pipe is the caller's now, registered nowhere, still bound to the poll; a
    // listener driven by npipe_wait hands its private poll on (`private_poll`).
    void leave_listener(bool private_poll);

protected:
    // failed: a client whose open ended in a failure (every I/O call returns it).
    enum class State { idle, connecting, connected, failed };

    // One attempt to open a client end (os_try_open).
    struct OpenAttempt {
        enum Outcome { connected, busy, absent, failed };
        Outcome outcome = failed;
        Failure failure;  // busy/absent: what to say if this is the last attempt; failed: why
    };

    // ---- The OS hooks. Every one runs with mu_ held. --------------------------------------------
    // (os_attach, the first registration's join of the OS wait set, is PollableCore's.)
    // Server: starts waiting for a client. st::ok: a client is connected now; st::again: waiting
    // (connect_finished() follows); else a failure, described in `failure`.
    virtual int32_t os_start_connect(Failure &failure) = 0;
    // Server: drops the client and cancels what is pending; nothing of it may reach the core later.
    virtual void os_disconnect() = 0;
    // Keeps data coming in the background where the OS pushes it (Windows' outstanding ReadFile).
    virtual void os_read_more() {}
    // Pulls what the OS holds now: straight into the caller's buffers, `total` bytes in all (byte
    // mode, nothing queued; returns the count, 0 for none) ...
    virtual int64_t os_read_direct(const IoVec *iov, size_t iovcnt, size_t total);
    // ... or into read_queue_ (message mode; true if anything arrived). EOF and failures go
    // through on_eof() / on_read_failed().
    virtual bool os_fill_read_queue() { return false; }
    // Hands (prefix ++ iov) to the OS straight from the caller's buffers when nothing is queued:
    // the count the OS took (0 if none, or if the backend never writes directly), or a failure,
    // already reported through on_write_failed() and to the caller.
    virtual int64_t os_write_direct(const uint8_t *prefix, size_t prefix_len, const IoVec *iov, size_t iovcnt);
    // Hands queued bytes to the OS (as far as it takes them now).
    virtual void os_write_more() = 0;
    // Client: one attempt to open the pipe, without waiting. On `connected` the OS handle is the
    // pipe's, and joined the poll if the pipe is registered.
    virtual OpenAttempt os_try_open() = 0;
    // Client, every instance busy: starts waiting for one to free up without a thread (Windows'
    // asynchronous FSCTL_PIPE_WAIT), open_retry() follows. False: not possible, the core backs off.
    virtual bool os_wait_for_instance(Deadline) { return false; }
    // Client, nobody listening on the name: asks the OS to tell when the name appears (Linux:
    // inotify on the socket's directory), server_may_have_appeared() follows. The backoff timer
    // stays armed as the fallback.
    virtual void os_watch_for_server() {}
    // The blocking open's pause before its next attempt, on the caller's thread: at most `ms`,
    // earlier when the backend can tell an instance freed up (Windows: WaitNamedPipeW).
    virtual void os_pause_before_retry(OpenAttempt::Outcome outcome, int32_t ms);
    // The blocking open ended, connected or not, on the caller's thread.
    virtual void os_open_ended() {}
    // What the backend put off until a thread waits on the poll (defer_until_wait) is due.
    // `lock` holds mu_ on entry; a backend may release it (to make an OS call without it, as
    // Windows does for the read it arms) and need not take it again.
    virtual void os_before_wait(std::unique_lock<FastMutex> & /*lock*/) {}
    // Readiness the OS knows of and the core cannot (ev::readable, ev::read_closed,
    // ev::write_closed), for (re)registration and level mode.
    virtual uint32_t os_condition() { return 0; }
    // Whether a read would find bytes in the OS, asked by level mode and npipe_wait on every look
    // while nothing is queued here: a backend that can answer from its last event or read,
    // without a system call, does.
    virtual bool os_readable() { return (os_condition() & ev::readable) != 0; }
    // npipe_wait's receive (wait_without_poll), where the OS can block in a read with a timeout.
    // os_begin_receive (mu_ held) prepares a read into `buf` of `len` bytes for at most
    // `timeout_ms` (< 0: no limit), and starts it where it must start under mu_ (Windows, so a
    // close or disconnect meanwhile finds it to cancel); false: wait on the poll instead.
    // os_receive blocks in that read *without* mu_: the count (> 0), or 0 / negative for no bytes
    // (the end, a failure, or the time is up; the backend's own encoding). os_end_receive (mu_
    // held) reports EOF and failures, and answers false when the connection went meanwhile (a
    // close or npipe_disconnect from another thread), whose bytes go with it.
    virtual bool os_begin_receive(int32_t, uint8_t *, size_t) { return false; }
    virtual int64_t os_receive(uint8_t *, size_t) { return 0; }
    virtual bool os_end_receive(int64_t, size_t) { return false; }
    // A write the backend hands to the OS keeps going without anyone driving the poll (Windows:
    // a pending WriteFile's bytes are in the pipe already), so while npipe_wait receives a write
    // may queue what one OS write carries when nothing else is queued. False: only what the OS
    // takes at once (os_write_direct).
    virtual bool os_write_goes_on_undriven() const { return false; }
    // The pipe is closed: stop taking new clients (the name may go at once, linger or not).
    virtual void os_closing() {}
    // Releases every OS handle now, cancelling what is pending. Called once.
    virtual void os_release() = 0;
    // peer_pid and the OS part of read_available (connected, not released).
    virtual void os_query_info(PipeInfo &info) = 0;
    // Bytes this end handed to the OS that the peer has not read yet: 0 once it has read them all
    // (or when the OS cannot tell), or st::pipe when the OS knows the peer left without reading
    // them all. For npipe_drain and info.peer_unread (connected, not released).
    virtual int64_t os_peer_unread() = 0;
    // Who the peer is (connected, not released): st::ok; st::again while the OS cannot tell yet
    // (Windows: the client has sent nothing); or a failure, reported through fail().
    virtual int32_t os_peer_identity(PeerIdentity &out) = 0;
    virtual intptr_t os_raw_handle() = 0;

    // ---- What the OS did, reported by the backend (mu_ held). -----------------------------------
    // The wait for a client ended: connected (no failure) or failed.
    void connect_finished(const Failure &failure);
    // Data arrived in read_queue_ (pushed by the backend), or the OS says reading would not block.
    void data_arrived() { raise(ev::readable); }
    // The peer shut its sending side (Linux: EPOLLRDHUP) before the end is read.
    void peer_stopped_sending() { raise(ev::readable | ev::read_closed); }
    // End of the stream. `peer_gone_too`: the OS cannot half-close (Windows), so writes end too.
    void on_eof(bool peer_gone_too);
    void on_read_failed(const Failure &failure);
    // The OS completed or took bytes: settles owed WRITABLE edges and finishes a linger.
    void write_progressed();
    // A write failed; code st::pipe means the peer is gone.
    void on_write_failed(const Failure &failure);
    // The peer is gone and writes cannot reach it (Linux: EPOLLHUP).
    void on_peer_gone();
    // A busy wait (os_wait_for_instance) ended: try again now.
    void open_retry() { attempt_open(); }
    // The name a client waits for appeared (os_watch_for_server): try again now, and restart the
    // backoff, since a server that just bound its socket listens within moments.
    void server_may_have_appeared();
    // Asks for os_before_wait() once a thread is about to wait on the poll. False: do the work now
    // (no poll, or a waiter is blocked on another thread and would not see the request in time).
    bool defer_until_wait();

    // ---- State the hooks read. ------------------------------------------------------------------
    const PipeSetup &setup() const { return setup_; }
    // What only the opened pipe can tell (Windows: the pipe's type and buffer sizes).
    PipeSetup &setup_to_complete() { return setup_; }
    bool connected() const { return state_ == State::connected; }
    bool connecting() const { return state_ == State::connecting; }
    bool canceled() const { return canceled_; }
    bool closed() const { return closed_; }
    bool released() const { return released_; }
    // Reading has ended on this connection (EOF or a sticky failure): no more OS reads.
    bool reading_ended() const { return eof_ || static_cast<bool>(read_failure_); }

    ReadQueue read_queue_;
    WriteQueue write_queue_;

private:
    // peer: who is on the other end, which needs neither a poll nor a direction.
    enum class Direction { read, write, flush, peer };

    int32_t check_io(Direction direction) {
        // The usual case in one test, inline: connected, registered, and the direction allowed.
        if (state_ == State::connected && !canceled_ && events_.registered() &&
            (direction == Direction::read ? setup_.can_read : direction != Direction::write || setup_.can_write))
            return st::ok;
        return check_io_slow(direction);
    }
    int32_t check_io_slow(Direction direction);
    int32_t begin_connect(bool in_connect_call);
    void connected_now(bool report_event);
    // PollableCore
    void on_registered() override;
    void raise_current_state() override;
    uint32_t level_condition() override;
    uint32_t wait_condition(uint32_t interests) override;
    bool wait_without_poll(uint32_t interests, const Deadline &deadline, std::unique_lock<FastMutex> &lock) override;

    uint32_t condition(uint32_t os_bits) const;
    uint32_t os_readable_bit();
    void reset_connection();
    void close_locked();
    void finish_close();
    void attempt_open();
    void open_failed(const Failure &failure);
    void check_drained();
    void schedule_drain_check();
    // npipe_read and npipe_write hold mu_ through an IoLock: the poll's thread, due to arm the
    // pipe's wait (before_wait) while one of them holds it, leaves that to it instead of waiting.
    class IoLock;
    void arm_wait_owed() noexcept;

    PipeSetup setup_;
    State state_;
    bool connect_requested_ = false;        // npipe_connect before the first registration
    bool released_ = false;                 // os_release ran
    bool lingering_ = false;                // in the poll's linger list
    bool write_call_owns_failure_ = false;  // a write failing now failed on the caller's own bytes
    // npipe_wait receives (wait_without_poll): nobody drives the poll meanwhile.
    bool receiving_ = false;
    // A write found the OS full while receiving_ (and so queued nothing): not WRITABLE until the
    // OS reports room (write_progressed).
    bool os_full_while_receiving_ = false;

    // Client open (NPIPE_NONBLOCK_OPEN, and the blocking open's policy).
    Deadline open_deadline_;
    int32_t open_backoff_ms_ = 1;
    bool open_started_ = false;
    Failure open_failure_;  // sticky once the open failed

    Failure connect_failure_;  // the last wait for a client failed (npipe_connect, take_error)
    FirstFailure first_failure_;
    bool eof_ = false;
    Failure read_failure_;  // sticky: returned after the buffered bytes
    bool peer_gone_ = false;
    Failure write_failure_;  // sticky: every later write returns it

    uint64_t bytes_read_ = 0;
    uint64_t bytes_written_ = 0;

    // npipe_drain (per connection).
    bool undrained_ = false;     // bytes were accepted since the OS last said the peer read them all
    bool drain_wanted_ = false;  // a drain answered NPIPE_EAGAIN: NPIPE_WRITABLE is owed once drained
    bool drain_timer_ = false;   // a re-check is due on the poll's clock
    int32_t drain_backoff_ms_ = 1;

    // before_wait found mu_ held by an npipe_read or npipe_write (io_holds_lock_): that call runs
    // os_before_wait once it has unlocked (arm_wait_owed). Under Windows a read or write holds mu_
    // across a request to the OS, and the poll's thread, waiting for it, kept every other pipe of
    // the poll waiting too.
    std::atomic<bool> wait_arming_owed_{false};
    std::atomic<bool> io_holds_lock_{false};

    // npipe_peer_identity (per connection): the peer does not change while it is connected.
    bool peer_known_ = false;
    PeerIdentity peer_;
};

}  // namespace npipe
