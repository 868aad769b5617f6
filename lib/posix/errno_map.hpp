// The one place where errno values become npipe status codes (Linux backend). Everything in
// lib/posix reports OS failures through fail_errno(), so the caller gets the right NPIPE_E* code,
// a message naming the operation, and the raw errno in npipe_last_os_error().
#pragma once
#include <cstdint>

namespace npipe::posix {

// errno -> NPIPE_E* (st::). Unknown values map to st::io.
int32_t status_from_errno(int err) noexcept;

// Records "<what>: <strerror(err)>" with `err` as the OS error and returns the mapped status.
int32_t fail_errno(int err, const char *what) noexcept;

// As fail_errno, but with an explicit status (when the context decides the code).
int32_t fail_errno_as(int32_t status, int err, const char *what) noexcept;

}  // namespace npipe::posix

#include <string>

namespace npipe::posix {

// A failure kept for later (sticky read/write errors, npipe_take_error): recorded without touching
// the thread-local detail (a background failure must not overwrite the detail of a call that
// succeeds), reported with report() by the call that returns it.
struct Failure {
    int32_t code = 0;
    uint32_t os_error = 0;
    std::string message;
};

// "<what>: <strerror(err)>" as a Failure with the mapped (or the given) status.
Failure errno_failure(int err, const char *what, int32_t status = 1);
// Sets this thread's detail from `f` and returns f.code.
int32_t report(const Failure &f) noexcept;

}  // namespace npipe::posix
