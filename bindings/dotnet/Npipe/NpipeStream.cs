using System;
using System.IO;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Tasks;
using Npipe.Interop;

namespace Npipe;

/// <summary>
/// A <see cref="Stream"/> over one npipe pipe end, shaped like <c>System.IO.Pipes.PipeStream</c>.
/// <para><b>How it waits.</b> A pipe is bound for life to the first poll it waits on (SPEC §7.3), so a
/// stream is bound once, by its first operation that may wait, and stays so:</para>
/// <list type="bullet">
/// <item><b>Reactor-bound</b> (the first such call was asynchronous — <see cref="ConnectAsync(string, NpipeClientOptions?, NpipeReactor?, CancellationToken)"/>,
/// <see cref="WaitForConnectionAsync"/>, <see cref="ReadAsync(Memory{byte}, CancellationToken)"/>, … — and always for streams from
/// <see cref="NpipeListener"/>): registered with an <see cref="NpipeReactor"/> (default: one of the
/// shared reactors, each stream the next in turn). Async calls try the non-blocking call and, when it would block,
/// await the reactor's next readiness event through a reused <c>IValueTaskSource</c>: no thread is
/// blocked and nothing is allocated per wait. Synchronous calls on such a stream block the caller
/// until the reactor's event.</item>
/// <item><b>Wait-bound</b> (the first such call was synchronous — <see cref="Connect(string, NpipeClientOptions?, NpipeReactor?)"/>,
/// <see cref="WaitForConnection"/>, <see cref="Read(Span{byte})"/>, <see cref="Write(ReadOnlySpan{byte})"/>):
/// synchronous calls block in <c>npipe_wait</c> on the calling thread — no reactor thread, no task,
/// no allocation. Async calls on such a stream run that blocking wait on a thread-pool thread (as
/// .NET does for a pipe opened without <c>PipeOptions.Asynchronous</c>); their token is honoured
/// between waits of at most 100 ms.</item>
/// </list>
/// <para>So: use the async API throughout (servers, many connections) or the sync one throughout
/// (scripts, a thread per connection); mixing works but the second kind is the slower path.</para>
/// <para>Cancellation: a cancelled token ends the wait with <see cref="OperationCanceledException"/>; no
/// bytes are lost (a read consumes nothing until it returns, a write's accepted bytes stay sent).</para>
/// <para>Dispose: operations still waiting when the stream is disposed fail with
/// <see cref="ObjectDisposedException"/> — one rule on both platforms, where System.IO.Pipes gives an
/// <see cref="IOException"/> on Linux and a 0-byte read on Windows; later calls throw it as well.
/// Disposing closes the pipe at once (bytes already written keep draining for the linger time); await
/// <see cref="FlushAsync(CancellationToken)"/> or <see cref="DrainAsync"/> first to know they left.</para>
/// </summary>
public sealed class NpipeStream : Stream
{
    private const int Unbound = 0, OnReactor = 1, OnWait = 2;
    private const int CancelSliceMs = 100;

    private readonly NpipePipe _pipe;
    private readonly NpipeReactor _reactor;
    private readonly bool _canRead;
    private readonly bool _canWrite;
    private readonly object _bindGate = new();
    private readonly Func<bool> _tryFlush, _tryDrain; // made once: FlushAsync runs after every line of an AutoFlush writer
    private Registration? _registration;
    private bool _readWaited; // the last synchronous read on npipe_wait had to wait
    private int _mode;
    private int _disposed;

    /// <summary>Wraps <paramref name="pipe"/> (which must not be registered with any poll yet) and takes
    /// ownership of it. It is bound to <paramref name="reactor"/> (default: the next shared one) by the first
    /// asynchronous call, or to <c>npipe_wait</c> by the first synchronous one (see the class remarks).</summary>
    public NpipeStream(NpipePipe pipe, NpipeReactor? reactor = null) : this(pipe, reactor, bindToReactor: false) { }

    internal NpipeStream(NpipePipe pipe, NpipeReactor? reactor, bool bindToReactor)
    {
        ArgumentNullException.ThrowIfNull(pipe);
        _pipe = pipe;
        _reactor = reactor ?? NpipeReactor.NextShared();
        NpipeInfo info = pipe.GetInfo();
        _canRead = !info.OutboundOnly;
        _canWrite = !info.InboundOnly;
        IsMessageMode = info.MessageMode;
        _tryFlush = pipe.TryFlush;
        _tryDrain = pipe.TryDrain;
        if (bindToReactor)
            BindReactor();
    }

    /// <summary>Creates a server instance of <paramref name="name"/> wrapped in a stream; then
    /// <see cref="WaitForConnectionAsync"/> (or <see cref="WaitForConnection"/>).</summary>
    public static NpipeStream CreateServer(string name, NpipeServerOptions? options = null, NpipeReactor? reactor = null)
    {
        var server = new NpipeServer(name, options);
        try
        {
            return new NpipeStream(server, reactor);
        }
        catch
        {
            server.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens a client end of <paramref name="name"/> without blocking a thread: the open runs on the
    /// reactor's poll (<c>NPIPE_NONBLOCK_OPEN</c>), which retries an absent server on its clock and, on
    /// Windows, awaits a busy one asynchronously. It waits until <see cref="NpipeClientOptions.Timeout"/>
    /// (then <see cref="TimeoutException"/>), or, when no timeout is set, until
    /// <paramref name="cancellationToken"/> is cancelled, as <c>NamedPipeClientStream.ConnectAsync()</c>
    /// does. A zero timeout makes one attempt and throws its failure (<see cref="NpipeErrorCode.NotFound"/>,
    /// <see cref="NpipeErrorCode.Busy"/>). Cancelling closes the connecting pipe at once (the attempt
    /// ends; a server that comes later sees no client) and throws <see cref="OperationCanceledException"/>.
    /// The stream is reactor-bound.
    /// </summary>
    public static async Task<NpipeStream> ConnectAsync(string name, NpipeClientOptions? options = null,
        NpipeReactor? reactor = null, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        NpipeClient client = NpipeClient.StartOpen(name, options);
        NpipeStream stream;
        try
        {
            stream = new NpipeStream(client, reactor, bindToReactor: true);
        }
        catch
        {
            client.Dispose();
            throw;
        }
        try
        {
            Registration reg = stream._registration!;
            while (true)
            {
                int seq = stream.Sequence(reg, Registration.Direction.Connect);
                if (client.TryFinishOpen())
                    return stream;
                await reg.WaitAsync(Registration.Direction.Connect, seq, cancellationToken).ConfigureAwait(false);
            }
        }
        catch
        {
            stream.Dispose(); // closing a connecting pipe cancels the attempt at once
            throw;
        }
    }

    /// <summary>As <c>NamedPipeClientStream.ConnectAsync(CancellationToken)</c>: waits for the server
    /// until <paramref name="cancellationToken"/> is cancelled.</summary>
    public static Task<NpipeStream> ConnectAsync(string name, CancellationToken cancellationToken) =>
        ConnectAsync(name, null, null, cancellationToken);

    /// <summary>As <c>NamedPipeClientStream.ConnectAsync(TimeSpan, CancellationToken)</c>: waits at most
    /// <paramref name="timeout"/> (<see cref="Timeout.InfiniteTimeSpan"/> = forever), then
    /// <see cref="TimeoutException"/>.</summary>
    public static Task<NpipeStream> ConnectAsync(string name, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        ConnectAsync(name, new NpipeClientOptions { Timeout = timeout }, null, cancellationToken);

    /// <summary>As <c>NamedPipeClientStream.ConnectAsync(int, CancellationToken)</c>: waits at most
    /// <paramref name="timeoutMilliseconds"/> (<see cref="Timeout.Infinite"/> = forever), then
    /// <see cref="TimeoutException"/>.</summary>
    public static Task<NpipeStream> ConnectAsync(string name, int timeoutMilliseconds, CancellationToken cancellationToken = default) =>
        ConnectAsync(name, ToTimeout(timeoutMilliseconds), cancellationToken);

    /// <summary>
    /// Opens a client end of <paramref name="name"/>, blocking the calling thread for at most
    /// <see cref="NpipeClientOptions.Timeout"/> (not set: fails at once when nobody listens, as
    /// <see cref="NpipeClient.Open"/>). The stream is not bound yet: used synchronously, it waits in
    /// <c>npipe_wait</c> on the caller's thread.
    /// </summary>
    public static NpipeStream Connect(string name, NpipeClientOptions? options = null, NpipeReactor? reactor = null)
    {
        NpipeClient client = NpipeClient.Open(name, options);
        try
        {
            return new NpipeStream(client, reactor);
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    /// <summary>As <c>NamedPipeClientStream.Connect(int)</c>: <see cref="Connect(string, NpipeClientOptions?, NpipeReactor?)"/>
    /// waiting at most <paramref name="timeoutMilliseconds"/> (<see cref="Timeout.Infinite"/> = forever).</summary>
    public static NpipeStream Connect(string name, int timeoutMilliseconds) =>
        Connect(name, new NpipeClientOptions { Timeout = ToTimeout(timeoutMilliseconds) });

    private static TimeSpan ToTimeout(int ms)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(ms, Timeout.Infinite);
        return ms == Timeout.Infinite ? Timeout.InfiniteTimeSpan : TimeSpan.FromMilliseconds(ms);
    }

    /// <summary>The wrapped pipe (for <see cref="NpipePipe.GetInfo"/> and friends; do not register it elsewhere).</summary>
    public NpipePipe Pipe => _pipe;

    /// <summary>True when the pipe was created or opened in message mode: each read returns at most one message.</summary>
    public bool IsMessageMode { get; }

    /// <summary>The reactor the stream's asynchronous calls wait on (whether or not it is bound yet).</summary>
    internal NpipeReactor Reactor => _reactor;

    /// <summary>True while a peer is connected and has not left (<c>NPIPE_INFO_CONNECTED</c>), on both
    /// platforms: false before a server's client came, after the peer closed its end (even with unread
    /// data still buffered here), after <see cref="Disconnect"/> and once disposed.</summary>
    public bool IsConnected => _disposed == 0 && !_pipe.IsDisposed && _pipe.GetInfo().IsConnected;

    /// <summary>Waits until a client is connected to this server stream (binds it to the reactor).</summary>
    public async Task WaitForConnectionAsync(CancellationToken cancellationToken = default)
    {
        NpipeServer server = _pipe as NpipeServer ?? throw new InvalidOperationException("not a server stream");
        Registration? reg = AsyncRegistration();
        if (reg is null)
        {
            await ConnectOnPool(server, cancellationToken).ConfigureAwait(false);
            return;
        }
        while (true)
        {
            int seq = Sequence(reg, Registration.Direction.Connect);
            if (server.TryConnect())
                return;
            await reg.WaitAsync(Registration.Direction.Connect, seq, cancellationToken).ConfigureAwait(false);
        }
    }

    private Task ConnectOnPool(NpipeServer server, CancellationToken cancellationToken) =>
        Task.Run(() => Block(server.TryConnect, NativeFlags.Readable | NativeFlags.Writable, cancellationToken), cancellationToken);

    /// <summary>Blocks until a client is connected to this server stream, as
    /// <c>NamedPipeServerStream.WaitForConnection()</c> (binds an unbound stream to <c>npipe_wait</c>).</summary>
    public void WaitForConnection()
    {
        NpipeServer server = _pipe as NpipeServer ?? throw new InvalidOperationException("not a server stream");
        // A connect that ended makes READABLE and WRITABLE hold (a failed one both).
        SyncUntil(() => server.TryConnect(), NativeFlags.Readable | NativeFlags.Writable, Registration.Direction.Connect);
    }

    /// <summary>Drops the client of this server stream; <see cref="WaitForConnectionAsync"/> may follow.</summary>
    public void Disconnect()
    {
        NpipeServer server = _pipe as NpipeServer ?? throw new InvalidOperationException("not a server stream");
        ThrowIfDisposed();
        server.Disconnect();
    }

    /// <inheritdoc/>
    public override bool CanRead => _disposed == 0 && _canRead;
    /// <inheritdoc/>
    public override bool CanWrite => _disposed == 0 && _canWrite;
    /// <inheritdoc/>
    public override bool CanSeek => false;
    /// <inheritdoc/>
    public override long Length => throw new NotSupportedException();
    /// <inheritdoc/>
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    /// <inheritdoc/>
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    /// <inheritdoc/>
    public override void SetLength(long value) => throw new NotSupportedException();

    /// <inheritdoc/>
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
            return ValueTask.FromCanceled<int>(cancellationToken);
        try
        {
            Registration? reg = AsyncRegistration();
            if (reg is null)
                return ReadOnPool(buffer, cancellationToken);
            int seq = Sequence(reg, Registration.Direction.Read);
            if (_pipe.TryRead(buffer.Span, out int n))
                return new ValueTask<int>(n);
            return ReadSlowAsync(reg, buffer, seq, cancellationToken);
        }
        catch (Exception ex)
        {
            return ValueTask.FromException<int>(ex);
        }
    }

    // Async calls on a wait-bound stream: the blocking wait on a thread-pool thread. Separate methods,
    // so the closures are allocated only on this path (C# allocates a lambda's captures on entry to
    // the method that declares them, whichever branch runs).
    private ValueTask<int> ReadOnPool(Memory<byte> buffer, CancellationToken cancellationToken) =>
        new(Task.Run(() => ReadBlocking(buffer.Span, cancellationToken), cancellationToken));

    private ValueTask WriteOnPool(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken) =>
        new(Task.Run(() => WriteBlocking(buffer.Span, cancellationToken), cancellationToken));

    private Task<(int, NpipeMessageFlags)> ReadMessageOnPool(Memory<byte> buffer, CancellationToken cancellationToken) =>
        Task.Run(() =>
        {
            (int, NpipeMessageFlags) result = default;
            Block(() =>
            {
                bool done = _pipe.TryReadMessage(buffer.Span, out int n, out NpipeMessageFlags f);
                result = (n, f);
                return done;
            }, NativeFlags.Readable, cancellationToken);
            return result;
        }, cancellationToken);

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> ReadSlowAsync(Registration reg, Memory<byte> buffer, int seq, CancellationToken cancellationToken)
    {
        while (true)
        {
            await reg.WaitAsync(Registration.Direction.Read, seq, cancellationToken).ConfigureAwait(false);
            seq = Sequence(reg, Registration.Direction.Read);
            if (_pipe.TryRead(buffer.Span, out int n))
                return n;
        }
    }

    /// <summary>
    /// Reads at most one message (message mode): <c>Flags</c> has <see cref="NpipeMessageFlags.Partial"/>
    /// when the rest of the same message follows in the next read, <see cref="NpipeMessageFlags.Empty"/>
    /// for a zero-length message; 0 bytes without flags is the end of the connection. In byte mode it
    /// behaves like <see cref="ReadAsync(Memory{byte}, CancellationToken)"/> with no flags.
    /// </summary>
    public async ValueTask<(int BytesRead, NpipeMessageFlags Flags)> ReadMessageAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Registration? reg = AsyncRegistration();
        if (reg is null)
            return await ReadMessageOnPool(buffer, cancellationToken).ConfigureAwait(false);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int seq = Sequence(reg, Registration.Direction.Read);
            if (_pipe.TryReadMessage(buffer.Span, out int n, out NpipeMessageFlags flags))
                return (n, flags);
            await reg.WaitAsync(Registration.Direction.Read, seq, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc/>
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
            return ValueTask.FromCanceled(cancellationToken);
        try
        {
            Registration? reg = AsyncRegistration();
            if (reg is null)
                return WriteOnPool(buffer, cancellationToken);
            int seq = Sequence(reg, Registration.Direction.Write);
            if (!_pipe.TryWrite(buffer.Span, out int n))
                return WriteSlowAsync(reg, buffer, seq, cancellationToken);
            // A short write does not mean the buffer is full: go on at once (no edge may follow).
            while (n < buffer.Length)
            {
                buffer = buffer.Slice(n);
                seq = Sequence(reg, Registration.Direction.Write);
                if (!_pipe.TryWrite(buffer.Span, out n))
                    return WriteSlowAsync(reg, buffer, seq, cancellationToken);
            }
            return ValueTask.CompletedTask;
        }
        catch (Exception ex)
        {
            return ValueTask.FromException(ex);
        }
    }

    // The rest of a write that would block (with `seq` sampled before that attempt): wait for room,
    // write what fits, until all is taken.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteSlowAsync(Registration reg, ReadOnlyMemory<byte> buffer, int seq, CancellationToken cancellationToken)
    {
        while (true)
        {
            await reg.WaitAsync(Registration.Direction.Write, seq, cancellationToken).ConfigureAwait(false);
            while (true)
            {
                seq = Sequence(reg, Registration.Direction.Write);
                if (!_pipe.TryWrite(buffer.Span, out int n))
                    break;
                buffer = buffer.Slice(n);
                if (buffer.IsEmpty)
                    return;
            }
        }
    }

    /// <inheritdoc/>
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <summary>Completes when every byte written so far has been handed to the OS and completed.</summary>
    public override Task FlushAsync(CancellationToken cancellationToken) => UntilWritableAsync(_tryFlush, cancellationToken);

    /// <summary>
    /// Completes when the peer has read every byte written so far, not just the OS (<see cref="FlushAsync(CancellationToken)"/>):
    /// no thread waits, the reactor's poll re-checks. A server that answers and hangs up writes, awaits
    /// this, then calls <see cref="Disconnect"/>, which would otherwise discard what the client has not
    /// read yet. Throws <see cref="NpipeException"/> (<see cref="NpipeErrorCode.BrokenPipe"/>) when the
    /// peer left before reading everything. Under Wine a pipe counts as drained once flushed.
    /// </summary>
    public Task DrainAsync(CancellationToken cancellationToken = default) => UntilWritableAsync(_tryDrain, cancellationToken);

    /// <summary>As <c>PipeStream.WaitForPipeDrain()</c>: blocks until the peer has read every byte written
    /// so far (<see cref="DrainAsync"/>'s rule, <c>npipe_drain</c>).</summary>
    public void WaitForPipeDrain() => UntilWritable(_tryDrain);

    /// <summary>Who is on the other end (<see cref="NpipePipe.PeerIdentity"/>).</summary>
    public NpipePeerIdentity PeerIdentity
    {
        get
        {
            ThrowIfDisposed();
            return _pipe.PeerIdentity;
        }
    }

    /// <inheritdoc/>
    public override int Read(Span<byte> buffer)
    {
        if (SyncIsOnWait())
            return ReadBlocking(buffer, CancellationToken.None);
        int n = 0;
        // Reactor-bound: the span cannot cross into a lambda, so the loop is spelled out.
        Registration reg = _registration!;
        while (true)
        {
            int seq = Sequence(reg, Registration.Direction.Read);
            if (_pipe.TryRead(buffer, out n))
                return n;
            reg.WaitAsync(Registration.Direction.Read, seq, CancellationToken.None).AsTask().GetAwaiter().GetResult();
        }
    }

    /// <inheritdoc/>
    public override int Read(byte[] buffer, int offset, int count)
    {
        ValidateBufferArguments(buffer, offset, count);
        return Read(buffer.AsSpan(offset, count));
    }

    /// <inheritdoc/>
    public override int ReadByte()
    {
        Span<byte> one = stackalloc byte[1];
        return Read(one) == 0 ? -1 : one[0];
    }

    /// <inheritdoc/>
    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (SyncIsOnWait())
        {
            WriteBlocking(buffer, CancellationToken.None);
            return;
        }
        Registration reg = _registration!;
        bool first = true;
        while (first || !buffer.IsEmpty)
        {
            int seq = Sequence(reg, Registration.Direction.Write);
            if (_pipe.TryWrite(buffer, out int n))
            {
                first = false;
                buffer = buffer.Slice(n);
                continue;
            }
            reg.WaitAsync(Registration.Direction.Write, seq, CancellationToken.None).AsTask().GetAwaiter().GetResult();
        }
    }

    /// <inheritdoc/>
    public override void Write(byte[] buffer, int offset, int count)
    {
        ValidateBufferArguments(buffer, offset, count);
        Write(buffer.AsSpan(offset, count));
    }

    /// <inheritdoc/>
    public override void WriteByte(byte value) => Write(new ReadOnlySpan<byte>(in value));

    /// <inheritdoc/>
    public override void Flush() => UntilWritable(_tryFlush);

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            lock (_bindGate)
            {
                _registration?.Close(new ObjectDisposedException(nameof(NpipeStream)));
                if (_mode == OnWait)
                    _pipe.CloseNow(); // ends every npipe_wait on it at once (EBADF), even one in progress
                else
                    _pipe.Dispose();
            }
        }
        base.Dispose(disposing);
    }

    // ---- binding -------------------------------------------------------------------------------

    private Registration BindReactor()
    {
        lock (_bindGate)
        {
            ThrowIfDisposed();
            if (_mode == Unbound)
            {
                _registration = _reactor.Register(_pipe);
                Volatile.Write(ref _mode, OnReactor);
            }
            return _registration ?? throw new InvalidOperationException("the stream is bound to npipe_wait");
        }
    }

    // The registration for an async call: binds an unbound stream to the reactor; null when the stream
    // is bound to npipe_wait.
    private Registration? AsyncRegistration()
    {
        int mode = Volatile.Read(ref _mode);
        if (mode == OnReactor)
            return _registration;
        if (mode == OnWait)
        {
            ThrowIfDisposed();
            return null;
        }
        lock (_bindGate)
            return _mode == OnWait ? null : BindReactor();
    }

    // For a sync call: true when it waits in npipe_wait (binding an unbound stream to it).
    private bool SyncIsOnWait()
    {
        ThrowIfDisposed();
        int mode = Volatile.Read(ref _mode);
        if (mode != Unbound)
            return mode == OnWait;
        lock (_bindGate)
        {
            ThrowIfDisposed();
            if (_mode == Unbound)
                _mode = OnWait;
            return _mode == OnWait;
        }
    }

    // ---- waiting in npipe_wait ----------------------------------------------------------------

    private int ReadBlocking(Span<byte> buffer, CancellationToken cancellationToken)
    {
        // When the last read had to wait, this one most likely will too (a peer that answers
        // requests): wait first. On Linux the wait receives inside the kernel, so the bytes come
        // with the wake-up and a read that must wait costs one system call, as SIP's blocking
        // recv does, instead of a read that finds nothing, the wait, and the read. Where bytes are
        // already there the wait returns at once.
        bool waited = _readWaited && !buffer.IsEmpty;
        if (waited)
            WaitOn(NativeFlags.Readable, cancellationToken);
        while (true)
        {
            ThrowIfDisposed();
            if (_pipe.TryRead(buffer, out int n))
            {
                _readWaited = waited;
                return n;
            }
            WaitOn(NativeFlags.Readable, cancellationToken);
            waited = true;
        }
    }

    private void WriteBlocking(ReadOnlySpan<byte> buffer, CancellationToken cancellationToken)
    {
        bool first = true;
        while (first || !buffer.IsEmpty)
        {
            ThrowIfDisposed();
            if (_pipe.TryWrite(buffer, out int n))
            {
                first = false;
                buffer = buffer.Slice(n);
                continue;
            }
            WaitOn(NativeFlags.Writable, cancellationToken);
        }
    }

    // `attempt` until it says done, waiting for `interests` in between.
    private void Block(Func<bool> attempt, uint interests, CancellationToken cancellationToken)
    {
        while (true)
        {
            ThrowIfDisposed();
            if (attempt())
                return;
            WaitOn(interests, cancellationToken);
        }
    }

    // One wait in npipe_wait until `interests` hold: forever, or in slices while a token can cancel.
    private void WaitOn(uint interests, CancellationToken cancellationToken)
    {
        int slice = cancellationToken.CanBeCanceled ? CancelSliceMs : -1;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int rc;
            try
            {
                rc = NativeMethods.Wait(_pipe.SafeHandle, interests, slice);
            }
            catch (ObjectDisposedException)
            {
                throw new ObjectDisposedException(nameof(NpipeStream));
            }
            if (rc > 0)
                return;
            if (rc == 0)
                continue;
            ThrowIfDisposed(); // a close from another thread ends the wait with NPIPE_EBADF
            Check.Status(rc, "npipe_wait");
        }
    }

    // A sync call on either binding: `attempt` until done.
    private void SyncUntil(Func<bool> attempt, uint interests, Registration.Direction d)
    {
        if (SyncIsOnWait())
        {
            Block(attempt, interests, CancellationToken.None);
            return;
        }
        Registration reg = _registration!;
        while (true)
        {
            int seq = Sequence(reg, d);
            if (attempt())
                return;
            reg.WaitAsync(d, seq, CancellationToken.None).AsTask().GetAwaiter().GetResult();
        }
    }

    // Flush and drain: done() until it says so. On the reactor, the next Write event follows the end
    // of a flush or drain. npipe_wait's WRITABLE holds as soon as there is room, so on a wait-bound
    // stream the pipe is kept driven in short, growing waits (1 ms doubling to 50 ms) between checks.
    private void UntilWritable(Func<bool> done)
    {
        if (!SyncIsOnWait())
        {
            SyncUntil(done, NativeFlags.Writable, Registration.Direction.Write);
            return;
        }
        int pause = 1;
        while (true)
        {
            ThrowIfDisposed();
            if (done())
                return;
            int rc = NativeMethods.Wait(_pipe.SafeHandle, NativeFlags.Readable, pause);
            if (rc > 0)
                Thread.Sleep(pause); // unread data makes that wait return at once
            else if (rc < 0)
            {
                ThrowIfDisposed();
                Check.Status(rc, "npipe_wait");
            }
            pause = Math.Min(pause * 2, 50);
        }
    }

    private Task UntilWritableOnPool(Func<bool> done, CancellationToken cancellationToken) =>
        Task.Run(() => UntilWritable(done), cancellationToken);

    private async Task UntilWritableAsync(Func<bool> done, CancellationToken cancellationToken)
    {
        Registration? reg = AsyncRegistration();
        if (reg is null)
        {
            await UntilWritableOnPool(done, cancellationToken).ConfigureAwait(false);
            return;
        }
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int seq = Sequence(reg, Registration.Direction.Write);
            if (done())
                return;
            await reg.WaitAsync(Registration.Direction.Write, seq, cancellationToken).ConfigureAwait(false);
        }
    }

    private int Sequence(Registration reg, Registration.Direction d)
    {
        ThrowIfDisposed();
        return reg.Sequence(d);
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed != 0, this);
}
