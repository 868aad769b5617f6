// Exports about the other end of a connection: who it is (npipe_peer_identity) and whether it has
// read what was written (npipe_drain). Argument checks and handle resolution, then the core.
#include <algorithm>
#include <cstring>

#include "capi/guard.hpp"
#include "npipe.h"

using namespace npipe;
using namespace npipe::capi;

static_assert(NPIPE_PEER_SAME_USER == peer::same_user, "peer flags");

extern "C" {

int32_t npipe_peer_identity(npipe_t pipe, npipe_peer_t *out) noexcept {
    return guarded([&]() -> int32_t {
        auto q = find_pipe(pipe);
        if (!q) return bad_pipe_handle();
        if (!out) return fail(st::inval, "out is NULL");
        // An output struct: at least the first release's size; a larger one (a newer header) gets
        // what this library knows, and size says how much that was.
        if (out->size < sizeof(npipe_peer_t))
            return failf(st::inval, 0, "npipe_peer_t.size is %u, expected at least %u",
                         static_cast<unsigned>(out->size), static_cast<unsigned>(sizeof(npipe_peer_t)));
        PeerIdentity id;
        const int32_t rc = q->peer_identity(id);
        if (rc < 0) return rc;
        npipe_peer_t filled;
        std::memset(&filled, 0, sizeof filled);
        filled.size = static_cast<uint32_t>(sizeof filled);
        filled.flags = id.flags;
        filled.pid = id.pid;
        filled.uid = id.uid;
        filled.gid = id.gid;
        // A SID's text is at most 184 characters; anything longer would be cut, never overrun.
        std::memcpy(filled.sid, id.sid.data(), std::min(id.sid.size(), sizeof filled.sid - 1));
        std::memcpy(out, &filled, sizeof filled);
        return st::ok;
    });
}

int32_t npipe_drain(npipe_t pipe) noexcept {
    return guarded([&]() -> int32_t {
        auto q = find_pipe(pipe);
        if (!q) return bad_pipe_handle();
        return q->drain();
    });
}

}  // extern "C"
