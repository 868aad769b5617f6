#include "lib/win/nt_api.hpp"

namespace npipe::win {
namespace {

struct IoStatusBlock {
    union {
        LONG Status;
        PVOID Pointer;
    };
    ULONG_PTR Information;
};

using NtQueryInformationFileFn = LONG(NTAPI *)(HANDLE, IoStatusBlock *, PVOID, ULONG, ULONG);

constexpr ULONG kFileModeInformation = 16;
constexpr ULONG kFilePipeLocalInformation = 24;
constexpr ULONG kFileSynchronousIoAlert = 0x10;
constexpr ULONG kFileSynchronousIoNonalert = 0x20;

struct FilePipeLocalInformation {
    ULONG NamedPipeType;
    ULONG NamedPipeConfiguration;
    ULONG MaximumInstances;
    ULONG CurrentInstances;
    ULONG InboundQuota;
    ULONG ReadDataAvailable;
    ULONG OutboundQuota;
    ULONG WriteQuotaAvailable;
    ULONG NamedPipeState;
    ULONG NamedPipeEnd;
};

NtQueryInformationFileFn query_fn() noexcept {
    static const auto fn = reinterpret_cast<NtQueryInformationFileFn>(ntdll_export("NtQueryInformationFile"));
    return fn;
}

}  // namespace

void *ntdll_export(const char *name) noexcept {
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    return ntdll ? reinterpret_cast<void *>(GetProcAddress(ntdll, name)) : nullptr;
}

bool query_pipe_local_info(HANDLE pipe, PipeLocalInfo &info) noexcept {
    auto fn = query_fn();
    if (!fn) return false;
    IoStatusBlock iosb{};
    FilePipeLocalInformation local{};
    if (fn(pipe, &iosb, &local, sizeof local, kFilePipeLocalInformation) < 0) return false;
    info.configuration = local.NamedPipeConfiguration;
    info.end = local.NamedPipeEnd;
    info.inbound_quota = local.InboundQuota;
    info.outbound_quota = local.OutboundQuota;
    info.write_quota_available = local.WriteQuotaAvailable;
    return true;
}

bool running_on_wine() noexcept {
    static const bool wine = ntdll_export("wine_get_version") != nullptr;
    return wine;
}

uint64_t query_peer_unread(HANDLE pipe) noexcept {
    // Wine 8 always reports WriteQuotaAvailable = 0, which would read as "the queue is full".
    if (running_on_wine()) return 0;
    PipeLocalInfo info;
    if (!query_pipe_local_info(pipe, info)) return 0;
    // The quotas are the server's view: a server writes into the outbound queue, a client into
    // the inbound one. WriteQuotaAvailable is always this end's own write queue.
    const ULONG quota = info.end == 1 ? info.outbound_quota : info.inbound_quota;
    return quota > info.write_quota_available ? quota - info.write_quota_available : 0;
}

bool is_overlapped_handle(HANDLE handle) noexcept {
    auto fn = query_fn();
    if (!fn) return true;
    IoStatusBlock iosb{};
    ULONG mode = 0;
    if (fn(handle, &iosb, &mode, sizeof mode, kFileModeInformation) < 0) return true;
    return (mode & (kFileSynchronousIoAlert | kFileSynchronousIoNonalert)) == 0;
}

}  // namespace npipe::win
