#include "options.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "lib/core/error_detail.hpp"
#include "lib/core/status.hpp"

namespace npipe::capi {
namespace {

// The size rules shared by every input struct: at least the first release's size, and any bytes
// beyond what this library knows must be zero (a newer caller asking for something we lack).
int32_t check_struct_size(const void *opts, uint32_t size, size_t known, const char *what) {
    if (size < known)
        return failf(st::inval, 0, "%s.size is %u, expected at least %u (call the _init function)", what,
                     static_cast<unsigned>(size), static_cast<unsigned>(known));
    const auto *bytes = static_cast<const unsigned char *>(opts);
    for (size_t i = known; i < size; ++i) {
        if (bytes[i] != 0)
            return failf(st::notsup, 0, "%s has non-zero fields beyond this library's %u bytes (newer header?)", what,
                         static_cast<unsigned>(known));
    }
    return st::ok;
}

int32_t resolve_linger(int32_t linger_ms) { return linger_ms == 0 ? kDefaultLingerMs : linger_ms; }

}  // namespace

int32_t to_server_config(const npipe_server_options_t *opts, ServerConfig &config) {
    config = ServerConfig{};
    if (!opts) return st::ok;
    int32_t rc = check_struct_size(opts, opts->size, sizeof(npipe_server_options_t), "npipe_server_options_t");
    if (rc < 0) return rc;
    if (opts->flags & ~pf::server_mask)
        return failf(st::inval, 0, "unknown server flag bits 0x%x",
                     static_cast<unsigned>(opts->flags & ~pf::server_mask));
    if ((opts->flags & pf::inbound_only) && (opts->flags & pf::outbound_only))
        return fail(st::inval, "NPIPE_INBOUND_ONLY and NPIPE_OUTBOUND_ONLY exclude each other");
    if (opts->max_instances > 254)
        return failf(st::inval, 0, "max_instances %u is out of range (0 = unlimited, else 1..254)",
                     static_cast<unsigned>(opts->max_instances));
    if (opts->sddl && (opts->flags & pf::current_user_only))
        return fail(st::inval, "sddl and NPIPE_CURRENT_USER_ONLY exclude each other");
    config.flags = opts->flags;
    config.max_instances = opts->max_instances;
    config.in_buffer_size = opts->in_buffer_size ? opts->in_buffer_size : kDefaultBufferSize;
    config.out_buffer_size = opts->out_buffer_size ? opts->out_buffer_size : kDefaultBufferSize;
    config.linger_ms = resolve_linger(opts->linger_ms);
    if (opts->sddl) {
        config.has_sddl = true;
        config.sddl = opts->sddl;
    }
    return st::ok;
}

int32_t to_client_config(const npipe_client_options_t *opts, ClientConfig &config) {
    config = ClientConfig{};
    if (!opts) return st::ok;
    int32_t rc = check_struct_size(opts, opts->size, sizeof(npipe_client_options_t), "npipe_client_options_t");
    if (rc < 0) return rc;
    if (opts->flags & ~pf::client_mask)
        return failf(st::inval, 0, "unknown client flag bits 0x%x",
                     static_cast<unsigned>(opts->flags & ~pf::client_mask));
    if ((opts->flags & pf::inbound_only) && (opts->flags & pf::outbound_only))
        return fail(st::inval, "NPIPE_INBOUND_ONLY and NPIPE_OUTBOUND_ONLY exclude each other");
    config.flags = opts->flags;
    config.timeout_ms = opts->timeout_ms;
    config.linger_ms = resolve_linger(opts->linger_ms);
    return st::ok;
}

int32_t to_listener_config(const npipe_listener_options_t *opts, ListenerConfig &config) {
    config = ListenerConfig{};
    if (!opts) return st::ok;
    int32_t rc = check_struct_size(opts, opts->size, sizeof(npipe_listener_options_t), "npipe_listener_options_t");
    if (rc < 0) return rc;
    if (opts->flags & ~pf::server_mask)
        return failf(st::inval, 0, "unknown listener flag bits 0x%x",
                     static_cast<unsigned>(opts->flags & ~pf::server_mask));
    if ((opts->flags & pf::inbound_only) && (opts->flags & pf::outbound_only))
        return fail(st::inval, "NPIPE_INBOUND_ONLY and NPIPE_OUTBOUND_ONLY exclude each other");
    if (opts->spare_instances > 64)
        return failf(st::inval, 0, "spare_instances %u is out of range (0 = 4, else 1..64)",
                     static_cast<unsigned>(opts->spare_instances));
    if (opts->max_pending > 4096)
        return failf(st::inval, 0, "max_pending %u is out of range (0 = 128, else 1..4096)",
                     static_cast<unsigned>(opts->max_pending));
    if (opts->reserved != 0) return fail(st::inval, "npipe_listener_options_t.reserved must be 0");
    if (opts->sddl && (opts->flags & pf::current_user_only))
        return fail(st::inval, "sddl and NPIPE_CURRENT_USER_ONLY exclude each other");
    config.flags = opts->flags;
    config.in_buffer_size = opts->in_buffer_size ? opts->in_buffer_size : kDefaultBufferSize;
    config.out_buffer_size = opts->out_buffer_size ? opts->out_buffer_size : kDefaultBufferSize;
    config.linger_ms = resolve_linger(opts->linger_ms);
    config.spare_instances = opts->spare_instances ? opts->spare_instances : 4;
    config.max_pending = opts->max_pending ? opts->max_pending : 128;
    if (opts->sddl) {
        config.has_sddl = true;
        config.sddl = opts->sddl;
    }
    return st::ok;
}

// Release 1.0's npipe_info_t was 72 bytes: callers built against it keep working (section 2's rule
// for output structs: filled up to min(size, sizeof), size set to the count written).
constexpr size_t kFirstInfoSize = 72;

int32_t check_info_size(const npipe_info_t *info) {
    if (info->size < kFirstInfoSize)
        return failf(st::inval, 0, "npipe_info_t.size is %u, expected at least %u", static_cast<unsigned>(info->size),
                     static_cast<unsigned>(kFirstInfoSize));
    return st::ok;
}

void fill_info(const PipeInfo &from, npipe_info_t *info) {
    npipe_info_t out;
    std::memset(&out, 0, sizeof out);
    out.size = static_cast<uint32_t>(sizeof(npipe_info_t));
    out.flags = from.flags;
    out.in_buffer_size = from.in_buffer_size;
    out.out_buffer_size = from.out_buffer_size;
    out.max_instances = from.max_instances;
    out.peer_pid = from.peer_pid;
    out.bytes_read = from.bytes_read;
    out.bytes_written = from.bytes_written;
    out.write_pending = from.write_pending;
    out.read_available = from.read_available;
    out.peer_unread = from.peer_unread;
    out.waiting_instances = from.waiting_instances;
    out.pending_accepts = from.pending_accepts;
    const size_t n = std::min<size_t>(info->size, sizeof out);
    out.size = static_cast<uint32_t>(n);
    std::memcpy(info, &out, n);
}

}  // namespace npipe::capi
