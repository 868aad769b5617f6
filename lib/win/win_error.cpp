#include "lib/win/win_error.hpp"

#include <cstdio>
#include <cstring>

#include "lib/core/error_detail.hpp"
#include "lib/core/status.hpp"
#include "lib/win/nt_api.hpp"

namespace npipe::win {
namespace {

using RtlNtStatusToDosErrorFn = ULONG(WINAPI *)(LONG);

// ntdll is mapped into every process; loading the function at run time keeps npipe.dll's import
// table to kernel32/advapi32 and needs no import library.
RtlNtStatusToDosErrorFn ntstatus_converter() noexcept {
    static const auto fn = reinterpret_cast<RtlNtStatusToDosErrorFn>(ntdll_export("RtlNtStatusToDosError"));
    return fn;
}

// The system's English-ish text for `error`, without the trailing CR/LF and period.
void system_text(DWORD error, char *buf, size_t len) noexcept {
    DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr, error,
                             MAKELANGID(LANG_ENGLISH, SUBLANG_ENGLISH_US), buf, static_cast<DWORD>(len), nullptr);
    if (n == 0)
        n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr, error, 0, buf,
                           static_cast<DWORD>(len), nullptr);
    if (n == 0) {
        std::snprintf(buf, len, "system error");
        return;
    }
    while (n > 0 && (buf[n - 1] == '\r' || buf[n - 1] == '\n' || buf[n - 1] == ' ' || buf[n - 1] == '.')) --n;
    buf[n] = '\0';
}

}  // namespace

int32_t status_from_win32(DWORD error) noexcept {
    switch (error) {
        case ERROR_SUCCESS: return st::ok;
        case ERROR_FILE_NOT_FOUND:
        case ERROR_PATH_NOT_FOUND: return st::noent;
        case ERROR_PIPE_BUSY: return st::busy;
        case ERROR_ACCESS_DENIED:
        case ERROR_PRIVILEGE_NOT_HELD: return st::acces;
        case ERROR_BROKEN_PIPE:
        case ERROR_NO_DATA:
        case ERROR_PIPE_NOT_CONNECTED:
        case ERROR_HANDLE_EOF: return st::pipe;
        case ERROR_PIPE_LISTENING: return st::notconn;
        case ERROR_SEM_TIMEOUT:
        case ERROR_TIMEOUT:
        case WAIT_TIMEOUT: return st::timedout;
        case ERROR_OPERATION_ABORTED: return st::canceled;
        case ERROR_NOT_ENOUGH_MEMORY:
        case ERROR_OUTOFMEMORY:
        case ERROR_NO_SYSTEM_RESOURCES:
        case ERROR_NOT_ENOUGH_QUOTA: return st::nomem;
        case ERROR_INVALID_PARAMETER:
        case ERROR_INVALID_NAME:
        case ERROR_BAD_PATHNAME:
        case ERROR_INVALID_SECURITY_DESCR:
        case ERROR_INVALID_ACL:
        case ERROR_INVALID_SID: return st::inval;
        case ERROR_FILENAME_EXCED_RANGE: return st::nametoolong;
        case ERROR_ALREADY_EXISTS:
        case ERROR_FILE_EXISTS: return st::exist;
        case ERROR_NOT_SUPPORTED:
        case ERROR_CALL_NOT_IMPLEMENTED: return st::notsup;
        case ERROR_MORE_DATA: return st::msgsize;
        default: return st::io;
    }
}

bool is_end_of_connection(DWORD error) noexcept {
    return error == ERROR_BROKEN_PIPE || error == ERROR_NO_DATA || error == ERROR_PIPE_NOT_CONNECTED ||
           error == ERROR_HANDLE_EOF;
}

DWORD win32_from_ntstatus(uintptr_t status) noexcept {
    const LONG nt = static_cast<LONG>(static_cast<ULONG>(status));
    if (nt == 0) return ERROR_SUCCESS;
    if (auto fn = ntstatus_converter()) return fn(nt);
    // No ntdll export (never seen): keep the facts the pipe logic depends on.
    switch (static_cast<ULONG>(nt)) {
        case 0x80000005UL: return ERROR_MORE_DATA;           // STATUS_BUFFER_OVERFLOW
        case 0xC0000120UL: return ERROR_OPERATION_ABORTED;   // STATUS_CANCELLED
        case 0xC000014BUL: return ERROR_BROKEN_PIPE;         // STATUS_PIPE_BROKEN
        case 0xC00000B1UL: return ERROR_NO_DATA;             // STATUS_PIPE_CLOSING
        case 0xC00000B0UL: return ERROR_PIPE_NOT_CONNECTED;  // STATUS_PIPE_DISCONNECTED
        default: return ERROR_GEN_FAILURE;
    }
}

int32_t fail_win32_as(int32_t status, DWORD error, const char *what) noexcept {
    char text[256];
    system_text(error, text, sizeof text);
    return failf(status, error, "%s failed: %s (Win32 error %lu)", what, text, static_cast<unsigned long>(error));
}

Failure win32_failure(DWORD error, const char *what, int32_t status) {
    char text[256];
    system_text(error, text, sizeof text);
    return failuref(status != 0 ? status : status_from_win32(error), error, "%s failed: %s (Win32 error %lu)", what,
                    text, static_cast<unsigned long>(error));
}

int32_t fail_win32(DWORD error, const char *what) noexcept {
    return fail_win32_as(status_from_win32(error), error, what);
}

}  // namespace npipe::win
