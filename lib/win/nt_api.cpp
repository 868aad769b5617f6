#include "lib/win/nt_api.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>

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

struct CountedString {  // UNICODE_STRING
    USHORT Length;
    USHORT MaximumLength;
    PWSTR Buffer;
};

struct ObjectAttributes {  // OBJECT_ATTRIBUTES
    ULONG Length;
    HANDLE RootDirectory;
    CountedString *ObjectName;
    ULONG Attributes;
    PVOID SecurityDescriptor;
    PVOID SecurityQualityOfService;
};

using NtOpenFileFn = LONG(NTAPI *)(HANDLE *, ACCESS_MASK, ObjectAttributes *, IoStatusBlock *, ULONG, ULONG);
using NtFsControlFileFn = LONG(NTAPI *)(HANDLE, HANDLE, PVOID, PVOID, IoStatusBlock *, ULONG, PVOID, ULONG, PVOID,
                                        ULONG);

constexpr ULONG kFsctlPipeWait = 0x00110018;  // CTL_CODE(FILE_DEVICE_NAMED_PIPE, 6, METHOD_BUFFERED, FILE_ANY_ACCESS)
constexpr ULONG kObjCaseInsensitive = 0x40;

// FILE_PIPE_WAIT_FOR_BUFFER; the name (not NUL-terminated) runs on past the struct.
struct PipeWaitRequest {
    LARGE_INTEGER Timeout;  // relative: negative, in 100 ns units
    ULONG NameLength;       // bytes
    BOOLEAN TimeoutSpecified;
    WCHAR Name[1];
};

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
    info.read_data_available = local.ReadDataAvailable;
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

HANDLE open_pipe_root() noexcept {
    static const auto open = reinterpret_cast<NtOpenFileFn>(ntdll_export("NtOpenFile"));
    if (!open) return INVALID_HANDLE_VALUE;
    wchar_t path[] = L"\\Device\\NamedPipe\\";
    CountedString name{static_cast<USHORT>((sizeof path) - sizeof(wchar_t)), static_cast<USHORT>(sizeof path), path};
    ObjectAttributes attributes{sizeof(ObjectAttributes), nullptr, &name, kObjCaseInsensitive, nullptr, nullptr};
    IoStatusBlock iosb{};
    HANDLE root = nullptr;
    // No FILE_SYNCHRONOUS_IO_* option: the handle does asynchronous I/O and may join a port.
    const LONG status =
        open(&root, FILE_READ_ATTRIBUTES | SYNCHRONIZE, &attributes, &iosb, FILE_SHARE_READ | FILE_SHARE_WRITE, 0);
    return status < 0 || !root ? INVALID_HANDLE_VALUE : root;
}

LONG start_pipe_wait(HANDLE root, const std::wstring &name, int32_t timeout_ms, OVERLAPPED *ov,
                     std::vector<uint8_t> &buffer) noexcept {
    static const auto control = reinterpret_cast<NtFsControlFileFn>(ntdll_export("NtFsControlFile"));
    if (!control) return static_cast<LONG>(0xC0000002L);  // STATUS_NOT_IMPLEMENTED
    const size_t name_bytes = name.size() * sizeof(wchar_t);
    const size_t name_offset = offsetof(PipeWaitRequest, Name);
    buffer.assign(std::max(sizeof(PipeWaitRequest), name_offset + name_bytes), 0);
    PipeWaitRequest request{};
    request.TimeoutSpecified = timeout_ms >= 0;
    request.Timeout.QuadPart = -static_cast<LONGLONG>(timeout_ms < 0 ? 0 : timeout_ms) * 10000;
    request.NameLength = static_cast<ULONG>(name_bytes);
    std::memcpy(buffer.data(), &request, name_offset);
    std::memcpy(buffer.data() + name_offset, name.data(), name_bytes);
    // The OVERLAPPED is both the packet's context and the status block, as the Win32 functions do.
    return control(root, nullptr, nullptr, ov, reinterpret_cast<IoStatusBlock *>(ov), kFsctlPipeWait, buffer.data(),
                   static_cast<ULONG>(buffer.size()), nullptr, 0);
}

}  // namespace npipe::win
