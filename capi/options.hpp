// Validation of the public option structs (SPEC section 2, "Public structs that may grow") and
// their conversion into the core's resolved configs.
#pragma once
#include "npipe.h"
#include "lib/core/types.hpp"

namespace npipe::capi {

int32_t to_server_config(const npipe_server_options_t *opts, ServerConfig &config);
int32_t to_client_config(const npipe_client_options_t *opts, ClientConfig &config);
// Checks info->size for npipe_get_info.
int32_t check_info_size(const npipe_info_t *info);
void fill_info(const PipeInfo &from, npipe_info_t *info);

}  // namespace npipe::capi
