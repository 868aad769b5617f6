// The three ways a pipe end comes to be on Windows: npipe_create (CreateNamedPipeW),
// npipe_open (CreateFileW with retries) and npipe_from_raw_handle (adoption).
#include <windows.h>

#include <algorithm>
#include <string>

#include "lib/core/backend.hpp"
#include "lib/core/deadline.hpp"
#include "lib/core/error_detail.hpp"
#include "lib/core/names.hpp"
#include "lib/core/status.hpp"
#include "lib/win/nt_api.hpp"
#include "lib/win/unique_handle.hpp"
#include "lib/win/win_error.hpp"
#include "lib/win/win_listener.hpp"
#include "lib/win/win_pipe.hpp"
#include "lib/win/win_security.hpp"
#include "lib/win/win_text.hpp"

namespace npipe {
namespace {

using win::UniqueHandle;

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

namespace win {

int32_t create_instance(const std::wstring &wname, const ServerConfig &config, std::shared_ptr<WinPipe> &out) {
    SecurityDescriptor sd;
    int32_t rc = make_server_descriptor(config, sd);
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
            return fail_win32_as(st::exist, err, "CreateNamedPipeW (the name exists; NPIPE_FIRST_INSTANCE)");
        if (err == ERROR_PIPE_BUSY)
            return fail_win32_as(st::busy, err, "CreateNamedPipeW (all max_instances instances exist)");
        return fail_win32(err, "CreateNamedPipeW");
    }
    out = std::make_shared<WinPipe>(server_setup(config), h.get(), !message);  // its read mode, set above
    h.release();
    return st::ok;
}

}  // namespace win

int32_t create_server(const char *name, const ServerConfig &config, std::shared_ptr<Pipe> &out) {
    std::wstring wname;
    int32_t rc = os_name_of(name, NameRole::server, wname);
    if (rc < 0) return rc;
    std::shared_ptr<win::WinPipe> pipe;
    rc = win::create_instance(wname, config, pipe);
    if (rc < 0) return rc;
    out = std::move(pipe);
    return st::ok;
}

int32_t create_listener(const char *name, const ListenerConfig &config, std::shared_ptr<Listener> &out) {
    std::wstring wname;
    int32_t rc = os_name_of(name, NameRole::server, wname);
    if (rc < 0) return rc;
    ServerConfig instances = win::WinListener::instance_config(config);
    // The first instance makes the name exist at once (and is where NPIPE_FIRST_INSTANCE applies).
    instances.flags |= config.flags & pf::first_instance;
    std::shared_ptr<win::WinPipe> first;
    rc = win::create_instance(wname, instances, first);
    if (rc < 0) return rc;
    out = std::make_shared<win::WinListener>(config, std::move(wname), std::move(first));
    return st::ok;
}

int32_t open_client(const char *name, const ClientConfig &config, std::shared_ptr<Pipe> &out) {
    win::OpenTarget target;
    const int32_t rc = os_name_of(name, NameRole::client, target.path);
    if (rc < 0) return rc;
    const std::wstring local_prefix = L"\\\\.\\pipe\\";
    if (target.path.compare(0, local_prefix.size(), local_prefix) == 0)
        target.wait_name = target.path.substr(local_prefix.size());
    const bool can_read = !(config.flags & pf::outbound_only);
    const bool can_write = !(config.flags & pf::inbound_only);
    // FILE_WRITE_ATTRIBUTES lets a read-only client switch to message read mode (required).
    // FILE_READ_ATTRIBUTES lets a write-only client query the pipe (GetNamedPipeInfo, PeekNamedPipe);
    // it is only nice to have, so it is dropped again if the server's DACL refuses it.
    target.access = (config.flags & pf::message) ? FILE_WRITE_ATTRIBUTES : 0;
    if (can_read) target.access |= GENERIC_READ;
    if (can_write) target.access |= GENERIC_WRITE;
    target.optional_access = can_read ? 0 : FILE_READ_ATTRIBUTES;
    out = std::make_shared<win::WinPipe>(client_setup(config), std::move(target));  // attempts: os_try_open
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
    // Without NPIPE_MESSAGE the handle keeps the read mode its creator gave it: ask which (a handle
    // that may read messages never skips the port; win_pipe.cpp, join_port).
    DWORD state = 0;
    const bool reads_bytes = !message && GetNamedPipeHandleStateW(h, &state, nullptr, nullptr, nullptr, nullptr, 0) &&
                             (state & PIPE_READMODE_MESSAGE) == 0;

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
    out = std::make_shared<win::WinPipe>(setup, h, reads_bytes);
    return st::ok;
}

}  // namespace npipe
