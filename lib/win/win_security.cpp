#include "lib/win/win_security.hpp"

#include <aclapi.h>
#include <sddl.h>

#include <cstdlib>
#include <string>

#include "lib/core/error_detail.hpp"
#include "lib/core/status.hpp"
#include "lib/win/unique_handle.hpp"
#include "lib/win/win_error.hpp"
#include "lib/win/win_text.hpp"

namespace npipe::win {
namespace {

int32_t current_user_sid(std::vector<uint8_t> &buffer, PSID &sid) {
    UniqueHandle token;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, token.put()))
        return fail_win32(GetLastError(), "OpenProcessToken (current process)");
    return token_user_sid(token.get(), buffer, sid);
}

// The SID the current token gives new objects as owner (the user, or Administrators when elevated).
bool current_default_owner_is(PSID owner) {
    UniqueHandle token;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, token.put())) return false;
    DWORD len = 0;
    GetTokenInformation(token.get(), TokenOwner, nullptr, 0, &len);
    if (len == 0) return false;
    std::vector<uint8_t> buf(len);
    if (!GetTokenInformation(token.get(), TokenOwner, buf.data(), len, &len)) return false;
    return EqualSid(reinterpret_cast<TOKEN_OWNER *>(buf.data())->Owner, owner) != FALSE;
}

// The token user of the process serving `pipe`.
int32_t server_process_user(HANDLE pipe, std::vector<uint8_t> &buffer, PSID &sid) {
    ULONG pid = 0;
    if (!GetNamedPipeServerProcessId(pipe, &pid))
        return fail_win32_as(st::acces, GetLastError(), "GetNamedPipeServerProcessId (who the server is)");
    UniqueHandle process(OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid));
    if (!process.valid())
        return fail_win32_as(st::acces, GetLastError(), "OpenProcess of the server (who the server is)");
    UniqueHandle token;
    if (!OpenProcessToken(process.get(), TOKEN_QUERY, token.put()))
        return fail_win32_as(st::acces, GetLastError(), "OpenProcessToken of the server (who the server is)");
    return token_user_sid(token.get(), buffer, sid);
}

// The peer's SID as text and whether it is "the same user": the process's user, or its default
// owner (an elevated administrator's objects are owned by Administrators).
int32_t describe_peer(PSID sid, PeerIdentity &out) {
    LPSTR text = nullptr;
    if (!ConvertSidToStringSidA(sid, &text)) return fail_win32(GetLastError(), "ConvertSidToStringSidA");
    out.sid = text;
    LocalFree(text);
    std::vector<uint8_t> mine_buf;
    PSID mine = nullptr;
    const int32_t rc = current_user_sid(mine_buf, mine);
    if (rc < 0) return rc;
    if (EqualSid(sid, mine) || current_default_owner_is(sid)) out.flags |= peer::same_user;
    return st::ok;
}

// Puts the thread's token back after impersonating a client: the one it was impersonating with
// before, or its process's (RevertToSelf). A thread that cannot be returned would go on acting
// as the client; Windows' documented answer to a failed revert is to end the process.
void restore_thread_token(HANDLE previous) {
    const BOOL ok = previous ? SetThreadToken(nullptr, previous) : RevertToSelf();
    if (!ok) std::abort();
}

}  // namespace

int32_t token_user_sid(HANDLE token, std::vector<uint8_t> &buffer, PSID &sid) {
    DWORD len = 0;
    GetTokenInformation(token, TokenUser, nullptr, 0, &len);
    if (len == 0) return fail_win32(GetLastError(), "GetTokenInformation(TokenUser)");
    buffer.assign(len, 0);
    if (!GetTokenInformation(token, TokenUser, buffer.data(), len, &len))
        return fail_win32(GetLastError(), "GetTokenInformation(TokenUser)");
    sid = reinterpret_cast<TOKEN_USER *>(buffer.data())->User.Sid;
    return st::ok;
}

int32_t make_server_descriptor(const ServerConfig &config, SecurityDescriptor &out) {
    std::wstring sddl;
    if (config.flags & pf::current_user_only) {
        std::vector<uint8_t> buffer;
        PSID sid = nullptr;
        int32_t rc = current_user_sid(buffer, sid);
        if (rc < 0) return rc;
        LPWSTR text = nullptr;
        if (!ConvertSidToStringSidW(sid, &text)) return fail_win32(GetLastError(), "ConvertSidToStringSidW");
        const std::wstring user(text);
        LocalFree(text);
        // Owner set explicitly; protected DACL (no inherited ACEs); GENERIC_ALL (which includes
        // creating further instances) for the user only.
        sddl = L"O:" + user + L"D:P(A;;GA;;;" + user + L")";
    } else if (config.has_sddl) {
        int32_t rc = to_wide(config.sddl, sddl, "sddl is not valid UTF-8");
        if (rc < 0) return rc;
        if (sddl.empty()) return fail(st::inval, "sddl is an empty string");
    } else {
        return st::ok;
    }
    PSECURITY_DESCRIPTOR sd = nullptr;
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl.c_str(), SDDL_REVISION_1, &sd, nullptr)) {
        const DWORD err = GetLastError();
        return fail_win32_as(st::inval, err, "ConvertStringSecurityDescriptorToSecurityDescriptorW (invalid SDDL)");
    }
    out.reset(sd);
    return st::ok;
}

int32_t client_identity(HANDLE pipe, PeerIdentity &out) {
    UniqueHandle previous;  // stays empty when the thread is not impersonating anyone
    if (!OpenThreadToken(GetCurrentThread(), TOKEN_IMPERSONATE, TRUE, previous.put())) {
        const DWORD err = GetLastError();
        if (err != ERROR_NO_TOKEN) return fail_win32(err, "OpenThreadToken (the calling thread's own token)");
    }
    UniqueHandle client;
    DWORD err = ERROR_SUCCESS;
    if (!ImpersonateNamedPipeClient(pipe)) {
        err = GetLastError();
    } else if (!OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, TRUE, client.put())) {
        err = GetLastError();
    }
    restore_thread_token(previous.valid() ? previous.get()
                                          : nullptr);  // also after a failure: never left impersonating
    if (err == ERROR_CANNOT_IMPERSONATE)
        return fail_win32_as(st::again, err, "ImpersonateNamedPipeClient (the client has sent nothing yet)");
    if (err == ERROR_CANT_OPEN_ANONYMOUS || err == ERROR_BAD_IMPERSONATION_LEVEL)
        return fail_win32_as(st::acces, err,
                             "the client allows only anonymous impersonation (SECURITY_ANONYMOUS), so it cannot be "
                             "identified; OpenThreadToken");
    if (err != ERROR_SUCCESS) return fail_win32(err, "ImpersonateNamedPipeClient / OpenThreadToken");
    std::vector<uint8_t> buffer;
    PSID sid = nullptr;
    int32_t rc = token_user_sid(client.get(), buffer, sid);
    if (rc < 0) return rc;
    rc = describe_peer(sid, out);
    if (rc < 0) return rc;
    ULONG pid = 0;
    if (GetNamedPipeClientProcessId(pipe, &pid)) out.pid = pid;
    return st::ok;
}

int32_t server_identity(HANDLE pipe, PeerIdentity &out) {
    PSID owner = nullptr;
    PSECURITY_DESCRIPTOR sd = nullptr;
    const DWORD err =
        GetSecurityInfo(pipe, SE_KERNEL_OBJECT, OWNER_SECURITY_INFORMATION, &owner, nullptr, nullptr, nullptr, &sd);
    SecurityDescriptor holder;  // frees sd, which `owner` points into
    holder.reset(sd);
    if (err != ERROR_SUCCESS) owner = nullptr;
    std::vector<uint8_t> buffer;
    PSID user = nullptr;
    if (!owner) {
        const int32_t rc = server_process_user(pipe, buffer, user);
        if (rc < 0) return rc;
    } else if (IsWellKnownSid(owner, WinBuiltinAdministratorsSid)) {
        const KeptDetail kept;  // the owner stands in if the process cannot be asked
        if (server_process_user(pipe, buffer, user) < 0) user = nullptr;
    }
    const int32_t rc = describe_peer(user ? user : owner, out);
    if (rc < 0) return rc;
    ULONG pid = 0;
    if (GetNamedPipeServerProcessId(pipe, &pid)) out.pid = pid;
    return st::ok;
}

int32_t check_server_is_current_user(HANDLE pipe) {
    PeerIdentity server;
    const int32_t rc = server_identity(pipe, server);
    if (rc < 0) return rc;
    if (!(server.flags & peer::same_user))
        return failf(st::acces, 0,
                     "the pipe's server belongs to another user (%s), not to this one (NPIPE_CURRENT_USER_ONLY)",
                     server.sid.c_str());
    return st::ok;
}

}  // namespace npipe::win
