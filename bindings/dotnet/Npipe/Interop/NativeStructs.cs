// Blittable mirrors of the header's structs; sizes are checked once at load (NativeLibraryResolver).
using System;
using System.Runtime.InteropServices;

namespace Npipe.Interop;

[StructLayout(LayoutKind.Sequential)]
internal struct NativeServerOptions
{
    public uint Size;
    public uint Flags;
    public uint MaxInstances;
    public uint InBufferSize;
    public uint OutBufferSize;
    public int LingerMs;
    public IntPtr Sddl; // const char *, UTF-8
}

[StructLayout(LayoutKind.Sequential)]
internal struct NativeClientOptions
{
    public uint Size;
    public uint Flags;
    public int TimeoutMs;
    public int LingerMs;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct NativeIoVec
{
    public void* Base;
    public nuint Len;
}

[StructLayout(LayoutKind.Sequential)]
internal struct NativeInfo
{
    public uint Size;
    public uint Flags;
    public uint InBufferSize;
    public uint OutBufferSize;
    public uint MaxInstances;
    public uint Reserved;
    public ulong PeerPid;
    public ulong BytesRead;
    public ulong BytesWritten;
    public ulong WritePending;
    public ulong ReadAvailable;
    public ulong PeerUnread;
    public uint WaitingInstances; // release 1.1 (a 1.0 library fills the first 72 bytes only)
    public uint PendingAccepts;
}

[StructLayout(LayoutKind.Sequential)]
internal struct NativeListenerOptions
{
    public uint Size;
    public uint Flags;
    public uint InBufferSize;
    public uint OutBufferSize;
    public int LingerMs;
    public uint SpareInstances;
    public uint MaxPending;
    public uint Reserved;
    public IntPtr Sddl; // const char *, UTF-8
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct NativePeer
{
    public uint Size;
    public uint Flags;
    public ulong Pid;
    public uint Uid;
    public uint Gid;
    public fixed byte Sid[192]; // NUL-terminated
}

internal static class NativeFlags
{
    // Status codes (npipe.h; the ABI).
    public const int EAGAIN = -1;

    // Event / interest bits.
    public const uint Readable = 0x01, Writable = 0x02, Error = 0x04, ReadClosed = 0x08, WriteClosed = 0x10,
        Wake = 0x20, Connected = 0x40, Level = 0x100;

    // Creation flags.
    public const uint FirstInstance = 0x01, Message = 0x02, InboundOnly = 0x04, OutboundOnly = 0x08,
        AllowRemote = 0x10, CurrentUserOnly = 0x20, NonblockOpen = 0x40;

    public const uint MsgPartial = 0x1, MsgEmpty = 0x2;
    public const uint InfoServer = 0x10000, InfoConnected = 0x20000, InfoListener = 0x40000;
    public const uint PeerSameUser = 0x1;
}

/// <summary>A UTF-8 copy of an optional string in native memory, for the option structs' <c>const char *</c>.</summary>
internal readonly struct NativeUtf8 : IDisposable
{
    public NativeUtf8(string? value) => Pointer = value is null ? IntPtr.Zero : Marshal.StringToCoTaskMemUTF8(value);

    public IntPtr Pointer { get; }

    public void Dispose()
    {
        if (Pointer != IntPtr.Zero)
            Marshal.FreeCoTaskMem(Pointer);
    }
}
