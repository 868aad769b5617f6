// P/Invoke declarations for every function exported by npipe.h, one-to-one, in header order.
// Source-generated (LibraryImport) and blittable: [assembly: DisableRuntimeMarshalling] is set, so
// only primitives, pointers, blittable structs, SafeHandles and UTF-8 input strings cross.
// Strings returned by the library are owned by it: they come back as IntPtr and are copied with
// Marshal.PtrToStringUTF8 (a `string` return would make the marshaller free library memory).
using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

[assembly: DisableRuntimeMarshalling]
[assembly: InternalsVisibleTo("Npipe.Tests")]
[assembly: InternalsVisibleTo("Npipe.SelfTest")]
[assembly: DefaultDllImportSearchPaths(DllImportSearchPath.AssemblyDirectory | DllImportSearchPath.SafeDirectories)]

namespace Npipe.Interop;

internal static unsafe partial class NativeMethods
{
    internal const string Lib = "npipe";

    static NativeMethods() => NativeLibraryResolver.Install();

    // ---- version -------------------------------------------------------------------------------
    [LibraryImport(Lib, EntryPoint = "npipe_version")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial uint Version();

    [LibraryImport(Lib, EntryPoint = "npipe_version_string")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial IntPtr VersionString();

    // ---- status codes ----------------------------------------------------------------------------
    [LibraryImport(Lib, EntryPoint = "npipe_strerror")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial IntPtr StrError(int status);

    [LibraryImport(Lib, EntryPoint = "npipe_err_name")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial IntPtr ErrName(int status);

    [LibraryImport(Lib, EntryPoint = "npipe_last_os_error")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial uint LastOsError();

    [LibraryImport(Lib, EntryPoint = "npipe_last_error_message")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial IntPtr LastErrorMessage();

    // ---- poll ------------------------------------------------------------------------------------
    [LibraryImport(Lib, EntryPoint = "npipe_poll_create")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial int PollCreate(out NpipePollHandle poll);

    // Raw handle: called from ReleaseHandle, where the SafeHandle can no longer be marshalled.
    [LibraryImport(Lib, EntryPoint = "npipe_poll_close")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial int PollClose(ulong poll);

    [LibraryImport(Lib, EntryPoint = "npipe_register")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial int Register(NpipePollHandle poll, NpipePipeHandle pipe, ulong token, uint interests);

    [LibraryImport(Lib, EntryPoint = "npipe_reregister")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial int Reregister(NpipePollHandle poll, NpipePipeHandle pipe, ulong token, uint interests);

    [LibraryImport(Lib, EntryPoint = "npipe_deregister")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial int Deregister(NpipePollHandle poll, NpipePipeHandle pipe);

    [LibraryImport(Lib, EntryPoint = "npipe_poll_wait")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial int PollWait(NpipePollHandle poll, NpipeEvent* events, nuint capacity, int timeoutMs);

    [LibraryImport(Lib, EntryPoint = "npipe_poll_wake")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial int PollWake(NpipePollHandle poll, ulong token);

    // ---- pipes -----------------------------------------------------------------------------------
    [LibraryImport(Lib, EntryPoint = "npipe_server_options_init")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial void ServerOptionsInit(NativeServerOptions* opts);

    [LibraryImport(Lib, EntryPoint = "npipe_client_options_init")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial void ClientOptionsInit(NativeClientOptions* opts);

    [LibraryImport(Lib, EntryPoint = "npipe_create", StringMarshalling = StringMarshalling.Utf8)]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial int Create(string name, NativeServerOptions* opts, out NpipePipeHandle pipe);

    [LibraryImport(Lib, EntryPoint = "npipe_connect")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial int Connect(NpipePipeHandle server);

    [LibraryImport(Lib, EntryPoint = "npipe_disconnect")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial int Disconnect(NpipePipeHandle server);

    [LibraryImport(Lib, EntryPoint = "npipe_take_error")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial int TakeError(NpipePipeHandle pipe);

    [LibraryImport(Lib, EntryPoint = "npipe_open", StringMarshalling = StringMarshalling.Utf8)]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial int Open(string name, NativeClientOptions* opts, out NpipePipeHandle pipe);

    [LibraryImport(Lib, EntryPoint = "npipe_from_raw_handle")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial int FromRawHandle(nint raw, uint flags, out NpipePipeHandle pipe);

    [LibraryImport(Lib, EntryPoint = "npipe_raw_handle")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial int RawHandle(NpipePipeHandle pipe, out nint raw);

    [LibraryImport(Lib, EntryPoint = "npipe_resolve_name", StringMarshalling = StringMarshalling.Utf8)]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial int ResolveName(string name, byte* buf, nuint len);

    [LibraryImport(Lib, EntryPoint = "npipe_read")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial long Read(NpipePipeHandle pipe, byte* buf, nuint len);

    [LibraryImport(Lib, EntryPoint = "npipe_write")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial long Write(NpipePipeHandle pipe, byte* buf, nuint len);

    [LibraryImport(Lib, EntryPoint = "npipe_readv")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial long ReadV(NpipePipeHandle pipe, NativeIoVec* iov, nuint iovcnt);

    [LibraryImport(Lib, EntryPoint = "npipe_writev")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial long WriteV(NpipePipeHandle pipe, NativeIoVec* iov, nuint iovcnt);

    [LibraryImport(Lib, EntryPoint = "npipe_read_msg")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial long ReadMsg(NpipePipeHandle pipe, byte* buf, nuint len, uint* msgFlags);

    [LibraryImport(Lib, EntryPoint = "npipe_flush")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial int Flush(NpipePipeHandle pipe);

    // Raw handle: called from ReleaseHandle.
    [LibraryImport(Lib, EntryPoint = "npipe_close")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial int Close(ulong pipe);

    [LibraryImport(Lib, EntryPoint = "npipe_get_info")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial int GetInfo(NpipePipeHandle pipe, NativeInfo* info);

    // ---- the listener (release 1.1) ---------------------------------------------------------------
    [LibraryImport(Lib, EntryPoint = "npipe_listener_options_init")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial void ListenerOptionsInit(NativeListenerOptions* opts);

    [LibraryImport(Lib, EntryPoint = "npipe_listen", StringMarshalling = StringMarshalling.Utf8)]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial int Listen(string name, NativeListenerOptions* opts, out NpipePipeHandle listener);

    [LibraryImport(Lib, EntryPoint = "npipe_accept")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial int Accept(NpipePipeHandle listener, out NpipePipeHandle pipe);

    [LibraryImport(Lib, EntryPoint = "npipe_wait")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial int Wait(NpipePipeHandle pipe, uint interests, int timeoutMs);

    // ---- the peer ------------------------------------------------------------------------------
    [LibraryImport(Lib, EntryPoint = "npipe_peer_identity")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial int PeerIdentity(NpipePipeHandle pipe, NativePeer* peer);

    [LibraryImport(Lib, EntryPoint = "npipe_drain")]
    [UnmanagedCallConv(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static partial int Drain(NpipePipeHandle pipe);

    internal static string? Utf8(IntPtr p) => p == IntPtr.Zero ? null : Marshal.PtrToStringUTF8(p);
}
