// One heap object per kernel operation (ConnectNamedPipe, ReadFile, WriteFile). The OVERLAPPED is
// the first member, so the poll maps a completion packet back to its op with CONTAINING_RECORD and
// never needs per-pipe offsets. The op owns its I/O buffer and a strong reference to its pipe: both
// stay valid for the kernel until the packet has been dequeued, whatever the pipe does meanwhile
// (disconnect, close, poll close). The pipe's OS HANDLE is NOT owned here: closing it never waits
// for ops .
#pragma once
#include <windows.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "lib/win/thread_reads.hpp"

namespace npipe::win {

// probe: a zero-byte ReadFile, which completes when bytes arrive and holds no buffer meanwhile.
// instance_wait: FSCTL_PIPE_WAIT on the pipe file system's root (a client's busy wait).
enum class OpKind : uint8_t { connect, read, probe, write, instance_wait };

struct OverlappedOp;

// The receiver of completions: a pipe. All calls come from the poll's dispatch, without poll locks.
class OpTarget {
public:
    virtual ~OpTarget() = default;
    // The packet of `op` arrived: `bytes` transferred, `error` the Win32 result (0 = success).
    virtual void complete(OverlappedOp &op, DWORD bytes, DWORD error) = 0;
};

struct OverlappedOp {
    OVERLAPPED ov{};  // must stay first (CONTAINING_RECORD)
    OpKind kind = OpKind::read;
    uint64_t generation = 0;  // the pipe's connection generation when issued (bug E)
    std::shared_ptr<OpTarget> target;
    std::vector<uint8_t> buffer;  // read: where the kernel writes; write: the bytes to send
    size_t read_size = 0;         // read: the bytes asked for (the buffer, recycled, may be bigger)
    size_t offset = 0;            // write: bytes of `buffer` already completed
    bool settled = false;         // the result was taken synchronously: the packet only frees the op
    // Wine only (docs/design.md, "I/O whose thread ended"): the thread that started the op ended
    // as the op completed, so the OVERLAPPED was never written and the packet's copy of the status
    // is all there is. With it the byte count is 0 whatever moved, and a read's bytes, which were
    // waiting at the wineserver for that thread to fetch them, are gone (`bytes_left_behind`).
    bool status_block_lost = false;
    bool bytes_left_behind = false;
    // Reads under Wine (lib/win/thread_reads.hpp): the list of the thread that started the op, the
    // handle it reads, and whether that thread cancelled it as it ended (the pipe reads again).
    std::shared_ptr<ThreadReads> starter;
    HANDLE file = nullptr;
    bool canceled_as_thread_ended = false;

    OverlappedOp() = default;
    OverlappedOp(const OverlappedOp &) = delete;
    OverlappedOp &operator=(const OverlappedOp &) = delete;
    ~OverlappedOp() { ThreadReads::finished(*this); }  // an op freed without its packet leaves the list too
};

static_assert(offsetof(OverlappedOp, ov) == 0, "the OVERLAPPED must be the first member");

// Completion keys: what kind of packet a key announces.
constexpr ULONG_PTR kInterruptKey = 1;  // PostQueuedCompletionStatus from interrupt(), NULL overlapped
constexpr ULONG_PTR kPipeOpKey = 2;     // a pipe handle's packet: the OVERLAPPED is an OverlappedOp

}  // namespace npipe::win
