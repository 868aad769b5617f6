#include "lib/win/win_text.hpp"

#include <windows.h>

#include "lib/core/status.hpp"
#include "lib/win/win_error.hpp"

namespace npipe::win {

int32_t to_wide(const std::string &utf8, std::wstring &out, const char *what) {
    out.clear();
    if (utf8.empty()) return st::ok;
    const int n =
        MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, utf8.data(), static_cast<int>(utf8.size()), nullptr, 0);
    if (n <= 0) return fail_win32_as(st::inval, GetLastError(), what);
    out.resize(static_cast<size_t>(n));
    MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, utf8.data(), static_cast<int>(utf8.size()), out.data(), n);
    return st::ok;
}

}  // namespace npipe::win
