// Security of pipe ends: the descriptor a server is created with (NPIPE_CURRENT_USER_ONLY or a
// caller's SDDL), and the client-side check that a server belongs to the current user.
#pragma once
#include <windows.h>

#include <cstdint>
#include <vector>

#include "lib/core/types.hpp"

namespace npipe::win {

// Owns a self-relative descriptor made by ConvertStringSecurityDescriptorToSecurityDescriptorW.
class SecurityDescriptor {
public:
    SecurityDescriptor() = default;
    ~SecurityDescriptor() {
        if (sd_) LocalFree(sd_);
    }
    SecurityDescriptor(const SecurityDescriptor &) = delete;
    SecurityDescriptor &operator=(const SecurityDescriptor &) = delete;
    PSECURITY_DESCRIPTOR get() const { return sd_; }
    void reset(PSECURITY_DESCRIPTOR sd) {
        if (sd_) LocalFree(sd_);
        sd_ = sd;
    }

private:
    PSECURITY_DESCRIPTOR sd_ = nullptr;
};

// The descriptor a server is created with: none (system default), the caller's SDDL (invalid →
// NPIPE_EINVAL), or for NPIPE_CURRENT_USER_ONLY owner = current user and a protected DACL granting
// GENERIC_ALL to that user only ("O:<sid>D:P(A;;GA;;;<sid>)"), applied at creation.
int32_t make_server_descriptor(const ServerConfig &config, SecurityDescriptor &out);

// The user SID of a process token; `buffer` holds the TOKEN_USER the returned SID points into.
int32_t token_user_sid(HANDLE token, std::vector<uint8_t> &buffer, PSID &sid);

// Who the client of the server end `pipe` is: the user of its token, read at identification level
// by impersonating it for a moment on the calling thread (ImpersonateNamedPipeClient,
// OpenThreadToken), after which the thread has its own token back (or the one it was
// impersonating with before). NPIPE_EACCES for a client that allows only anonymous impersonation
// (SECURITY_ANONYMOUS). Windows can do this only once the client has sent something.
int32_t client_identity(HANDLE pipe, PeerIdentity &out);

// Who the server of the client end `pipe` is: the owner of the pipe object; where the descriptor
// reports no owner (Wine's default) or the owner is the Administrators group (a server running
// elevated), the user of the server process's token.
int32_t server_identity(HANDLE pipe, PeerIdentity &out);

// NPIPE_CURRENT_USER_ONLY for clients: st::ok if server_identity finds the server end behind
// `pipe` is the current user's (peer::same_user), else NPIPE_EACCES.
int32_t check_server_is_current_user(HANDLE pipe);

}  // namespace npipe::win
