using System;
using System.Collections.Concurrent;
using System.IO;
using System.Threading;
using System.Threading.Tasks;

namespace Npipe;

/// <summary>
/// One background thread waiting on one <see cref="NpipePoll"/> and turning readiness events into
/// completed tasks for <see cref="NpipeStream"/>s. Operations never block a thread: they try the
/// non-blocking call, and on "would block" await the next readiness change of their direction.
/// <see cref="Shared"/> lives for the whole process; a private reactor can be disposed, which fails
/// every pending operation of its streams with <see cref="ObjectDisposedException"/>.
/// </summary>
public sealed class NpipeReactor : IDisposable
{
    private const ulong StopToken = 0; // registration tokens start at 1
    private static readonly Lazy<NpipeReactor> s_shared = new(() => new NpipeReactor("npipe reactor (shared)"));

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

    /// <summary>The process-wide reactor used when none is given.</summary>
    public static NpipeReactor Shared => s_shared.Value;

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

    /// <summary>Stops the thread, fails pending operations and closes the poll (the shared reactor
    /// cannot be disposed).</summary>
    public void Dispose()
    {
        if (ReferenceEquals(this, s_shared.IsValueCreated ? s_shared.Value : null))
            throw new InvalidOperationException("the shared reactor lives as long as the process");
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
/// event is ever missed, and spurious wakeups merely retry.</summary>
internal sealed class Registration
{
    internal enum Direction { Read = 0, Write = 1, Connect = 2 }

    private const NpipeEventFlags ReadFlags = NpipeEventFlags.Readable | NpipeEventFlags.ReadClosed | NpipeEventFlags.Error | NpipeEventFlags.Connected;
    private const NpipeEventFlags WriteFlags = NpipeEventFlags.Writable | NpipeEventFlags.WriteClosed | NpipeEventFlags.Error | NpipeEventFlags.Connected;
    private const NpipeEventFlags ConnectFlags = NpipeEventFlags.Connected | NpipeEventFlags.Error | NpipeEventFlags.Readable | NpipeEventFlags.Writable
        | NpipeEventFlags.ReadClosed | NpipeEventFlags.WriteClosed;

    private readonly object _gate = new();
    private readonly int[] _seq = new int[3];
    private readonly TaskCompletionSource?[] _waiters = new TaskCompletionSource?[3];
    private Exception? _closed;

    internal Registration(NpipeReactor reactor, ulong token)
    {
        Reactor = reactor;
        Token = token;
    }

    internal NpipeReactor Reactor { get; }

    internal ulong Token { get; }

    internal int Sequence(Direction d) => Volatile.Read(ref _seq[(int)d]);

    internal void OnEvent(NpipeEventFlags flags)
    {
        TaskCompletionSource? r = null, w = null, c = null;
        lock (_gate)
        {
            if ((flags & ReadFlags) != 0) { _seq[0]++; r = _waiters[0]; _waiters[0] = null; }
            if ((flags & WriteFlags) != 0) { _seq[1]++; w = _waiters[1]; _waiters[1] = null; }
            if ((flags & ConnectFlags) != 0) { _seq[2]++; c = _waiters[2]; _waiters[2] = null; }
        }
        r?.TrySetResult();
        w?.TrySetResult();
        c?.TrySetResult();
    }

    /// <summary>Completes when an event for <paramref name="d"/> arrived after <paramref name="observed"/>
    /// was sampled. Several operations may wait on one direction; each honours its own token.</summary>
    internal Task WaitAsync(Direction d, int observed, CancellationToken cancellationToken)
    {
        Task task;
        lock (_gate)
        {
            if (_closed is not null)
                return Task.FromException(_closed);
            if (_seq[(int)d] != observed)
                return Task.CompletedTask;
            var tcs = _waiters[(int)d] ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            task = tcs.Task;
        }
        return cancellationToken.CanBeCanceled ? task.WaitAsync(cancellationToken) : task;
    }

    /// <summary>Fails every pending and future wait with <paramref name="ex"/>.</summary>
    internal void Close(Exception ex)
    {
        TaskCompletionSource?[] waiters;
        lock (_gate)
        {
            if (_closed is not null)
                return;
            _closed = ex;
            waiters = (TaskCompletionSource?[])_waiters.Clone();
            Array.Clear(_waiters);
        }
        foreach (var tcs in waiters)
            tcs?.TrySetException(ex);
        Reactor.Remove(this);
    }
}
