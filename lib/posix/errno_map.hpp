// The one place where errno values become npipe status codes (Linux backend). Everything in
// lib/posix reports OS failures through fail_errno(), so the caller gets the right NPIPE_E* code,
// a message naming the operation, and the raw errno in npipe_last_os_error().
#pragma once
#include <cstdint>

#include "lib/core/failure.hpp"

namespace npipe::posix {

// errno -> NPIPE_E* (st::). Unknown values map to st::io.
int32_t status_from_errno(int err) noexcept;

// Records "<what>: <strerror(err)>" with `err` as the OS error and returns the mapped status.
int32_t fail_errno(int err, const char *what) noexcept;

// As fail_errno, but with an explicit status (when the context decides the code).
int32_t fail_errno_as(int32_t status, int err, const char *what) noexcept;

// "<what>: <strerror(err)>" as a Failure with the mapped status, or `status` when it is given
// (< 0: the context decides the code).
Failure errno_failure(int err, const char *what, int32_t status = 1);

}  // namespace npipe::posix
