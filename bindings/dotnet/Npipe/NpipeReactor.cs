using System;
using System.Collections.Concurrent;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using System.Threading.Tasks.Sources;

namespace Npipe;

/// <summary>
/// One background thread waiting on one <see cref="NpipePoll"/> and turning readiness events into
/// completed tasks for <see cref="NpipeStream"/>s. Operations never block a thread: they try the
/// non-blocking call, and on "would block" await the next readiness change of their direction.
/// <see cref="Shared"/> lives for the whole process; a private reactor can be disposed, which fails
/// every pending operation of its streams with <see cref="ObjectDisposedException"/>.
/// <para>A stream given no reactor takes one of the process's shared reactors, one per processor (at
/// most 4), in turn, and a listener given none takes them all: each reactor's thread dequeues and
/// dispatches the events of its pipes, so many busy pipes are not all served by one thread
/// (<see cref="Shared"/> is the first of them).</para>
/// </summary>
public sealed class NpipeReactor : IDisposable
{
    private const ulong StopToken = 0; // registration tokens start at 1
    private const int MaxSharedReactors = 4;
    private static readonly Lazy<NpipeReactor[]> s_shared = new(CreateShared);
    private static int s_nextShared;

    private readonly NpipePoll _poll = new();
    private readonly ConcurrentDictionary<ulong, Registration> _registrations = new();
    private readonly Thread _thread;
    private long _nextToken;
    private volatile bool _stopping;
    private Exception? _failure;

    /// <summary>Creates a reactor with its own poll and thread.</summary>
    public NpipeReactor() : this("npipe reactor") { }

    private NpipeReactor(string threadName)
    {
        _thread = new Thread(Run) { IsBackground = true, Name = threadName };
        _thread.Start();
    }

    /// <summary>The first of the process-wide reactors that serve streams given none.</summary>
    public static NpipeReactor Shared => s_shared.Value[0];

    /// <summary>Every shared reactor (a listener given none takes them all: one native listener on each).</summary>
    internal static NpipeReactor[] SharedSet => s_shared.Value;

    /// <summary>The shared reactor for the next stream given none: each in turn.</summary>
    internal static NpipeReactor NextShared()
    {
        NpipeReactor[] set = s_shared.Value;
        return set.Length == 1 ? set[0] : set[(uint)Interlocked.Increment(ref s_nextShared) % (uint)set.Length];
    }

    private static NpipeReactor[] CreateShared()
    {
        var set = new NpipeReactor[Math.Clamp(Environment.ProcessorCount, 1, MaxSharedReactors)];
        for (int i = 0; i < set.Length; i++)
            set[i] = new NpipeReactor($"npipe reactor (shared {i})");
        return set;
    }

    /// <summary>The poll the reactor waits on (pipes registered with it belong to this reactor).</summary>
    internal NpipePoll Poll => _poll;

    internal Registration Register(NpipePipe pipe) => Register(pipe.Handle, NpipeInterest.ReadWrite);

    internal Registration Register(NpipePipeHandle handle, NpipeInterest interests)
    {
        ObjectDisposedException.ThrowIf(_stopping, this);
        ulong token = (ulong)Interlocked.Increment(ref _nextToken);
        var reg = new Registration(this, token);
        _registrations[token] = reg;
        try
        {
            Check.Status(Interop.NativeMethods.Register(_poll.Handle, handle, token, (uint)interests), "npipe_register");
        }
        catch
        {
            _registrations.TryRemove(token, out _);
            throw;
        }
        return reg;
    }

    internal void Remove(Registration reg) => _registrations.TryRemove(reg.Token, out _);

    /// <summary>Stops the thread, fails pending operations and closes the poll (the shared reactors
    /// cannot be disposed).</summary>
    public void Dispose()
    {
        if (s_shared.IsValueCreated && Array.IndexOf(s_shared.Value, this) >= 0)
            throw new InvalidOperationException("the shared reactors live as long as the process");
        if (_stopping)
            return;
        _stopping = true;
        try { _poll.Wake(StopToken); } catch (NpipeException) { }
        _thread.Join(TimeSpan.FromSeconds(10));
        FailAll(new ObjectDisposedException(nameof(NpipeReactor)));
        _poll.Dispose();
    }

    private void Run()
    {
        var events = new NpipeEvent[128];
        try
        {
            while (!_stopping)
            {
                int n = _poll.Wait(events, null);
                for (int i = 0; i < n; i++)
                {
                    NpipeEvent ev = events[i];
                    if ((ev.Flags & NpipeEventFlags.Wake) != 0)
                        continue;
                    if (_registrations.TryGetValue(ev.Token, out Registration? reg))
                        reg.OnEvent(ev.Flags);
                }
            }
        }
        catch (Exception ex) when (!_stopping)
        {
            // The poll itself failed: nothing more can progress. Fail every pending and future operation.
            _failure = ex;
            FailAll(new IOException("the npipe reactor stopped: " + ex.Message, ex));
        }
        catch (Exception)
        {
            // Stopping: Dispose fails the registrations.
        }
    }

    private void FailAll(Exception ex)
    {
        foreach (var reg in _registrations.Values)
            reg.Close(ex);
    }

    internal Exception? Failure => _failure;
}

/// <summary>The readiness state of one pipe registered with a reactor. Each direction has a sequence
/// number bumped by every event that may unblock it; an operation samples it before its
/// non-blocking attempt and, on "would block", waits only if no event came in between — so no
/// event is ever missed, and spurious wakeups merely retry.
/// <para>Each direction owns one reusable <see cref="Waiter"/> (an <see cref="IValueTaskSource"/>), so the
/// usual case — one operation per direction at a time, as on any stream — allocates nothing per wait.
/// A second operation waiting on the same direction at the same time gets a
/// <see cref="TaskCompletionSource"/> of its own.</para></summary>
internal sealed class Registration
{
    internal enum Direction { Read = 0, Write = 1, Connect = 2 }

    private const NpipeEventFlags ReadFlags = NpipeEventFlags.Readable | NpipeEventFlags.ReadClosed | NpipeEventFlags.Error | NpipeEventFlags.Connected;
    private const NpipeEventFlags WriteFlags = NpipeEventFlags.Writable | NpipeEventFlags.WriteClosed | NpipeEventFlags.Error | NpipeEventFlags.Connected;
    private const NpipeEventFlags ConnectFlags = NpipeEventFlags.Connected | NpipeEventFlags.Error | NpipeEventFlags.Readable | NpipeEventFlags.Writable
        | NpipeEventFlags.ReadClosed | NpipeEventFlags.WriteClosed;

    private readonly object _gate = new();
    private readonly int[] _seq = new int[3];
    private readonly Waiter[] _pooled = { new(), new(), new() };
    private readonly Waiter?[] _armed = new Waiter?[3];          // the pooled waiter, while it waits
    private readonly TaskCompletionSource?[] _extra = new TaskCompletionSource?[3]; // further waiters
    private Registration? _gatherer; // also told of this one's read events and of its close
    private Exception? _closed;

    internal Registration(NpipeReactor reactor, ulong token)
    {
        Reactor = reactor;
        Token = token;
    }

    /// <summary>A registration of no pipe that gathers the read events of <paramref name="from"/> (a
    /// listener's native listeners on several reactors), so one accept can wait for any of them; it
    /// closes with the first of them that closes (their reactor failed).</summary>
    internal static Registration Gathering(Registration[] from)
    {
        // Token 0 is never a registration's (they start at 1): Close's Remove finds nothing to remove.
        var gatherer = new Registration(from[0].Reactor, 0);
        foreach (Registration r in from)
            r._gatherer = gatherer;
        return gatherer;
    }

    internal NpipeReactor Reactor { get; }

    internal ulong Token { get; }

    internal int Sequence(Direction d) => Volatile.Read(ref _seq[(int)d]);

    internal void OnEvent(NpipeEventFlags flags)
    {
        Waiter? r = null, w = null, c = null;
        TaskCompletionSource? xr = null, xw = null, xc = null;
        lock (_gate)
        {
            if ((flags & ReadFlags) != 0) Bump(0, ref r, ref xr);
            if ((flags & WriteFlags) != 0) Bump(1, ref w, ref xw);
            if ((flags & ConnectFlags) != 0) Bump(2, ref c, ref xc);
        }
        r?.Complete(null);
        w?.Complete(null);
        c?.Complete(null);
        xr?.TrySetResult();
        xw?.TrySetResult();
        xc?.TrySetResult();
        if (_gatherer is not null && (flags & ReadFlags) != 0)
            _gatherer.OnEvent(flags & ReadFlags);
    }

    private void Bump(int d, ref Waiter? waiter, ref TaskCompletionSource? extra)
    {
        _seq[d]++;
        waiter = _armed[d];
        _armed[d] = null;
        extra = _extra[d];
        _extra[d] = null;
    }

    /// <summary>Completes when an event for <paramref name="d"/> arrived after <paramref name="observed"/>
    /// was sampled. Several operations may wait on one direction; each honours its own token.</summary>
    internal ValueTask WaitAsync(Direction d, int observed, CancellationToken cancellationToken)
    {
        int i = (int)d;
        lock (_gate)
        {
            if (_closed is not null)
                return ValueTask.FromException(_closed);
            if (_seq[i] != observed)
                return ValueTask.CompletedTask;
            Waiter pooled = _pooled[i];
            if (_armed[i] is null && pooled.TryArm())
            {
                _armed[i] = pooled;
                return pooled.Wait(cancellationToken, this, d);
            }
            var tcs = _extra[i] ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return new ValueTask(cancellationToken.CanBeCanceled ? tcs.Task.WaitAsync(cancellationToken) : tcs.Task);
        }
    }

    // A cancelled pooled wait leaves the slot, so the next operation can arm it again.
    private void Disarm(Direction d, Waiter waiter)
    {
        lock (_gate)
        {
            if (ReferenceEquals(_armed[(int)d], waiter))
                _armed[(int)d] = null;
        }
    }

    /// <summary>Fails every pending and future wait with <paramref name="ex"/>.</summary>
    internal void Close(Exception ex)
    {
        Waiter?[] armed;
        TaskCompletionSource?[] extra;
        lock (_gate)
        {
            if (_closed is not null)
                return;
            _closed = ex;
            armed = (Waiter?[])_armed.Clone();
            extra = (TaskCompletionSource?[])_extra.Clone();
            Array.Clear(_armed);
            Array.Clear(_extra);
        }
        foreach (var waiter in armed)
            waiter?.Complete(ex);
        foreach (var tcs in extra)
            tcs?.TrySetException(ex);
        Reactor.Remove(this);
        _gatherer?.Close(ex);
    }

    /// <summary>One reusable wait: armed by <see cref="WaitAsync"/>, completed once (by an event, the
    /// token or <see cref="Close"/>, whichever comes first), reset when its result is taken.
    /// Continuations run on the thread pool, never on the reactor's thread.</summary>
    private sealed class Waiter : IValueTaskSource
    {
        private const int Idle = 0, Armed = 1, Completed = 2;
        private static readonly Action<object?, CancellationToken> s_cancel = (state, token) =>
        {
            var w = (Waiter)state!;
            if (w.Complete(new OperationCanceledException(token)))
                w._owner?.Disarm(w._direction, w);
        };

        private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };
        private int _state;
        private CancellationTokenRegistration _cancellation;
        private Registration? _owner;
        private Direction _direction;

        internal bool TryArm() => Interlocked.CompareExchange(ref _state, Armed, Idle) == Idle;

        internal ValueTask Wait(CancellationToken cancellationToken, Registration owner, Direction d)
        {
            _owner = owner;
            _direction = d;
            short version = _core.Version;
            if (cancellationToken.CanBeCanceled)
                _cancellation = cancellationToken.UnsafeRegister(s_cancel, this);
            return new ValueTask(this, version);
        }

        /// <summary>Completes the wait (null: an event came); false if it was completed already.</summary>
        internal bool Complete(Exception? error)
        {
            if (Interlocked.CompareExchange(ref _state, Completed, Armed) != Armed)
                return false;
            if (error is null)
                _core.SetResult(true);
            else
                _core.SetException(error);
            return true;
        }

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);

        public void GetResult(short token)
        {
            try
            {
                _core.GetResult(token);
            }
            finally
            {
                // Unregister before reuse; Dispose waits for a callback that is running right now.
                _cancellation.Dispose();
                _cancellation = default;
                _owner = null;
                _core.Reset();
                Volatile.Write(ref _state, Idle);
            }
        }
    }
}
