#include "error_detail.hpp"

#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace npipe {
namespace {

struct ErrorDetail {
    uint32_t os_error = 0;
    char message[512] = "no error";
};

thread_local ErrorDetail t_detail;

}  // namespace

int32_t fail(int32_t code, const char *message, uint32_t os_error) noexcept {
    t_detail.os_error = os_error;
    std::snprintf(t_detail.message, sizeof t_detail.message, "%s", message ? message : "unknown error");
    return code;
}

int32_t failf(int32_t code, uint32_t os_error, const char *format, ...) noexcept {
    t_detail.os_error = os_error;
    va_list args;
    va_start(args, format);
    std::vsnprintf(t_detail.message, sizeof t_detail.message, format, args);
    va_end(args);
    return code;
}

KeptDetail::KeptDetail() noexcept : os_error_(t_detail.os_error) {
    std::memcpy(message_, t_detail.message, sizeof message_);
}

KeptDetail::~KeptDetail() {
    t_detail.os_error = os_error_;
    std::memcpy(t_detail.message, message_, sizeof message_);
}

Failure KeptDetail::captured(int32_t code) const { return Failure{code, t_detail.os_error, t_detail.message}; }

const char *last_error_message() noexcept { return t_detail.message; }
uint32_t last_os_error() noexcept { return t_detail.os_error; }

}  // namespace npipe
