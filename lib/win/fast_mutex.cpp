// FastMutex on Windows: an SRW lock (see lib/core/fast_mutex.hpp for why not std::mutex).
#include "lib/core/fast_mutex.hpp"

#include <windows.h>

namespace npipe {

static_assert(sizeof(SRWLOCK) == sizeof(void *), "FastMutex keeps an SRWLOCK in one pointer");

namespace {
PSRWLOCK srw(void *&state) { return reinterpret_cast<PSRWLOCK>(&state); }
}  // namespace

void FastMutex::lock() { AcquireSRWLockExclusive(srw(srw_)); }
bool FastMutex::try_lock() { return TryAcquireSRWLockExclusive(srw(srw_)) != 0; }
void FastMutex::unlock() { ReleaseSRWLockExclusive(srw(srw_)); }

}  // namespace npipe
