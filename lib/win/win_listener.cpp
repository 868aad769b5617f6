#include "lib/win/win_listener.hpp"

#include "lib/core/error_detail.hpp"

namespace npipe::win {

WinListener::WinListener(const ListenerConfig &config, std::wstring wname, std::shared_ptr<WinPipe> first)
    : ListenerCore(config), wname_(std::move(wname)) {
    set_first_instance(std::move(first));
}

ServerConfig WinListener::instance_config(const ListenerConfig &config) {
    ServerConfig server = server_config_of(config);
    server.flags &= ~pf::first_instance;  // the name exists since the first instance
    return server;
}

int32_t WinListener::os_new_instance(std::shared_ptr<PipeCore> &out, Failure &failure) {
    const KeptDetail kept;  // a background step: the caller's detail stays as it was
    std::shared_ptr<WinPipe> instance;
    const int32_t rc = create_instance(wname_, instance_config(config()), instance);
    if (rc < 0) {
        failure = kept.captured(rc);
        return rc;
    }
    out = std::move(instance);
    return st::ok;
}

}  // namespace npipe::win
