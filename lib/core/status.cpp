#include "status.hpp"

namespace npipe {

const char *status_name(int32_t status) noexcept {
    switch (status) {
#define NPIPE_NAME_CASE(name, value, text) \
    case value: return "NPIPE_" #name;
        NPIPE_STATUS_TABLE(NPIPE_NAME_CASE)
#undef NPIPE_NAME_CASE
        default: return "NPIPE_EUNKNOWN";
    }
}

const char *status_text(int32_t status) noexcept {
    switch (status) {
#define NPIPE_TEXT_CASE(name, value, text) \
    case value: return text;
        NPIPE_STATUS_TABLE(NPIPE_TEXT_CASE)
#undef NPIPE_TEXT_CASE
        default: return "unknown error";
    }
}

}  // namespace npipe
