#include "failure.hpp"

#include <cstdarg>
#include <cstdio>

#include "error_detail.hpp"

namespace npipe {

Failure failuref(int32_t code, uint32_t os_error, const char *format, ...) {
    char text[512];
    va_list args;
    va_start(args, format);
    std::vsnprintf(text, sizeof text, format, args);
    va_end(args);
    return Failure{code, os_error, text};
}

int32_t report(const Failure &f) noexcept { return fail(f.code, f.message.c_str(), f.os_error); }

}  // namespace npipe
