// The one owner of a Win32 HANDLE in lib/win: closed at scope exit unless released. Both "no
// handle" values (NULL, which OpenProcess and friends return, and INVALID_HANDLE_VALUE, which
// CreateFileW and CreateNamedPipeW return) count as empty.
#pragma once
#include <windows.h>

namespace npipe::win {

class UniqueHandle {
public:
    UniqueHandle() = default;
    explicit UniqueHandle(HANDLE h) : h_(h) {}
    ~UniqueHandle() { reset(); }
    UniqueHandle(const UniqueHandle &) = delete;
    UniqueHandle &operator=(const UniqueHandle &) = delete;

    HANDLE get() const { return h_; }
    bool valid() const { return h_ && h_ != INVALID_HANDLE_VALUE; }
    // For APIs that return a handle through a pointer (OpenProcessToken, ...).
    HANDLE *put() {
        reset();
        return &h_;
    }
    void reset(HANDLE h = nullptr) {
        if (valid()) CloseHandle(h_);
        h_ = h;
    }
    HANDLE release() {
        HANDLE h = h_;
        h_ = nullptr;
        return h;
    }

private:
    HANDLE h_ = nullptr;
};

}  // namespace npipe::win
