// The one place where Win32 error codes (and the NTSTATUS values carried by completion packets)
// become npipe status codes. Everything in lib/win reports failures through these helpers, so a
// caller always gets a specific message plus the raw GetLastError() value.
#pragma once
#include <windows.h>

#include <cstdint>

#include "lib/core/failure.hpp"

namespace npipe::win {

// Maps a Win32 error to an npipe status (st::noent, st::busy, ..., st::io by default).
// ERROR_BROKEN_PIPE / ERROR_NO_DATA / ERROR_PIPE_NOT_CONNECTED map to st::pipe here; the read path
// turns them into a sticky EOF before it ever gets this far (see is_end_of_connection).
int32_t status_from_win32(DWORD error) noexcept;

// True for the errors that mean "the peer closed or disconnected": a read sees EOF, a write sees
// NPIPE_EPIPE. Windows reports the same event with different codes depending on who left first.
bool is_end_of_connection(DWORD error) noexcept;

// The Win32 error of a completed operation, from the NTSTATUS the kernel left in
// OVERLAPPED.Internal (0 for success; STATUS_BUFFER_OVERFLOW becomes ERROR_MORE_DATA).
DWORD win32_from_ntstatus(uintptr_t status) noexcept;

// Records "<what> failed: <system text> (Win32 error N)" with the mapped status and returns it.
int32_t fail_win32(DWORD error, const char *what) noexcept;
// Same, with the status chosen by the caller (when the context gives the error its meaning).
int32_t fail_win32_as(int32_t status, DWORD error, const char *what) noexcept;
// The same text as a Failure kept for later (a background operation's result), with the mapped
// status or the one given.
Failure win32_failure(DWORD error, const char *what, int32_t status = 0);

}  // namespace npipe::win
