using System;
using System.IO;
using Npipe.Interop;

namespace Npipe;

/// <summary>The status codes of npipe.h (SPEC §4). The numbers are the ABI's.</summary>
public enum NpipeErrorCode
{
    /// <summary>NPIPE_OK: success.</summary>
    Ok = 0,
    /// <summary>NPIPE_EAGAIN: would block; wait for the matching readiness event.</summary>
    WouldBlock = -1,
    /// <summary>NPIPE_EINVAL: invalid argument (bad name, flags or options).</summary>
    InvalidArgument = -2,
    /// <summary>NPIPE_EBADF: not a live handle of the expected kind.</summary>
    BadHandle = -3,
    /// <summary>NPIPE_ENOENT: no pipe of that name; (re/de)register of an unregistered pipe.</summary>
    NotFound = -4,
    /// <summary>NPIPE_EBUSY: all instances busy; a second concurrent wait; wake set full.</summary>
    Busy = -5,
    /// <summary>NPIPE_EEXIST: name in use with FirstInstance; pipe bound to another poll.</summary>
    AlreadyExists = -6,
    /// <summary>NPIPE_EACCES: access denied.</summary>
    AccessDenied = -7,
    /// <summary>NPIPE_EPIPE: the peer is gone.</summary>
    BrokenPipe = -8,
    /// <summary>NPIPE_ENOTCONN: server instance not connected.</summary>
    NotConnected = -9,
    /// <summary>NPIPE_ETIMEDOUT: deadline passed.</summary>
    TimedOut = -10,
    /// <summary>NPIPE_ENOMEM: out of memory.</summary>
    OutOfMemory = -11,
    /// <summary>NPIPE_ENAMETOOLONG: name too long, or output buffer too small.</summary>
    NameTooLong = -12,
    /// <summary>NPIPE_EMSGSIZE: message larger than 16 MiB.</summary>
    MessageTooLarge = -13,
    /// <summary>NPIPE_ENOTSUP: not supported on this platform or in this mode.</summary>
    NotSupported = -14,
    /// <summary>NPIPE_ECANCELED: the pipe's poll was closed.</summary>
    Canceled = -15,
    /// <summary>NPIPE_EIO: any other OS failure; see <see cref="NpipeException.OsError"/>.</summary>
    IOError = -99,
    /// <summary>A negative code this binding does not know (from a newer minor version).</summary>
    Unknown = int.MinValue,
}

/// <summary>
/// A failed npipe call. <see cref="Code"/> is the status, <see cref="OsError"/> the raw errno /
/// GetLastError() behind it (0 if none) and the message is the library's specific text for the call
/// (<c>npipe_last_error_message</c>), read on the same thread right after the call.
/// </summary>
public class NpipeException : IOException
{
    /// <summary>Creates an exception for a status code.</summary>
    public NpipeException(NpipeErrorCode code, string message, int osError = 0, Exception? inner = null)
        : base(message, inner)
    {
        Code = code;
        OsError = osError;
        HResult = code == NpipeErrorCode.Unknown ? -1 : (int)code;
    }

    /// <summary>The npipe status code.</summary>
    public NpipeErrorCode Code { get; }

    /// <summary>The raw OS error behind the failure (errno on Linux, GetLastError() on Windows), 0 if none.</summary>
    public int OsError { get; }

    /// <summary>The header's name of <see cref="Code"/>, e.g. "NPIPE_ENOENT".</summary>
    public string CodeName => NpipeLibrary.ErrorName((int)Code);
}

internal static class Check
{
    internal static NpipeErrorCode ToCode(long status) => status switch
    {
        0 or -1 or -2 or -3 or -4 or -5 or -6 or -7 or -8 or -9 or -10 or -11 or -12 or -13 or -14 or -15 or -99
            => (NpipeErrorCode)(int)status,
        _ => NpipeErrorCode.Unknown,
    };

    /// <summary>Throws for a negative status; returns it otherwise. Must run on the calling thread
    /// right after the native call (the detail is thread-local).</summary>
    internal static long Status(long status, string? subject = null)
    {
        if (status < 0)
            throw Exception(status, subject);
        return status;
    }

    /// <summary>The handle a creating call gave, or its failure thrown (the invalid handle is released
    /// without a native call, so the error detail survives).</summary>
    internal static NpipePipeHandle Handle(int status, string subject, NpipePipeHandle handle)
    {
        if (status < 0)
        {
            var ex = Exception(status, subject);
            handle.Dispose();
            throw ex;
        }
        return handle;
    }

    internal static Exception Exception(long status, string? subject = null)
    {
        string detail = NativeMethods.Utf8(NativeMethods.LastErrorMessage()) ?? "";
        int os = unchecked((int)NativeMethods.LastOsError());
        NpipeErrorCode code = ToCode(status);
        string name = NativeMethods.Utf8(NativeMethods.ErrName((int)status)) ?? "NPIPE_EUNKNOWN";
        if (detail.Length == 0 || detail == "no error")
            detail = NativeMethods.Utf8(NativeMethods.StrError((int)status)) ?? "unknown error";
        string message = subject is null ? $"{detail} ({name})" : $"{subject}: {detail} ({name})";
        var npipe = new NpipeException(code, message, os);
        if (code == NpipeErrorCode.TimedOut)
            return new TimeoutException(message, npipe);
        return npipe;
    }
}
