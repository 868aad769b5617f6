// The Windows listener: the pool of ListenerCore over CreateNamedPipeW instances. Each instance is
// a WinPipe server that waits for a client with its own overlapped ConnectNamedPipe on the
// listener's port; the core moves the connected ones to the pending list and creates the next.
#pragma once
#include <memory>
#include <string>

#include "lib/core/listener_core.hpp"
#include "lib/core/status.hpp"
#include "lib/win/win_pipe.hpp"

namespace npipe::win {

// A server instance of `wname` (the factories' CreateNamedPipeW, in win_open.cpp).
int32_t create_instance(const std::wstring &wname, const ServerConfig &config, std::shared_ptr<WinPipe> &out);

class WinListener final : public ListenerCore {
public:
    WinListener(const ListenerConfig &config, std::wstring wname, std::shared_ptr<WinPipe> first);
    // The options every further instance is made with.
    static ServerConfig instance_config(const ListenerConfig &config);

private:
    bool os_uses_instances() const override { return true; }
    int32_t os_attach(ReadyPoll &) override { return st::ok; }  // each instance joins the port itself
    int32_t os_new_instance(std::shared_ptr<PipeCore> &out, Failure &failure) override;
    void os_release() override {}

    const std::wstring wname_;
};

}  // namespace npipe::win
