#include "lib/win/win_security.hpp"

#include <aclapi.h>
#include <sddl.h>

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
        return fail_win32_as(st::acces, GetLastError(), "GetNamedPipeServerProcessId (current-user check)");
    UniqueHandle process(OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid));
    if (!process.valid())
        return fail_win32_as(st::acces, GetLastError(), "OpenProcess of the server (current-user check)");
    UniqueHandle token;
    if (!OpenProcessToken(process.get(), TOKEN_QUERY, token.put()))
        return fail_win32_as(st::acces, GetLastError(), "OpenProcessToken of the server (current-user check)");
    return token_user_sid(token.get(), buffer, sid);
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

int32_t check_server_is_current_user(HANDLE pipe) {
    std::vector<uint8_t> mine_buf;
    PSID mine = nullptr;
    int32_t rc = current_user_sid(mine_buf, mine);
    if (rc < 0) return rc;

    PSID owner = nullptr;
    PSECURITY_DESCRIPTOR sd = nullptr;
    const DWORD err =
        GetSecurityInfo(pipe, SE_KERNEL_OBJECT, OWNER_SECURITY_INFORMATION, &owner, nullptr, nullptr, nullptr, &sd);
    bool fallback = true;
    if (err == ERROR_SUCCESS && owner) {
        if (EqualSid(owner, mine)) {
            LocalFree(sd);
            return st::ok;
        }
        // A group owner equal to our own default owner (elevated token: Administrators) says
        // nothing about the user; any other owner is another user.
        fallback = current_default_owner_is(owner);
    }
    if (sd) LocalFree(sd);
    if (!fallback) return fail(st::acces, "the pipe's server is owned by another user (NPIPE_CURRENT_USER_ONLY)");

    std::vector<uint8_t> server_buf;
    PSID server = nullptr;
    rc = server_process_user(pipe, server_buf, server);
    if (rc < 0) return rc;
    if (!EqualSid(server, mine))
        return fail(st::acces, "the pipe's server runs as another user (NPIPE_CURRENT_USER_ONLY)");
    return st::ok;
}

}  // namespace npipe::win
