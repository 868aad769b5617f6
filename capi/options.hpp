// Validation of the public option structs (the header's ABI rules on structs that may grow) and
// their conversion into the core's resolved configs.
#pragma once
#include "lib/core/types.hpp"
#include "npipe.h"

namespace npipe::capi {

int32_t to_server_config(const npipe_server_options_t *opts, ServerConfig &config);
int32_t to_client_config(const npipe_client_options_t *opts, ClientConfig &config);
int32_t to_listener_config(const npipe_listener_options_t *opts, ListenerConfig &config);
// Checks info->size for npipe_get_info.
int32_t check_info_size(const npipe_info_t *info);
void fill_info(const PipeInfo &from, npipe_info_t *info);

}  // namespace npipe::capi
