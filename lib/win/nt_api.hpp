// The few ntdll queries Win32 has no equivalent for, loaded at run time (ntdll is in every process,
// so npipe.dll keeps importing only kernel32/advapi32 and needs no extra import library).
#pragma once
#include <windows.h>

#include <cstdint>
#include <string>
#include <vector>

namespace npipe::win {

// An export of ntdll (mapped into every process), or nullptr.
void *ntdll_export(const char *name) noexcept;

// What NtQueryInformationFile(FilePipeLocalInformation) says about a pipe end.
struct PipeLocalInfo {
    ULONG configuration = 2;  // FILE_PIPE_INBOUND 0 / OUTBOUND 1 / FULL_DUPLEX 2 (server's view)
    ULONG end = 0;            // FILE_PIPE_CLIENT_END 0 / FILE_PIPE_SERVER_END 1
    ULONG inbound_quota = 0;
    ULONG outbound_quota = 0;
    ULONG write_quota_available = 0;
    ULONG read_data_available = 0;  // bytes waiting in this end's inbound buffer
};

// False if the query is unavailable or fails. Under Wine 8 it is one plain server request, where
// PeekNamedPipe on an overlapped handle is an asynchronous one plus a wait.
bool query_pipe_local_info(HANDLE pipe, PipeLocalInfo &info) noexcept;

// Bytes this end wrote that the peer has not read yet: the write quota minus the free write quota
// of this end's outbound queue. 0 when the system cannot tell. Best effort: a pending read on the
// peer's side is counted by NPFS as free quota, so the value can be lower than the truth.
// Always 0 under Wine, whose NPFS does not report the free write quota.
uint64_t query_peer_unread(HANDLE pipe) noexcept;

// True when running under Wine (ntdll exports wine_get_version).
bool running_on_wine() noexcept;

// True if the handle was opened for overlapped I/O (no FILE_SYNCHRONOUS_IO_* mode). When the
// system cannot tell, answers true and lets the first operation report the problem.
bool is_overlapped_handle(HANDLE handle) noexcept;

// The named-pipe file system's root (\\Device\\NamedPipe\\), opened for asynchronous
// FSCTL_PIPE_WAIT; INVALID_HANDLE_VALUE when it cannot be opened. Owned by the caller.
HANDLE open_pipe_root() noexcept;

// Starts an asynchronous wait on `root` (which joined a completion port) until an instance of
// `name` (the part after \\.\pipe\) is free, or `timeout_ms` passes (< 0: no limit). `ov` is
// the packet's OVERLAPPED and its status block; `buffer` holds the request until the packet
// comes. Returns the NTSTATUS: STATUS_PENDING or a success means a packet follows; an error
// (STATUS_OBJECT_NAME_NOT_FOUND when no instance exists at all) means none does.
LONG start_pipe_wait(HANDLE root, const std::wstring &name, int32_t timeout_ms, OVERLAPPED *ov,
                     std::vector<uint8_t> &buffer) noexcept;

}  // namespace npipe::win
