using System;
using System.Runtime.InteropServices;
using Npipe.Interop;

namespace Npipe;

/// <summary>What a registration asks to be told about (<c>NPIPE_READABLE</c>, <c>NPIPE_WRITABLE</c>,
/// <c>NPIPE_LEVEL</c>).</summary>
[Flags]
public enum NpipeInterest : uint
{
    /// <summary>NPIPE_READABLE.</summary>
    Readable = NativeFlags.Readable,
    /// <summary>NPIPE_WRITABLE.</summary>
    Writable = NativeFlags.Writable,
    /// <summary>Both directions.</summary>
    ReadWrite = Readable | Writable,
    /// <summary>NPIPE_LEVEL: level-triggered instead of edge-triggered.</summary>
    Level = NativeFlags.Level,
}

/// <summary>The flags of one <see cref="NpipeEvent"/>.</summary>
[Flags]
public enum NpipeEventFlags : uint
{
    /// <summary>No flag.</summary>
    None = 0,
    /// <summary>NPIPE_READABLE: read until <c>TryRead</c> returns false.</summary>
    Readable = NativeFlags.Readable,
    /// <summary>NPIPE_WRITABLE: room to write, or a flush finished.</summary>
    Writable = NativeFlags.Writable,
    /// <summary>NPIPE_ERROR: a background operation failed; see <see cref="NpipePipe.TakeError"/>.</summary>
    Error = NativeFlags.Error,
    /// <summary>NPIPE_READ_CLOSED: the peer will send nothing more.</summary>
    ReadClosed = NativeFlags.ReadClosed,
    /// <summary>NPIPE_WRITE_CLOSED: writes can no longer reach the peer.</summary>
    WriteClosed = NativeFlags.WriteClosed,
    /// <summary>NPIPE_WAKE: from <see cref="NpipePoll.Wake"/>.</summary>
    Wake = NativeFlags.Wake,
    /// <summary>NPIPE_CONNECTED: a server's connect finished (check <see cref="NpipePipe.TakeError"/>).</summary>
    Connected = NativeFlags.Connected,
}

/// <summary>One readiness event: the registration's token and all the flags of that pipe
/// (layout-identical to <c>npipe_event_t</c>, 16 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly struct NpipeEvent
{
    private readonly ulong _token;
    private readonly NpipeEventFlags _flags;
    private readonly uint _reserved;

    /// <summary>Creates an event (for tests and custom dispatch).</summary>
    public NpipeEvent(ulong token, NpipeEventFlags flags)
    {
        _token = token;
        _flags = flags;
        _reserved = 0;
    }

    /// <summary>The token given at (re)registration, or to <see cref="NpipePoll.Wake"/>.</summary>
    public ulong Token => _token;

    /// <summary>The event flags.</summary>
    public NpipeEventFlags Flags => _flags;

    /// <inheritdoc/>
    public override string ToString() => $"{{token {_token}, {_flags}}}";
}

/// <summary>
/// A reactor (<c>npipe_poll_t</c>): register pipes, then <see cref="Wait"/> for readiness, in the
/// manner of Rust mio. Only one thread may wait at a time. A pipe is bound for life to the first
/// poll it is registered with.
/// </summary>
public sealed class NpipePoll : IDisposable
{
    private readonly NpipePollHandle _handle;

    /// <summary>Creates a poll (<c>npipe_poll_create</c>).</summary>
    public NpipePoll()
    {
        int rc = NativeMethods.PollCreate(out NpipePollHandle handle);
        if (rc < 0)
        {
            handle.Dispose();
            throw Check.Exception(rc, "npipe_poll_create");
        }
        _handle = handle;
    }

    /// <summary>The owned native handle.</summary>
    public NpipePollHandle SafeHandle => _handle;

    /// <summary>True once disposed.</summary>
    public bool IsDisposed => _handle.IsClosed;

    /// <summary>Registers <paramref name="pipe"/> with <paramref name="token"/> and <paramref name="interests"/>;
    /// the current state is re-evaluated (buffered data gives an immediate Readable event).</summary>
    public void Register(NpipePipe pipe, ulong token, NpipeInterest interests)
    {
        ArgumentNullException.ThrowIfNull(pipe);
        Check.Status(NativeMethods.Register(Handle, pipe.Handle, token, (uint)interests), "npipe_register");
    }

    /// <summary>Changes token and interests of a registered pipe.</summary>
    public void Reregister(NpipePipe pipe, ulong token, NpipeInterest interests)
    {
        ArgumentNullException.ThrowIfNull(pipe);
        Check.Status(NativeMethods.Reregister(Handle, pipe.Handle, token, (uint)interests), "npipe_reregister");
    }

    /// <summary>Removes the registration: no later <see cref="Wait"/> reports its token.</summary>
    public void Deregister(NpipePipe pipe)
    {
        ArgumentNullException.ThrowIfNull(pipe);
        Check.Status(NativeMethods.Deregister(Handle, pipe.Handle), "npipe_deregister");
    }

    /// <summary>
    /// Waits for events and fills <paramref name="events"/>; returns how many (0 on timeout).
    /// <paramref name="timeout"/> null or negative waits forever; <see cref="TimeSpan.Zero"/> returns at once.
    /// </summary>
    public unsafe int Wait(Span<NpipeEvent> events, TimeSpan? timeout)
    {
        if (events.IsEmpty)
            throw new ArgumentException("at least one event slot is needed", nameof(events));
        int ms = ToMilliseconds(timeout);
        fixed (NpipeEvent* p = events)
            return (int)Check.Status(NativeMethods.PollWait(Handle, p, (nuint)events.Length, ms), "npipe_poll_wait");
    }

    /// <summary>Makes the current or next <see cref="Wait"/> return <c>{token, Wake}</c> (thread-safe, coalescing).</summary>
    public void Wake(ulong token) =>
        Check.Status(NativeMethods.PollWake(Handle, token), "npipe_poll_wake");

    /// <summary>Closes the poll (<c>npipe_poll_close</c>): its pipes make no more progress.</summary>
    public void Dispose() => _handle.Dispose();

    internal NpipePollHandle Handle
    {
        get
        {
            ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
            return _handle;
        }
    }

    internal static int ToMilliseconds(TimeSpan? timeout)
    {
        if (timeout is not TimeSpan t || t < TimeSpan.Zero)
            return -1;
        double ms = Math.Ceiling(t.TotalMilliseconds);
        return ms >= int.MaxValue ? int.MaxValue : (int)ms;
    }
}
