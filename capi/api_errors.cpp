// Version and error-reporting exports.
#include <cstdio>

#include "lib/core/error_detail.hpp"
#include "lib/core/status.hpp"
#include "npipe.h"

// The header's literal values must match the one status table.
#define NPIPE_CHECK_STATUS(name, value, text) \
    static_assert(NPIPE_##name == (value), "NPIPE_" #name " differs from lib/core/status.hpp");
NPIPE_STATUS_TABLE(NPIPE_CHECK_STATUS)
#undef NPIPE_CHECK_STATUS

#define NPIPE_STR2(x) #x
#define NPIPE_STR(x) NPIPE_STR2(x)

extern "C" {

uint32_t npipe_version(void) noexcept {
    return (NPIPE_VERSION_MAJOR << 16) | (NPIPE_VERSION_MINOR << 8) | NPIPE_VERSION_PATCH;
}

const char *npipe_version_string(void) noexcept {
    return NPIPE_STR(NPIPE_VERSION_MAJOR) "." NPIPE_STR(NPIPE_VERSION_MINOR) "." NPIPE_STR(NPIPE_VERSION_PATCH);
}

const char *npipe_strerror(int status) noexcept { return npipe::status_text(status); }
const char *npipe_err_name(int status) noexcept { return npipe::status_name(status); }
uint32_t npipe_last_os_error(void) noexcept { return npipe::last_os_error(); }
const char *npipe_last_error_message(void) noexcept { return npipe::last_error_message(); }

}  // extern "C"
