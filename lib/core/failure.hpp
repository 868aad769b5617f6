// A failure kept for later: the sticky read and write failures of a pipe, the failure of a
// server's wait for a client, and the first background failure that npipe_take_error hands out.
// It is recorded without touching the thread-local detail (a background failure must not
// overwrite the detail of a call that succeeds) and reported by the call that returns it.
#pragma once
#include <cstdint>
#include <string>

namespace npipe {

struct Failure {
    int32_t code = 0;  // 0: no failure
    uint32_t os_error = 0;
    std::string message;

    explicit operator bool() const { return code != 0; }
};

// printf-style constructor of a Failure (the message is formatted, not stored in the detail).
Failure failuref(int32_t code, uint32_t os_error, const char *format, ...)
#if defined(__MINGW32__)
    __attribute__((format(gnu_printf, 3, 4)))
#elif defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

// Sets this thread's detail from `f` and returns f.code.
int32_t report(const Failure &f) noexcept;

// "First background failure wins": keeps the first of several failures until it is taken.
class FirstFailure {
public:
    void note(const Failure &f) {
        if (!first_ && f) first_ = f;
    }
    bool has() const { return static_cast<bool>(first_); }
    // The failure, once: the slot is empty afterwards.
    Failure take() {
        Failure f = std::move(first_);
        first_ = Failure{};
        return f;
    }
    void clear() { first_ = Failure{}; }

private:
    Failure first_;
};

}  // namespace npipe
