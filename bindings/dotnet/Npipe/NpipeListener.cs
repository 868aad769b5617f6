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
/// <para>The library allows an accepted pipe only on its listener's poll, so a listener given a
/// reactor serves every stream it returns there. Given none, it holds one native listener of the name
/// on each shared reactor (as Kestrel runs one accept queue per processor) and hands out their clients
/// in turn, so the accepted streams are spread over the shared reactors like streams created one by
/// one; <see cref="NpipeListenerOptions.SpareInstances"/> and <see cref="NpipeListenerOptions.MaxPending"/>
/// are then shared out between them (each gets its part, rounded up). No thread is blocked while
/// waiting for a client.</para>
/// <para>Dispose: returns at once and never hangs. Pending <see cref="AcceptAsync"/> calls end with
/// <see cref="ObjectDisposedException"/>, later calls throw it, and <see cref="AcceptAllAsync"/> ends its
/// enumeration. Clients not accepted yet see the end of the connection; streams already accepted are
/// not affected. Cancelling an accept's token ends that accept with <see cref="OperationCanceledException"/>
/// and loses no client (a pipe is taken from the library only when it is returned).</para>
/// </summary>
public sealed class NpipeListener : IDisposable
{
    // The pool's defaults (SPEC §7.1), needed to share a default out between the native listeners.
    private const int DefaultSpareInstances = 4, MaxSpareInstances = 64, DefaultMaxPending = 128, MaxMaxPending = 4096;

    // One native listener of the name, and the reactor its accepted streams are served by.
    private readonly record struct NativeListener(NpipePipeHandle Handle, NpipeReactor Reactor, Registration Registration);

    private readonly NativeListener[] _listeners;
    private readonly Registration _ready; // read events of every native listener (its own when there is one)
    private int _nextListener;
    private int _disposed;

    /// <summary>Creates the listener; the name exists from here on (with
    /// <see cref="NpipeInstanceOptions.FirstInstance"/>, an existing name throws
    /// <see cref="NpipeErrorCode.AlreadyExists"/>).</summary>
    public NpipeListener(string name, NpipeListenerOptions? options = null, NpipeReactor? reactor = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        Name = name;
        Options = options ?? new NpipeListenerOptions();
        NpipeReactor[] reactors = reactor is null ? NpipeReactor.SharedSet : new[] { reactor };
        var listeners = new List<NativeListener>(reactors.Length);
        try
        {
            foreach (NpipeReactor r in reactors)
            {
                // The first creates the name (FirstInstance applies to it); the others join it.
                NpipePipeHandle handle = Listen(name, Options, first: listeners.Count == 0, reactors.Length);
                try
                {
                    listeners.Add(new NativeListener(handle, r, r.Register(handle, NpipeInterest.Readable)));
                }
                catch
                {
                    handle.Dispose();
                    throw;
                }
            }
        }
        catch
        {
            foreach (NativeListener q in listeners)
            {
                q.Registration.Close(new ObjectDisposedException(nameof(NpipeListener)));
                q.Handle.Dispose();
            }
            throw;
        }
        _listeners = listeners.ToArray();
        _ready = _listeners.Length == 1 ? _listeners[0].Registration : Registration.Gathering(Array.ConvertAll(_listeners, q => q.Registration));
    }

    /// <summary>The name given at creation.</summary>
    public string Name { get; }

    /// <summary>The options the listener was created with.</summary>
    public NpipeListenerOptions Options { get; }

    /// <summary>True once disposed.</summary>
    public bool IsDisposed => _disposed != 0;

    /// <summary>The native handle (a listener <c>npipe_t</c>); with one native listener per shared
    /// reactor, the first one's (the one that created the name).</summary>
    public NpipePipeHandle SafeHandle => _listeners[0].Handle;

    /// <summary>The reactors the accepted streams are served by: the one given at creation, else every
    /// shared reactor.</summary>
    public IReadOnlyList<NpipeReactor> Reactors => Array.ConvertAll(_listeners, q => q.Reactor);

    /// <summary>A snapshot of <c>npipe_get_info</c>: <see cref="NpipeInfo.IsListener"/>,
    /// <see cref="NpipeInfo.WaitingInstances"/>, <see cref="NpipeInfo.PendingAccepts"/> (with several
    /// native listeners, the first one's snapshot with these two counts summed over all).</summary>
    public NpipeInfo GetInfo()
    {
        ThrowIfDisposed();
        NpipeInfo info = NpipePipe.InfoOf(_listeners[0].Handle);
        for (int i = 1; i < _listeners.Length; i++)
        {
            NpipeInfo more = NpipePipe.InfoOf(_listeners[i].Handle);
            info = info with
            {
                WaitingInstances = info.WaitingInstances + more.WaitingInstances,
                PendingAccepts = info.PendingAccepts + more.PendingAccepts,
            };
        }
        return info;
    }

    /// <summary>Returns the listener's first background failure once (a failure to create an instance,
    /// which the library retries with backoff) and clears it; <see cref="NpipeErrorCode.Ok"/> if none.</summary>
    public NpipeErrorCode TakeError()
    {
        ThrowIfDisposed();
        foreach (NativeListener q in _listeners)
        {
            NpipeErrorCode code = NpipePipe.TakeErrorOf(q.Handle);
            if (code != NpipeErrorCode.Ok)
                return code;
        }
        return NpipeErrorCode.Ok;
    }

    /// <summary>Takes a connected client if one waits (no waiting): the stream, or null.</summary>
    public NpipeStream? TryAccept()
    {
        ThrowIfDisposed();
        // Each call starts at the next native listener, so none of them has its clients wait behind another's.
        int start = _listeners.Length == 1 ? 0 : (int)((uint)Interlocked.Increment(ref _nextListener) % (uint)_listeners.Length);
        for (int k = 0; k < _listeners.Length; k++)
        {
            NativeListener q = _listeners[(start + k) % _listeners.Length];
            int rc = NativeMethods.Accept(q.Handle, out NpipePipeHandle pipe);
            if (rc == NativeFlags.EAGAIN)
            {
                pipe.Dispose();
                continue;
            }
            var server = new NpipeServer(Check.Handle(rc, Name, pipe), Name);
            try
            {
                return new NpipeStream(server, q.Reactor, bindToReactor: true);
            }
            catch
            {
                server.Dispose();
                throw;
            }
        }
        return null;
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
            int seq = _ready.Sequence(Registration.Direction.Read);
            NpipeStream? stream = TryAccept();
            if (stream is not null)
                return stream;
            await _ready.WaitAsync(Registration.Direction.Read, seq, cancellationToken).ConfigureAwait(false);
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
        var disposed = new ObjectDisposedException(nameof(NpipeListener));
        _ready.Close(disposed);
        foreach (NativeListener q in _listeners)
        {
            q.Registration.Close(disposed);
            q.Handle.Dispose();
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed != 0, this);

    private static unsafe NpipePipeHandle Listen(string name, NpipeListenerOptions options, bool first, int listeners)
    {
        NativeListenerOptions o;
        NativeMethods.ListenerOptionsInit(&o);
        o.Flags = first ? options.Flags : options.Flags & ~NativeFlags.FirstInstance;
        o.InBufferSize = checked((uint)options.InBufferSize);
        o.OutBufferSize = checked((uint)options.OutBufferSize);
        o.LingerMs = options.LingerMilliseconds;
        o.SpareInstances = ShareOut(options.SpareInstances, DefaultSpareInstances, MaxSpareInstances, listeners);
        o.MaxPending = ShareOut(options.MaxPending, DefaultMaxPending, MaxMaxPending, listeners);
        using var sddl = new NativeUtf8(options.Sddl);
        o.Sddl = sddl.Pointer;
        return Check.Handle(NativeMethods.Listen(name, &o, out NpipePipeHandle h), name, h);
    }

    // One native listener's part of a pool total (0: the default), rounded up. A value out of range goes to the
    // library unchanged, which rejects it with its own message (a negative one fails the cast).
    private static uint ShareOut(int total, int whenZero, int max, int listeners) =>
        listeners == 1 || total < 0 || total > max
            ? checked((uint)total)
            : (uint)(((total == 0 ? whenZero : total) + listeners - 1) / listeners);
}
