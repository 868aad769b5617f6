// The three ways a pipe end comes to be on Windows: npipe_create (CreateNamedPipeW),
// npipe_open (CreateFileW with retries) and npipe_from_raw_handle (adoption).
#include <windows.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>

#include "lib/core/backend.hpp"
#include "lib/core/deadline.hpp"
#include "lib/core/error_detail.hpp"
#include "lib/core/names.hpp"
#include "lib/core/status.hpp"
#include "lib/win/nt_api.hpp"
#include "lib/win/unique_handle.hpp"
#include "lib/win/win_error.hpp"
#include "lib/win/win_pipe.hpp"
#include "lib/win/win_security.hpp"
#include "lib/win/win_text.hpp"

namespace npipe {
namespace {

using win::UniqueHandle;

constexpr DWORD kWaitSliceMs = 100;  // one WaitNamedPipeW slice while the server is busy
constexpr DWORD kMaxBackoffMs = 50;  // sleep cap while the name does not exist yet

int32_t os_name_of(const char *name, NameRole role, std::wstring &wide) {
    std::string os_name;
    int32_t rc = map_pipe_name(name, role, os_name);
    if (rc < 0) return rc;
    return win::to_wide(os_name, wide, "pipe name is not valid UTF-8");
}

// Wine does not enforce FILE_FLAG_FIRST_PIPE_INSTANCE; asking whether any instance exists makes the
// flag hold there too (on Windows the OS flag stays the authority). Only "file not found" means free.
bool pipe_name_exists(const std::wstring &name) {
    if (WaitNamedPipeW(name.c_str(), 1)) return true;
    const DWORD err = GetLastError();
    return err == ERROR_SEM_TIMEOUT || err == ERROR_PIPE_BUSY;
}

}  // namespace

int32_t create_server(const char *name, const ServerConfig &config, std::shared_ptr<Pipe> &out) {
    std::wstring wname;
    int32_t rc = os_name_of(name, NameRole::server, wname);
    if (rc < 0) return rc;
    win::SecurityDescriptor sd;
    rc = win::make_server_descriptor(config, sd);
    if (rc < 0) return rc;

    const bool first = (config.flags & pf::first_instance) != 0;
    const bool message = (config.flags & pf::message) != 0;
    if (first && pipe_name_exists(wname))
        return fail(st::exist, "a pipe of that name already exists (NPIPE_FIRST_INSTANCE)");

    DWORD open_mode = FILE_FLAG_OVERLAPPED;
    if (first) open_mode |= FILE_FLAG_FIRST_PIPE_INSTANCE;
    if (config.flags & pf::inbound_only)
        open_mode |= PIPE_ACCESS_INBOUND;
    else if (config.flags & pf::outbound_only)
        open_mode |= PIPE_ACCESS_OUTBOUND;
    else
        open_mode |= PIPE_ACCESS_DUPLEX;
    // Each mode bit set on its own, so no option clobbers another (RUSTSEC-2023-0001).
    DWORD pipe_mode = PIPE_WAIT;
    pipe_mode |= message ? (PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE) : (PIPE_TYPE_BYTE | PIPE_READMODE_BYTE);
    if (!(config.flags & pf::allow_remote)) pipe_mode |= PIPE_REJECT_REMOTE_CLIENTS;
    const DWORD instances = config.max_instances ? config.max_instances : PIPE_UNLIMITED_INSTANCES;

    SECURITY_ATTRIBUTES sa{};
    sa.nLength = sizeof sa;
    sa.lpSecurityDescriptor = sd.get();
    sa.bInheritHandle = FALSE;
    UniqueHandle h;
    h.reset(CreateNamedPipeW(wname.c_str(), open_mode, pipe_mode, instances, config.out_buffer_size,
                             config.in_buffer_size, 0, &sa));
    if (!h.valid()) {
        const DWORD err = GetLastError();
        if (first && err == ERROR_ACCESS_DENIED)
            return win::fail_win32_as(st::exist, err, "CreateNamedPipeW (the name exists; NPIPE_FIRST_INSTANCE)");
        if (err == ERROR_PIPE_BUSY)
            return win::fail_win32_as(st::busy, err, "CreateNamedPipeW (all max_instances instances exist)");
        return win::fail_win32(err, "CreateNamedPipeW");
    }

    const PipeSetup setup = server_setup(config);
    out = std::make_shared<win::WinPipe>(setup, h.get());
    h.release();
    return st::ok;
}

int32_t open_client(const char *name, const ClientConfig &config, std::shared_ptr<Pipe> &out) {
    std::wstring wname;
    int32_t rc = os_name_of(name, NameRole::client, wname);
    if (rc < 0) return rc;

    const bool can_read = !(config.flags & pf::outbound_only);
    const bool can_write = !(config.flags & pf::inbound_only);
    const bool message = (config.flags & pf::message) != 0;
    // FILE_WRITE_ATTRIBUTES lets a read-only client switch to message read mode (required).
    // FILE_READ_ATTRIBUTES lets a write-only client query the pipe (GetNamedPipeInfo, PeekNamedPipe);
    // it is only nice to have, so it is dropped again if the server's DACL refuses it.
    DWORD access = message ? FILE_WRITE_ATTRIBUTES : 0;
    if (can_read) access |= GENERIC_READ;
    if (can_write) access |= GENERIC_WRITE;
    DWORD optional_access = can_read ? 0 : FILE_READ_ATTRIBUTES;
    const DWORD flags = FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION;

    const Deadline deadline = Deadline::after_ms(config.timeout_ms);
    DWORD backoff_ms = 1;
    UniqueHandle h;
    for (;;) {
        // NULL security attributes: the handle is not inheritable.
        h.reset(CreateFileW(wname.c_str(), access | optional_access, 0, nullptr, OPEN_EXISTING, flags, nullptr));
        if (h.valid()) break;
        const DWORD err = GetLastError();
        if (err == ERROR_ACCESS_DENIED && optional_access != 0) {
            optional_access = 0;
            continue;
        }
        if (err != ERROR_PIPE_BUSY && err != ERROR_FILE_NOT_FOUND)
            return win::fail_win32(err, "CreateFileW (opening the pipe)");
        if (config.timeout_ms == 0)
            return win::fail_win32(err, err == ERROR_PIPE_BUSY ? "CreateFileW (all instances are busy)"
                                                               : "CreateFileW (no pipe of that name)");
        if (deadline.passed())
            return win::fail_win32_as(st::timedout, err,
                                      err == ERROR_PIPE_BUSY
                                          ? "CreateFileW (instances stayed busy until the timeout)"
                                          : "CreateFileW (the pipe did not appear before the timeout)");
        const DWORD slice = static_cast<DWORD>(deadline.bound(static_cast<int32_t>(kWaitSliceMs)));
        if (err == ERROR_PIPE_BUSY) {
            // Blocks until an instance is free or the slice passes: no spinning. A "not found"
            // answer (the server is between instances) falls through to the backoff sleep.
            if (WaitNamedPipeW(wname.c_str(), slice) || GetLastError() != ERROR_FILE_NOT_FOUND) continue;
        }
        Sleep(std::min(backoff_ms, slice));
        backoff_ms = std::min<DWORD>(backoff_ms * 2, kMaxBackoffMs);
    }

    if (message) {
        DWORD mode = PIPE_READMODE_MESSAGE;
        if (!SetNamedPipeHandleState(h.get(), &mode, nullptr, nullptr)) {
            const DWORD err = GetLastError();
            return win::fail_win32_as(err == ERROR_INVALID_PARAMETER ? st::inval : win::status_from_win32(err), err,
                                      "SetNamedPipeHandleState (message read mode; is the server in message mode?)");
        }
    }
    if (config.flags & pf::current_user_only) {
        rc = win::check_server_is_current_user(h.get());
        if (rc < 0) return rc;
    }

    PipeSetup setup = client_setup(config);
    DWORD type = 0, out_size = 0, in_size = 0, max_inst = 0;
    if (GetNamedPipeInfo(h.get(), &type, &out_size, &in_size, &max_inst)) {
        setup.message_write = (type & PIPE_TYPE_MESSAGE) != 0;
        // GetNamedPipeInfo answers from the server's side: its out buffer is our in buffer.
        setup.in_buffer_size = out_size;
        setup.out_buffer_size = in_size;
        setup.max_instances = max_inst == PIPE_UNLIMITED_INSTANCES ? 0 : max_inst;
    }
    out = std::make_shared<win::WinPipe>(setup, h.get());
    h.release();
    return st::ok;
}

int32_t adopt_raw_handle(intptr_t raw, uint32_t flags, std::shared_ptr<Pipe> &out) {
    HANDLE h = reinterpret_cast<HANDLE>(raw);
    if (!h || h == INVALID_HANDLE_VALUE) return fail(st::inval, "raw handle is 0 or INVALID_HANDLE_VALUE");
    if (GetFileType(h) != FILE_TYPE_PIPE) return fail(st::inval, "raw handle is not a pipe handle", GetLastError());
    DWORD type = 0, out_size = 0, in_size = 0, max_inst = 0;
    if (!GetNamedPipeInfo(h, &type, &out_size, &in_size, &max_inst))
        return win::fail_win32_as(st::inval, GetLastError(), "GetNamedPipeInfo (raw handle is not a named pipe)");
    if (!win::is_overlapped_handle(h)) return fail(st::inval, "raw handle was not opened for overlapped I/O");

    const bool server = (type & PIPE_SERVER_END) != 0;
    const bool message = (flags & pf::message) != 0;
    if (message) {
        DWORD mode = PIPE_READMODE_MESSAGE;
        if (!SetNamedPipeHandleState(h, &mode, nullptr, nullptr))
            return win::fail_win32(GetLastError(), "SetNamedPipeHandleState (message read mode)");
    }

    PipeSetup setup;
    setup.server = server;
    setup.flags = flags;
    setup.message_read = message;
    setup.message_write = (type & PIPE_TYPE_MESSAGE) != 0;
    setup.in_buffer_size = server ? in_size : out_size;
    setup.out_buffer_size = server ? out_size : in_size;
    setup.max_instances = max_inst == PIPE_UNLIMITED_INSTANCES ? 0 : max_inst;
    win::PipeLocalInfo local;
    if (win::query_pipe_local_info(h, local)) {
        // Configuration is the server's view: INBOUND = data flows client → server.
        const bool inbound = local.configuration == 0, outbound = local.configuration == 1;
        setup.can_read = server ? !outbound : !inbound;
        setup.can_write = server ? !inbound : !outbound;
    }
    if (server) {
        // Connected unless the instance still waits for (or never had) a client.
        DWORD avail = 0;
        if (PeekNamedPipe(h, nullptr, 0, nullptr, &avail, nullptr)) {
            setup.connected = true;
        } else {
            const DWORD err = GetLastError();
            setup.connected =
                !(err == ERROR_PIPE_LISTENING || err == ERROR_PIPE_NOT_CONNECTED || err == ERROR_BAD_PIPE);
        }
    } else {
        setup.connected = true;
    }
    // The library owns the handle only once the pipe object exists: if make_shared throws, the
    // caller still owns it (capi turns the exception into NPIPE_ENOMEM).
    out = std::make_shared<win::WinPipe>(setup, h);
    return st::ok;
}

}  // namespace npipe
