// Plain value types shared by the core and both backends. They mirror the public C structs
// (capi/ static_asserts the layouts) but carry no C ABI concerns: defaults are already resolved
// and the option structs are validated before a backend sees them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace npipe {

// Event and interest bits (same values as NPIPE_READABLE ... NPIPE_LEVEL).
namespace ev {
constexpr uint32_t readable = 0x01u;
constexpr uint32_t writable = 0x02u;
constexpr uint32_t error = 0x04u;
constexpr uint32_t read_closed = 0x08u;
constexpr uint32_t write_closed = 0x10u;
constexpr uint32_t wake = 0x20u;
constexpr uint32_t connected = 0x40u;
constexpr uint32_t level = 0x100u;
// Reported whatever the interests.
constexpr uint32_t always = error | read_closed | write_closed | connected;
constexpr uint32_t interest_mask = readable | writable | level;
}  // namespace ev

// Pipe creation flags (same values as NPIPE_FIRST_INSTANCE ... NPIPE_NONBLOCK_OPEN).
namespace pf {
constexpr uint32_t first_instance = 0x01u;
constexpr uint32_t message = 0x02u;
constexpr uint32_t inbound_only = 0x04u;
constexpr uint32_t outbound_only = 0x08u;
constexpr uint32_t allow_remote = 0x10u;
constexpr uint32_t current_user_only = 0x20u;
constexpr uint32_t nonblock_open = 0x40u;
constexpr uint32_t server_mask =
    first_instance | message | inbound_only | outbound_only | allow_remote | current_user_only;
constexpr uint32_t client_mask = message | inbound_only | outbound_only | current_user_only | nonblock_open;
// npipe_info_t flags.
constexpr uint32_t info_server = 0x10000u;
constexpr uint32_t info_connected = 0x20000u;
constexpr uint32_t info_listener = 0x40000u;
}  // namespace pf

// npipe_peer_t flags.
namespace peer {
constexpr uint32_t same_user = 0x1u;
}  // namespace peer

// Message flags of npipe_read_msg.
namespace mf {
constexpr uint32_t partial = 0x1u;
constexpr uint32_t empty = 0x2u;
}  // namespace mf

constexpr size_t kMaxMessageSize = 16u * 1024u * 1024u;  // NPIPE_EMSGSIZE beyond
constexpr uint32_t kDefaultBufferSize = 64u * 1024u;
constexpr int32_t kDefaultLingerMs = 1000;
constexpr size_t kMaxIovecs = 1024;      // like IOV_MAX: more buffers than this is NPIPE_EINVAL
constexpr size_t kMaxPendingWakes = 64;  // distinct tokens pending at once (the header promises at least 64)

struct Event {
    uint64_t token;
    uint32_t events;
    uint32_t reserved;
};

struct IoVec {
    void *base;
    size_t len;
};

struct ServerConfig {
    uint32_t flags = 0;
    uint32_t max_instances = 0;  // 0 = unlimited, else 1..254
    uint32_t in_buffer_size = kDefaultBufferSize;
    uint32_t out_buffer_size = kDefaultBufferSize;
    int32_t linger_ms = kDefaultLingerMs;  // < 0: discard at once
    bool has_sddl = false;
    std::string sddl;
};

struct ListenerConfig {
    uint32_t flags = 0;  // as for servers
    uint32_t in_buffer_size = kDefaultBufferSize;
    uint32_t out_buffer_size = kDefaultBufferSize;
    int32_t linger_ms = kDefaultLingerMs;
    uint32_t spare_instances = 4;  // 1..64
    uint32_t max_pending = 128;    // 1..4096
    bool has_sddl = false;
    std::string sddl;
};

struct ClientConfig {
    uint32_t flags = 0;
    int32_t timeout_ms = 0;  // 0 = fail at once, < 0 = forever
    int32_t linger_ms = kDefaultLingerMs;
};

struct PipeInfo {
    uint32_t flags = 0;
    uint32_t in_buffer_size = 0;
    uint32_t out_buffer_size = 0;
    uint32_t max_instances = 0;
    uint64_t peer_pid = 0;
    uint64_t bytes_read = 0;
    uint64_t bytes_written = 0;
    uint64_t write_pending = 0;
    uint64_t read_available = 0;
    uint64_t peer_unread = 0;
    uint32_t waiting_instances = 0;  // listener
    uint32_t pending_accepts = 0;    // listener
};

// Who is on the other end of a connection (npipe_peer_t without the C ABI's fixed buffer).
struct PeerIdentity {
    uint32_t flags = 0;  // peer::same_user
    uint64_t pid = 0;    // 0 if the platform cannot tell
    uint32_t uid = UINT32_MAX;
    uint32_t gid = UINT32_MAX;
    std::string sid;  // Windows: the user SID as text; Linux: empty
};

}  // namespace npipe
