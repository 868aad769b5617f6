using System;
using System.Buffers;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using Npipe.Interop;

namespace Npipe;

/// <summary>
/// One pipe end (<c>npipe_t</c>): a server instance (<see cref="NpipeServer"/>), a client
/// (<see cref="NpipeClient"/>) or an adopted OS handle. All I/O is non-blocking: the <c>Try*</c>
/// methods return false when the call would block; wait for the matching event of the
/// <see cref="NpipePoll"/> the pipe is registered with (a pipe makes no progress before it is
/// registered). For async/await use <see cref="NpipeStream"/>.
/// </summary>
public class NpipePipe : IDisposable
{
    private readonly NpipePipeHandle _handle;

    internal NpipePipe(NpipePipeHandle handle) => _handle = handle;

    /// <summary>Adopts an OS handle (Windows: an overlapped pipe handle; Linux: a connected AF_UNIX
    /// stream socket). On success the library owns it; on failure the caller keeps it.</summary>
    public static NpipePipe FromRawHandle(nint raw, bool messageMode = false)
    {
        int rc = NativeMethods.FromRawHandle(raw, messageMode ? NativeFlags.Message : 0, out NpipePipeHandle h);
        if (rc < 0)
        {
            var ex = Check.Exception(rc, "npipe_from_raw_handle");
            h.Dispose();
            throw ex;
        }
        return new NpipePipe(h);
    }

    /// <summary>The owned native handle.</summary>
    public NpipePipeHandle SafeHandle => _handle;

    /// <summary>True once disposed.</summary>
    public bool IsDisposed => _handle.IsClosed;

    /// <summary>The OS handle, lent (ownership stays with the library; do not close it).</summary>
    public nint RawHandle
    {
        get
        {
            Check.Status(NativeMethods.RawHandle(Handle, out nint raw), "npipe_raw_handle");
            return raw;
        }
    }

    /// <summary>Copies buffered bytes into <paramref name="buffer"/>. Returns false when nothing is there
    /// yet (NPIPE_EAGAIN); true with <paramref name="bytesRead"/> 0 at the end of the connection (or for an
    /// empty buffer). Message pipes return at most one message and skip empty messages.</summary>
    public unsafe bool TryRead(Span<byte> buffer, out int bytesRead)
    {
        long rc;
        fixed (byte* p = buffer)
            rc = NativeMethods.Read(Handle, p, (nuint)buffer.Length);
        return Result(rc, "npipe_read", out bytesRead);
    }

    /// <summary>Reads at most one message (or up to <paramref name="buffer"/>'s length of it).
    /// <paramref name="flags"/> tells whether more of it follows or it was empty; 0 bytes without flags is EOF.</summary>
    public unsafe bool TryReadMessage(Span<byte> buffer, out int bytesRead, out NpipeMessageFlags flags)
    {
        long rc;
        uint f = 0;
        fixed (byte* p = buffer)
            rc = NativeMethods.ReadMsg(Handle, p, (nuint)buffer.Length, &f);
        flags = (NpipeMessageFlags)f;
        return Result(rc, "npipe_read_msg", out bytesRead);
    }

    /// <summary>Copies bytes into the internal write buffer. Returns false when it is full (NPIPE_EAGAIN);
    /// else <paramref name="bytesWritten"/> may be fewer than asked (byte mode). Message mode takes all
    /// or nothing; an empty span sends an empty message. A gone peer throws (<see cref="NpipeErrorCode.BrokenPipe"/>).</summary>
    public unsafe bool TryWrite(ReadOnlySpan<byte> buffer, out int bytesWritten)
    {
        long rc;
        fixed (byte* p = buffer)
            rc = NativeMethods.Write(Handle, p, (nuint)buffer.Length);
        return Result(rc, "npipe_write", out bytesWritten);
    }

    /// <summary><c>npipe_readv</c>: reads into all <paramref name="buffers"/> in order.</summary>
    public bool TryRead(IReadOnlyList<Memory<byte>> buffers, out long bytesRead) =>
        Vector(buffers, write: false, out bytesRead);

    /// <summary><c>npipe_writev</c>: writes all <paramref name="buffers"/> in order (one message in message mode).</summary>
    public bool TryWrite(IReadOnlyList<ReadOnlyMemory<byte>> buffers, out long bytesWritten)
    {
        ArgumentNullException.ThrowIfNull(buffers);
        var list = new Memory<byte>[buffers.Count];
        for (int i = 0; i < list.Length; i++)
            list[i] = MemoryMarshal.AsMemory(buffers[i]);
        return Vector(list, write: true, out bytesWritten);
    }

    /// <summary>True when every accepted byte has been handed to the OS and completed; false otherwise
    /// (a Writable event follows when done).</summary>
    public bool TryFlush() => Done(NativeMethods.Flush(Handle), "npipe_flush");

    /// <summary>True once the peer has read every byte accepted so far (<c>npipe_drain</c>), not just the OS
    /// (<see cref="TryFlush"/>); false while it has not (a Writable event follows when it has). Throws
    /// <see cref="NpipeErrorCode.BrokenPipe"/> when the peer left before reading everything. Under Wine a
    /// pipe counts as drained once flushed (Wine reports no write quota).</summary>
    public bool TryDrain() => Done(NativeMethods.Drain(Handle), "npipe_drain");

    /// <summary>Who is on the other end (<c>npipe_peer_identity</c>): a server learns its client, a client
    /// its server. Linux: SO_PEERCRED. Windows: the client's token user (known only once the client has
    /// sent something: <see cref="NpipeErrorCode.WouldBlock"/> before), or the owner of the server's pipe.
    /// A Windows client that allows only anonymous impersonation gives <see cref="NpipeErrorCode.AccessDenied"/>.</summary>
    public unsafe NpipePeerIdentity PeerIdentity
    {
        get
        {
            NativePeer peer = default;
            peer.Size = (uint)sizeof(NativePeer);
            Check.Status(NativeMethods.PeerIdentity(Handle, &peer), "npipe_peer_identity");
            string sid = Marshal.PtrToStringUTF8((IntPtr)peer.Sid) ?? "";
            return new NpipePeerIdentity(
                peer.Pid == 0 ? null : peer.Pid,
                peer.Uid == uint.MaxValue ? null : peer.Uid,
                peer.Gid == uint.MaxValue ? null : peer.Gid,
                sid.Length == 0 ? null : sid,
                (peer.Flags & NativeFlags.PeerSameUser) != 0);
        }
    }

    /// <summary>Returns the first background failure once and clears it (<see cref="NpipeErrorCode.Ok"/> if none).</summary>
    public NpipeErrorCode TakeError() => TakeErrorOf(Handle);

    internal static NpipeErrorCode TakeErrorOf(NpipePipeHandle handle)
    {
        int rc = NativeMethods.TakeError(handle);
        return rc == NativeFlags.EAGAIN ? NpipeErrorCode.WouldBlock : Check.ToCode(rc);
    }

    /// <summary>A snapshot of the pipe's state and counters (<c>npipe_get_info</c>).</summary>
    public NpipeInfo GetInfo() => InfoOf(Handle);

    internal static unsafe NpipeInfo InfoOf(NpipePipeHandle handle)
    {
        NativeInfo info = default;
        info.Size = (uint)sizeof(NativeInfo);
        Check.Status(NativeMethods.GetInfo(handle, &info), "npipe_get_info");
        uint f = info.Flags;
        return new NpipeInfo(
            (f & NativeFlags.InfoServer) != 0, (f & NativeFlags.InfoConnected) != 0, (f & NativeFlags.Message) != 0,
            (f & NativeFlags.InboundOnly) != 0, (f & NativeFlags.OutboundOnly) != 0, f,
            info.InBufferSize, info.OutBufferSize, info.MaxInstances, info.PeerPid,
            info.BytesRead, info.BytesWritten, info.WritePending, info.ReadAvailable, info.PeerUnread)
        {
            IsListener = (f & NativeFlags.InfoListener) != 0,
            WaitingInstances = info.WaitingInstances,
            PendingAccepts = info.PendingAccepts,
        };
    }

    /// <summary>Closes the pipe (<c>npipe_close</c>): the handle is invalid at once, accepted bytes keep
    /// draining for at most the linger time while the owning poll is waited on.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Closes the native pipe now, even while another thread is inside a call on it (which a
    /// SafeHandle would defer until that call returns): a blocked <c>npipe_wait</c> ends with
    /// NPIPE_EBADF. Handles are generation-counted, so the id can never reach another pipe.</summary>
    internal void CloseNow()
    {
        lock (_handle)
        {
            if (_handle.IsClosed || _handle.IsInvalid)
                return;
            NativeMethods.Close(_handle.Value);
            _handle.SetHandleAsInvalid();
        }
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases the handle.</summary>
    protected virtual void Dispose(bool disposing) => _handle.Dispose();

    internal NpipePipeHandle Handle
    {
        get
        {
            ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
            return _handle;
        }
    }

    // A call that is done (NPIPE_OK, true) or not yet (NPIPE_EAGAIN, false); anything else throws.
    internal static bool Done(int rc, string op)
    {
        if (rc == NativeFlags.EAGAIN)
            return false;
        Check.Status(rc, op);
        return true;
    }

    private static bool Result(long rc, string op, out int count)
    {
        if (rc == NativeFlags.EAGAIN)
        {
            count = 0;
            return false;
        }
        count = (int)Check.Status(rc, op);
        return true;
    }

    private unsafe bool Vector(IReadOnlyList<Memory<byte>> buffers, bool write, out long count)
    {
        ArgumentNullException.ThrowIfNull(buffers);
        var pins = new MemoryHandle[buffers.Count];
        var iov = new NativeIoVec[buffers.Count];
        try
        {
            for (int i = 0; i < iov.Length; i++)
            {
                pins[i] = buffers[i].Pin();
                iov[i].Base = pins[i].Pointer;
                iov[i].Len = (nuint)buffers[i].Length;
            }
            long rc;
            fixed (NativeIoVec* v = iov)
                rc = write ? NativeMethods.WriteV(Handle, v, (nuint)iov.Length) : NativeMethods.ReadV(Handle, v, (nuint)iov.Length);
            if (rc == NativeFlags.EAGAIN)
            {
                count = 0;
                return false;
            }
            count = Check.Status(rc, write ? "npipe_writev" : "npipe_readv");
            return true;
        }
        finally
        {
            foreach (var pin in pins)
                pin.Dispose();
        }
    }
}

/// <summary>A server instance (<c>npipe_create</c>). More instances of a name are more instances of this
/// class (without <see cref="NpipeInstanceOptions.FirstInstance"/>).</summary>
public sealed class NpipeServer : NpipePipe
{
    /// <summary>Creates one idle server instance of <paramref name="name"/> ("foo" or <c>\\.\pipe\foo</c>).</summary>
    public NpipeServer(string name, NpipeServerOptions? options = null) : base(CreateHandle(name, options))
    {
        Name = name;
    }

    // An accepted pipe of a listener: connected already.
    internal NpipeServer(NpipePipeHandle handle, string name) : base(handle) => Name = name;

    /// <summary>The name given at creation.</summary>
    public string Name { get; }

    /// <summary>Starts (or checks) waiting for a client: true once connected, false while waiting (a
    /// Connected event follows, then call again or <see cref="NpipePipe.TakeError"/>). Throws the failure of
    /// the last attempt.</summary>
    public bool TryConnect() => Done(NativeMethods.Connect(Handle), "npipe_connect");

    /// <summary>Drops the client (unread data is discarded); the instance can connect again.</summary>
    public void Disconnect() => Check.Status(NativeMethods.Disconnect(Handle), "npipe_disconnect");

    private static unsafe NpipePipeHandle CreateHandle(string name, NpipeServerOptions? options)
    {
        ArgumentNullException.ThrowIfNull(name);
        options ??= new NpipeServerOptions();
        NativeServerOptions o;
        NativeMethods.ServerOptionsInit(&o);
        o.Flags = options.Flags;
        o.MaxInstances = checked((uint)options.MaxInstances);
        o.InBufferSize = checked((uint)options.InBufferSize);
        o.OutBufferSize = checked((uint)options.OutBufferSize);
        o.LingerMs = options.LingerMilliseconds;
        using var sddl = new NativeUtf8(options.Sddl);
        o.Sddl = sddl.Pointer;
        return Check.Handle(NativeMethods.Create(name, &o, out NpipePipeHandle h), name, h);
    }
}

/// <summary>A client end (<c>npipe_open</c>).</summary>
public sealed class NpipeClient : NpipePipe
{
    private NpipeClient(NpipePipeHandle handle, string name) : base(handle) => Name = name;

    /// <summary>The name given at opening.</summary>
    public string Name { get; }

    /// <summary>Opens a client end, retrying a busy or absent server until the options' timeout (not
    /// set: fail at once). This blocks the calling thread for at most that long; see
    /// <see cref="StartOpen"/> and <see cref="NpipeStream.ConnectAsync(string, NpipeClientOptions?, NpipeReactor?, System.Threading.CancellationToken)"/> for the forms that do not.</summary>
    public static NpipeClient Open(string name, NpipeClientOptions? options = null)
    {
        options ??= new NpipeClientOptions();
        return OpenWith(name, options, options.Flags, options.TimeoutMs(0));
    }

    /// <summary>Starts opening a client end without waiting (<c>NPIPE_NONBLOCK_OPEN</c>): only a bad name or
    /// option throws here. The client is connecting; register it with an <see cref="NpipePoll"/>, which
    /// drives the attempts (no thread waits, a busy Windows pipe is awaited asynchronously) until the
    /// options' timeout, counted from this call (not set: until the client is disposed). The pipe then
    /// reports <see cref="NpipeEventFlags.Connected"/>, and <see cref="NpipePipe.TakeError"/> tells
    /// whether it failed. Disposing it while it connects cancels the attempt.</summary>
    public static NpipeClient StartOpen(string name, NpipeClientOptions? options = null)
    {
        options ??= new NpipeClientOptions();
        return OpenWith(name, options, options.Flags | NativeFlags.NonblockOpen, options.TimeoutMs(-1));
    }

    /// <summary>For a client from <see cref="StartOpen"/>: false while it is connecting, true once
    /// connected; throws why the open failed. Nothing has been written yet, so npipe_flush answers
    /// exactly that: EAGAIN while connecting, OK when connected, else the open's failure.</summary>
    internal bool TryFinishOpen()
    {
        int rc = NativeMethods.Flush(Handle);
        if (rc == NativeFlags.EAGAIN)
            return false;
        Check.Status(rc, Name);
        return true;
    }

    private static unsafe NpipeClient OpenWith(string name, NpipeClientOptions options, uint flags, int timeoutMs)
    {
        ArgumentNullException.ThrowIfNull(name);
        NativeClientOptions o;
        NativeMethods.ClientOptionsInit(&o);
        o.Flags = flags;
        o.TimeoutMs = timeoutMs;
        o.LingerMs = options.LingerMilliseconds;
        int rc = NativeMethods.Open(name, &o, out NpipePipeHandle h);
        return new NpipeClient(Check.Handle(rc, name, h), name);
    }
}
