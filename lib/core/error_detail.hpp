// The thread-local detail behind the last failing call (libgit2 style): a specific message and the
// raw OS error. Every failure path in lib/ reports through fail(), so the message always names the
// real cause ("pipe is not registered with a poll"), never just the code.
#pragma once
#include <cstdint>

#include "failure.hpp"

namespace npipe {

// Records `message` (copied, truncated to a fixed buffer) and `os_error` for this thread and
// returns `code`, so failure paths read `return fail(st::inval, "...");`.
int32_t fail(int32_t code, const char *message, uint32_t os_error = 0) noexcept;
// printf-style variant for messages that name a value.
int32_t failf(int32_t code, uint32_t os_error, const char *format, ...) noexcept
#if defined(__MINGW32__)
    __attribute__((format(gnu_printf, 3, 4)))  // mingw's libstdc++ uses the C99 (mingw) printf
#elif defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

// Keeps the thread's detail as it was: helpers that report through fail() can then be used for a
// failure kept for later (a background attempt) without touching the detail of the call that
// runs them. captured() turns what they reported into a Failure.
class KeptDetail {
public:
    KeptDetail() noexcept;
    ~KeptDetail();
    KeptDetail(const KeptDetail &) = delete;
    KeptDetail &operator=(const KeptDetail &) = delete;
    Failure captured(int32_t code) const;

private:
    uint32_t os_error_;
    char message_[512];
};

// Never NULL: "no error" until this thread's first failure.
const char *last_error_message() noexcept;
uint32_t last_os_error() noexcept;

}  // namespace npipe
