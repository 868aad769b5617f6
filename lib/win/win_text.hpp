// UTF-8 (the API's strings) to UTF-16 (the W functions).
#pragma once
#include <cstdint>
#include <string>

namespace npipe::win {

// st::ok, or st::inval (with a message naming `what`) for invalid UTF-8.
int32_t to_wide(const std::string &utf8, std::wstring &out, const char *what);

}  // namespace npipe::win
