// npipe.dll's entry point. Its one job: a DLL unloaded while it lives (FreeLibrary) must not leave
// the fiber-local slot of lib/win/thread_reads.hpp behind, whose callback would then run code that
// is gone when a thread ends.
#include <windows.h>

#include "lib/win/thread_reads.hpp"

extern "C" BOOL WINAPI DllMain(HINSTANCE /*instance*/, DWORD reason, LPVOID reserved) {
    // reserved is null for FreeLibrary, non-null when the process is ending (nothing to undo then).
    if (reason == DLL_PROCESS_DETACH && reserved == nullptr) npipe::win::ThreadReads::unload();
    return TRUE;
}
