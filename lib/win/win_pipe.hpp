// The Windows pipe end: the OS half of a named pipe handle opened for overlapped I/O. The pipe's
// rules live in PipeCore; this class turns them into ConnectNamedPipe/ReadFile/WriteFile calls and
// their completions back into core events, without the bug classes of docs/design.md:
//   - one heap op per kernel operation, a packet expected exactly when the call returned TRUE,
//     ERROR_IO_PENDING or ERROR_MORE_DATA, results read only from the packet (no peeking);
//   - a connection generation stamped on every op: after npipe_disconnect, late completions of the
//     old connection are dropped;
//   - the OS handle is closed by close/disconnect/poll close, never held hostage by its ops;
//   - one ReadFile outstanding while there is room, sized to the rest of a message after
//     ERROR_MORE_DATA; one WriteFile outstanding, re-issued for the rest after a partial completion;
//   - byte mode at the cost floor (handles that read bytes): FILE_SKIP_COMPLETION_PORT_ON_SUCCESS,
//     so what completes at once is settled inline and queues no packet; a pipe that has received
//     nothing yet waits with a zero-byte read (a probe, no buffer) and reads what is there when it
//     completes; one that has received waits with a 4 KiB read (a full-size one while bytes
//     stream in). What waits is armed only when a thread waits on the poll (or at once when a
//     waiter is already blocked elsewhere); npipe_read on an empty queue asks the OS directly
//     before it answers NPIPE_EAGAIN: the first time FilePipeLocalInformation and a read of what
//     is there, then a read sized to what the last look found if it found bytes, or what waits
//     for bytes if it found none; after a probe that has finished, a full-size read at once.
//     npipe_wait for READABLE alone may wait in a ReadFile of its own, on its event, where the
//     port would cost two dequeues more (docs/design.md, "From completions to readiness").
//     Handles that read messages keep a buffered ReadFile pending and every packet: a zero-byte
//     read there may consume an empty message or end in ERROR_MORE_DATA, and whether a
//     synchronous ERROR_MORE_DATA queues a packet under skip-on-success is not documented.
//
// Windows-specific behaviour callers may notice (also in the header):
//   - writes that WriteFile completes at once are "completed" for npipe_flush at once; the packet
//     that still follows only frees the op;
//   - the write side follows the pipe's TYPE: on a PIPE_TYPE_MESSAGE pipe every accepted write is
//     one message (whole or NPIPE_EAGAIN), also for a client that did not ask for NPIPE_MESSAGE;
//   - after npipe_poll_close the OS handle is released: npipe_raw_handle answers INVALID_HANDLE_VALUE;
//   - info.peer_unread and npipe_drain come from FilePipeLocalInformation, which reports no quota
//     under Wine (0 unread: drained once flushed);
//   - a server learns its client's identity only after the client's first bytes arrived;
//   - an adopted server end counts as CONNECTED unless PeekNamedPipe says it is listening or
//     disconnected; its direction comes from FilePipeLocalInformation.
#pragma once
#include <windows.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "lib/core/pipe_core.hpp"
#include "lib/win/iocp_poll.hpp"
#include "lib/win/overlapped_op.hpp"
#include "lib/win/unique_handle.hpp"

namespace npipe::win {

// Where and how a client opens its pipe (made once by npipe_open, used by every attempt).
struct OpenTarget {
    std::wstring path;       // \\.\pipe\name or \\server\pipe\name
    std::wstring wait_name;  // the part after \\.\pipe\ for FSCTL_PIPE_WAIT; empty for remote names
    DWORD access = 0;
    DWORD optional_access = 0;  // dropped again if the server's DACL refuses it
};

class WinPipe final : public PipeCore, public OpTarget {
public:
    // Takes ownership of `handle` (overlapped) from construction on. `reads_bytes`: the handle is
    // in byte read mode (the library created it so unless `setup.message_read`; an adopted handle
    // was asked, since its creator chose).
    WinPipe(const PipeSetup &setup, HANDLE handle, bool reads_bytes);
    // A client still to open `target`.
    WinPipe(const PipeSetup &setup, OpenTarget target);
    ~WinPipe() override;

    // OpTarget
    void complete(OverlappedOp &op, DWORD bytes, DWORD error) override;

private:
    // PipeCore
    int32_t os_attach(ReadyPoll &poll) override;
    int32_t os_start_connect(Failure &failure) override;
    void os_disconnect() override;
    void os_read_more() override;
    int64_t os_read_direct(const IoVec *iov, size_t iovcnt, size_t total) override;
    void os_before_wait(std::unique_lock<FastMutex> &lock) override;
    void os_write_more() override;
    OpenAttempt os_try_open() override;
    bool os_wait_for_instance(Deadline deadline) override;
    void os_pause_before_retry(OpenAttempt::Outcome outcome, int32_t ms) override;
    void os_release() override;
    void os_query_info(PipeInfo &info) override;
    int64_t os_peer_unread() override;
    int32_t os_peer_identity(PeerIdentity &out) override;
    intptr_t os_raw_handle() override;
    bool os_begin_receive(int32_t timeout_ms, uint8_t *buf, size_t len) override;
    int64_t os_receive(uint8_t *buf, size_t len) override;
    bool os_end_receive(int64_t result, size_t asked) override;
    bool os_write_goes_on_undriven() const override { return true; }

    IocpPoll &iocp() const { return static_cast<IocpPoll &>(*poll()); }
    // Joins `h` to the port and, for a handle that reads bytes, turns on skip-on-success.
    int32_t join_port(IocpPoll &port, HANDLE h);
    std::unique_ptr<OverlappedOp> make_op(OpKind kind);
    void on_connect_done(DWORD error);
    // A read may be issued now (connected, reading, nothing in flight) and the queue has room.
    bool may_read() const;
    // A buffered ReadFile of `size` (settled inline when it completes at once on a skip_ handle).
    void issue_read(size_t size);
    // The same, with mu_ released while ReadFile runs (os_before_wait; win_pipe.cpp says why);
    // `lock` is held again on return only when the read completed at once or failed.
    void issue_read_unlocked(size_t size, std::unique_lock<FastMutex> &lock);
    std::unique_ptr<OverlappedOp> prepare_read(size_t size);
    void settle_read(std::unique_ptr<OverlappedOp> op, BOOL ok, DWORD err);
    // Returns once no ReadFile is being started without mu_: what closes or disconnects the handle
    // waits for it (mu_ is released meanwhile).
    void wait_for_unlocked_read();
    size_t idle_read_size() const;  // the buffered read a pipe that has received waits with
    // What waits for bytes: a probe, or a buffered read once bytes came (started without `*lock`
    // when one is given).
    void arm_idle_read(std::unique_lock<FastMutex> *lock = nullptr);
    void arm_probe();  // the zero-byte read; if bytes are there already, reads them at once
    void on_read_done(OverlappedOp &op, DWORD bytes, DWORD error);
    // Queues the first `got` bytes of a read's storage, and keeps the storage to read into again.
    void queue_read(std::vector<uint8_t> storage, size_t got, bool end_of_message);
    void on_read_failure(DWORD error);
    // A look at the OS (a direct read or npipe_wait's receive) took `got` bytes; `filled`: all it
    // asked for, so more was likely waiting. Sizes the next direct read.
    void looked_and_found(size_t got, bool filled);
    void issue_write(std::unique_ptr<OverlappedOp> op);
    void on_write_done(OverlappedOp &op, DWORD bytes, DWORD error);
    void on_write_failure(DWORD error);

    HANDLE handle_;
    uint64_t generation_ = 1;                 // bumped by disconnect: ops of older generations are stale
    const size_t read_cap_;                   // in_buffer_size within sane bounds: the usual ReadFile size
    size_t next_read_size_ = 0;               // after ERROR_MORE_DATA: the rest of the message
    bool read_in_flight_ = false;             // a ReadFile (buffered or probe) is pending
    std::atomic<bool> read_unlocked_{false};  // issue_read_unlocked is inside ReadFile, without mu_
    bool reads_bytes_;                        // the handle is in byte read mode (what may skip the port)
    bool skip_ = false;                       // completions at once queue no packet: settled inline
    bool probing_ = false;                    // skip_ on a handle that reads bytes: idle reads are probes
    bool streaming_ = false;                  // the last read filled its buffer: more is likely on its way
    size_t conversation_read_ = 4096;         // the size of an idle read once bytes came (win_pipe.cpp)
    // What the last read on an empty queue found in the OS: it decides how the next one asks.
    enum class LastLook : uint8_t { not_yet, found_nothing, found_bytes };
    LastLook last_look_ = LastLook::not_yet;
    size_t direct_read_ = 4096;      // the size of a read after a look that found bytes (win_pipe.cpp)
    OverlappedOp *probe_ = nullptr;  // the probe in flight (owned by the kernel until its packet)
    bool received_ = false;          // a read of this connection brought bytes (identity needs them)
    bool write_in_flight_ = false;
    // npipe_wait's receive: one ReadFile whose OVERLAPPED event has its low bit set, so its
    // completion queues no packet on the port and is waited for on the event alone.
    struct Receive {
        OVERLAPPED ov{};
        UniqueHandle event;                    // manual-reset; made at the pipe's first receive
        HANDLE handle = INVALID_HANDLE_VALUE;  // what the ReadFile went to (the cancel on a timeout)
        DWORD timeout_ms = INFINITE;
        bool active = false;   // between os_begin_receive and os_end_receive: no other read
        bool pending = false;  // ReadFile answered ERROR_IO_PENDING
        DWORD bytes = 0;
        DWORD error = ERROR_SUCCESS;  // the outcome: ERROR_OPERATION_ABORTED when the time was up
        uint64_t generation = 0;      // the connection it reads from
    };
    Receive receive_;
    OpenTarget target_;                        // client: what to open
    HANDLE pipe_root_ = INVALID_HANDLE_VALUE;  // client: for the asynchronous busy wait, once needed
    bool instance_wait_in_flight_ = false;
};

}  // namespace npipe::win
