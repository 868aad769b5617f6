// A point in time on the steady clock that may also be "never", with the one rounding rule every
// wait uses: milliseconds left, rounded up, so a wait never ends a fraction of a millisecond early.
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdint>

namespace npipe {

class Deadline {
public:
    using Clock = std::chrono::steady_clock;

    static Deadline never() { return Deadline(Clock::time_point::max()); }
    static Deadline at(Clock::time_point when) { return Deadline(when); }
    // timeout_ms < 0: never.
    static Deadline after_ms(int64_t timeout_ms) {
        if (timeout_ms < 0) return never();
        return Deadline(Clock::now() + std::chrono::milliseconds(timeout_ms));
    }

    bool is_never() const { return when_ == Clock::time_point::max(); }
    bool passed() const { return !is_never() && Clock::now() >= when_; }
    Clock::time_point when() const { return when_; }

    // Milliseconds left, rounded up: -1 for never, 0 once passed, at most INT32_MAX.
    int32_t remaining_ms() const {
        if (is_never()) return -1;
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(when_ - Clock::now()).count();
        return static_cast<int32_t>(std::clamp<decltype(left)>(left, 0, INT32_MAX));
    }
    // The nearer of the two (never counts as the farthest).
    static Deadline earlier(Deadline a, Deadline b) { return a.when_ <= b.when_ ? a : b; }
    // A timeout in milliseconds (-1 = forever) bounded by this deadline.
    int32_t bound(int32_t timeout_ms) const {
        const int32_t left = remaining_ms();
        if (left < 0) return timeout_ms;
        return timeout_ms < 0 ? left : std::min(timeout_ms, left);
    }

private:
    explicit Deadline(Clock::time_point when) : when_(when) {}
    Clock::time_point when_;
};

}  // namespace npipe
