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

// NPIPE_CURRENT_USER_ONLY for clients: st::ok if the server end behind `pipe` belongs to the
// current user, else NPIPE_EACCES. Reads the pipe's owner; when the descriptor has no owner (Wine's
// default) or a group owner (elevated servers), falls back to the server process's token user.
int32_t check_server_is_current_user(HANDLE pipe);

}  // namespace npipe::win
