// Listener exports: npipe_listener_options_init, npipe_listen, npipe_accept. The other calls a
// listener takes (register, close, get_info, take_error, wait) are the pipes' (api_pipe.cpp,
// api_poll.cpp), which resolve either kind.
#include <cstring>

#include "capi/guard.hpp"
#include "capi/options.hpp"
#include "npipe.h"

using namespace npipe;
using namespace npipe::capi;

static_assert(NPIPE_INFO_LISTENER == pf::info_listener, "listener info flag");

extern "C" {

void npipe_listener_options_init(npipe_listener_options_t *opts) noexcept {
    if (!opts) return;
    std::memset(opts, 0, sizeof *opts);
    opts->size = sizeof *opts;
}

int32_t npipe_listen(const char *name, const npipe_listener_options_t *opts, npipe_t *out) noexcept {
    return guarded([&]() -> int32_t {
        if (!out) return fail(st::inval, "out is NULL");
        *out = 0;
        if (!name) return fail(st::inval, "pipe name is NULL");
        ListenerConfig config;
        int32_t rc = to_listener_config(opts, config);
        if (rc < 0) return rc;
        std::shared_ptr<Listener> listener;
        rc = create_listener(name, config, listener);
        if (rc < 0) return rc;
        return publish(listener, out);
    });
}

int32_t npipe_accept(npipe_t listener, npipe_t *out) noexcept {
    return guarded([&]() -> int32_t {
        auto l = find_listener(listener);
        if (!l) return bad_listener_handle();
        if (!out) return fail(st::inval, "out is NULL");
        *out = 0;
        std::shared_ptr<Pipe> pipe;
        const int32_t rc = l->accept(pipe);
        if (rc < 0) return rc;
        return publish(pipe, out);
    });
}

}  // extern "C"
