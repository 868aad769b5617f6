using System;
using System.Collections.Generic;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;
using Npipe.Interop;

namespace Npipe;

/// <summary>
/// A listener of a pipe name (<c>npipe_listen</c> / <c>npipe_accept</c>, SPEC §7.1): clients may open the
/// name as soon as it is constructed, and <see cref="AcceptAsync"/> hands out their connected
/// <see cref="NpipeStream"/>s. No client sees "busy" because the server was busy: on Windows the
/// library keeps <see cref="NpipeListenerOptions.SpareInstances"/> instances waiting and replaces a
/// connected one as soon as the OS reports it (growing the pool during a burst); on Linux the name's
/// listening socket is the pool and the library accepts connections as they come, up to
/// <see cref="NpipeListenerOptions.MaxPending"/> not yet taken.
/// <para>The listener is registered with a reactor (default: one of the shared ones) and so are
/// the streams it returns (the library allows an accepted pipe only on its listener's poll). No thread
/// is blocked while waiting for a client.</para>
/// <para>Dispose: returns at once and never hangs. Pending <see cref="AcceptAsync"/> calls end with
/// <see cref="ObjectDisposedException"/>, later calls throw it, and <see cref="AcceptAllAsync"/> ends its
/// enumeration. Clients not accepted yet see the end of the connection; streams already accepted are
/// not affected. Cancelling an accept's token ends that accept with <see cref="OperationCanceledException"/>
/// and loses no client (a pipe is taken from the library only when it is returned).</para>
/// </summary>
public sealed class NpipeListener : IDisposable
{
    private readonly NpipePipeHandle _handle;
    private readonly NpipeReactor _reactor;
    private readonly Registration _registration;
    private int _disposed;

    /// <summary>Creates the listener; the name exists from here on (with
    /// <see cref="NpipeInstanceOptions.FirstInstance"/>, an existing name throws
    /// <see cref="NpipeErrorCode.AlreadyExists"/>).</summary>
    public NpipeListener(string name, NpipeListenerOptions? options = null, NpipeReactor? reactor = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        Name = name;
        Options = options ?? new NpipeListenerOptions();
        _reactor = reactor ?? NpipeReactor.NextShared();
        _handle = Listen(name, Options);
        try
        {
            _registration = _reactor.Register(_handle, NpipeInterest.Readable);
        }
        catch
        {
            _handle.Dispose();
            throw;
        }
    }

    /// <summary>The name given at creation.</summary>
    public string Name { get; }

    /// <summary>The options the listener was created with.</summary>
    public NpipeListenerOptions Options { get; }

    /// <summary>True once disposed.</summary>
    public bool IsDisposed => _disposed != 0;

    /// <summary>The native handle (a listener <c>npipe_t</c>).</summary>
    public NpipePipeHandle SafeHandle => _handle;

    /// <summary>A snapshot of <c>npipe_get_info</c>: <see cref="NpipeInfo.IsListener"/>,
    /// <see cref="NpipeInfo.WaitingInstances"/>, <see cref="NpipeInfo.PendingAccepts"/>.</summary>
    public NpipeInfo GetInfo() => NpipePipe.InfoOf(Handle);

    /// <summary>Returns the listener's first background failure once (a failure to create an instance,
    /// which the library retries with backoff) and clears it; <see cref="NpipeErrorCode.Ok"/> if none.</summary>
    public NpipeErrorCode TakeError()
    {
        int rc = NativeMethods.TakeError(Handle);
        return rc == NativeFlags.EAGAIN ? NpipeErrorCode.WouldBlock : Check.ToCode(rc);
    }

    /// <summary>Takes a connected client if one waits (no waiting): the stream, or null.</summary>
    public NpipeStream? TryAccept()
    {
        int rc = NativeMethods.Accept(Handle, out NpipePipeHandle pipe);
        if (rc == NativeFlags.EAGAIN)
        {
            pipe.Dispose();
            return null;
        }
        var server = new NpipeServer(Check.Handle(rc, Name, pipe), Name);
        try
        {
            return new NpipeStream(server, _reactor, bindToReactor: true);
        }
        catch
        {
            server.Dispose();
            throw;
        }
    }

    /// <summary>Waits for the next client and returns its connected stream (a server end: it can
    /// <see cref="NpipeStream.Disconnect"/> and <see cref="NpipeStream.WaitForConnectionAsync"/> again).
    /// A client that connected and left before the accept is still returned: its data, then EOF.
    /// Throws <see cref="OperationCanceledException"/> when <paramref name="cancellationToken"/> is
    /// cancelled and <see cref="ObjectDisposedException"/> when the listener is (or gets) disposed.</summary>
    public async ValueTask<NpipeStream> AcceptAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            ObjectDisposedException.ThrowIf(_disposed != 0, this);
            int seq = _registration.Sequence(Registration.Direction.Read);
            NpipeStream? stream = TryAccept();
            if (stream is not null)
                return stream;
            await _registration.WaitAsync(Registration.Direction.Read, seq, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Accepts clients one after another until <paramref name="cancellationToken"/> is cancelled
    /// (then <see cref="OperationCanceledException"/>) or the listener is disposed (then the enumeration
    /// just ends). The caller owns every stream it gets: hand each to a task and keep enumerating.</summary>
    public async IAsyncEnumerable<NpipeStream> AcceptAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        while (true)
        {
            NpipeStream stream;
            try
            {
                stream = await AcceptAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (ObjectDisposedException) when (_disposed != 0)
            {
                yield break;
            }
            yield return stream;
        }
    }

    /// <summary>Closes the listener (<c>npipe_close</c>, which returns at once): pending accepts fail with
    /// <see cref="ObjectDisposedException"/>; clients not accepted yet see EOF / a broken pipe.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        _registration.Close(new ObjectDisposedException(nameof(NpipeListener)));
        _handle.Dispose();
    }

    private NpipePipeHandle Handle
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed != 0, this);
            return _handle;
        }
    }

    private static unsafe NpipePipeHandle Listen(string name, NpipeListenerOptions options)
    {
        NativeListenerOptions o;
        NativeMethods.ListenerOptionsInit(&o);
        o.Flags = options.Flags;
        o.InBufferSize = checked((uint)options.InBufferSize);
        o.OutBufferSize = checked((uint)options.OutBufferSize);
        o.LingerMs = options.LingerMilliseconds;
        o.SpareInstances = checked((uint)options.SpareInstances);
        o.MaxPending = checked((uint)options.MaxPending);
        using var sddl = new NativeUtf8(options.Sddl);
        o.Sddl = sddl.Pointer;
        return Check.Handle(NativeMethods.Listen(name, &o, out NpipePipeHandle h), name, h);
    }
}
