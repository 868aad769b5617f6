using System;
using System.IO;
using System.Threading;
using System.Threading.Tasks;

namespace Npipe;

/// <summary>
/// A <see cref="Stream"/> over one npipe pipe end, driven by an <see cref="NpipeReactor"/> (by default
/// <see cref="NpipeReactor.Shared"/>): <see cref="ReadAsync(Memory{byte}, CancellationToken)"/>,
/// <see cref="WriteAsync(ReadOnlyMemory{byte}, CancellationToken)"/> and <see cref="FlushAsync(CancellationToken)"/>
/// try the non-blocking call and, when it would block, await the reactor's next readiness event —
/// no thread is blocked per operation. The synchronous methods block the calling thread only.
/// <para>Cancellation: a cancelled token ends the wait with <see cref="OperationCanceledException"/>; no
/// bytes are lost (a read consumes nothing until it returns, a write's accepted bytes stay sent).</para>
/// <para>Dispose: operations still waiting when the stream is disposed fail with
/// <see cref="ObjectDisposedException"/>; later calls throw it as well. Disposing closes the pipe at
/// once (bytes already written keep draining for the linger time); await
/// <see cref="FlushAsync(CancellationToken)"/> first to know they left.</para>
/// </summary>
public sealed class NpipeStream : Stream
{
    private readonly NpipePipe _pipe;
    private readonly Registration _registration;
    private readonly bool _canRead;
    private readonly bool _canWrite;
    private int _disposed;

    /// <summary>Wraps <paramref name="pipe"/> (which must not be registered with any poll yet) and takes
    /// ownership of it. The pipe is registered with <paramref name="reactor"/> (default: the shared one).</summary>
    public NpipeStream(NpipePipe pipe, NpipeReactor? reactor = null)
    {
        ArgumentNullException.ThrowIfNull(pipe);
        _pipe = pipe;
        NpipeInfo info = pipe.GetInfo();
        _canRead = !info.OutboundOnly;
        _canWrite = !info.InboundOnly;
        IsMessageMode = info.MessageMode;
        _registration = (reactor ?? NpipeReactor.Shared).Register(pipe);
    }

    /// <summary>Creates a server instance of <paramref name="name"/> wrapped in a stream; then await
    /// <see cref="WaitForConnectionAsync"/>.</summary>
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
    /// </summary>
    public static async Task<NpipeStream> ConnectAsync(string name, NpipeClientOptions? options = null,
        NpipeReactor? reactor = null, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        NpipeClient client = NpipeClient.StartOpen(name, options);
        NpipeStream stream;
        try
        {
            stream = new NpipeStream(client, reactor);
        }
        catch
        {
            client.Dispose();
            throw;
        }
        try
        {
            while (true)
            {
                int seq = stream.Sequence(Registration.Direction.Connect);
                if (client.TryFinishOpen())
                    return stream;
                await stream._registration.WaitAsync(Registration.Direction.Connect, seq, cancellationToken).ConfigureAwait(false);
            }
        }
        catch
        {
            stream.Dispose(); // closing a connecting pipe cancels the attempt at once
            throw;
        }
    }

    /// <summary>The wrapped pipe (for <see cref="NpipePipe.GetInfo"/> and friends; do not register it elsewhere).</summary>
    public NpipePipe Pipe => _pipe;

    /// <summary>True while a peer is connected and has not left (<c>NPIPE_INFO_CONNECTED</c>), on both
    /// platforms: false before a server's client came, after the peer closed its end (even with unread
    /// data still buffered here), after <see cref="Disconnect"/> and once disposed.</summary>
    public bool IsConnected => _disposed == 0 && !_pipe.IsDisposed && _pipe.GetInfo().IsConnected;

    /// <summary>True when the pipe was created or opened in message mode: each read returns at most one message.</summary>
    public bool IsMessageMode { get; }

    /// <summary>Waits until a client is connected to this server stream.</summary>
    public async Task WaitForConnectionAsync(CancellationToken cancellationToken = default)
    {
        NpipeServer server = _pipe as NpipeServer ?? throw new InvalidOperationException("not a server stream");
        while (true)
        {
            int seq = Sequence(Registration.Direction.Connect);
            if (server.TryConnect())
                return;
            await _registration.WaitAsync(Registration.Direction.Connect, seq, cancellationToken).ConfigureAwait(false);
        }
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
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int seq = Sequence(Registration.Direction.Read);
            if (_pipe.TryRead(buffer.Span, out int n))
                return n;
            await _registration.WaitAsync(Registration.Direction.Read, seq, cancellationToken).ConfigureAwait(false);
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
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int seq = Sequence(Registration.Direction.Read);
            if (_pipe.TryReadMessage(buffer.Span, out int n, out NpipeMessageFlags flags))
                return (n, flags);
            await _registration.WaitAsync(Registration.Direction.Read, seq, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc/>
    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        bool first = true;
        while (first || !buffer.IsEmpty)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int seq = Sequence(Registration.Direction.Write);
            if (_pipe.TryWrite(buffer.Span, out int n))
            {
                first = false;
                buffer = buffer.Slice(n);
                continue;
            }
            await _registration.WaitAsync(Registration.Direction.Write, seq, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <summary>Completes when every byte written so far has been handed to the OS and completed.</summary>
    public override Task FlushAsync(CancellationToken cancellationToken) => UntilWritable(_pipe.TryFlush, cancellationToken);

    /// <summary>
    /// Completes when the peer has read every byte written so far, not just the OS (<see cref="FlushAsync(CancellationToken)"/>):
    /// no thread waits, the reactor's poll re-checks. A server that answers and hangs up writes, awaits
    /// this, then calls <see cref="Disconnect"/>, which would otherwise discard what the client has not
    /// read yet. Throws <see cref="NpipeException"/> (<see cref="NpipeErrorCode.BrokenPipe"/>) when the
    /// peer left before reading everything. Under Wine a pipe counts as drained once flushed.
    /// </summary>
    public Task DrainAsync(CancellationToken cancellationToken = default) => UntilWritable(_pipe.TryDrain, cancellationToken);

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
        while (true)
        {
            int seq = Sequence(Registration.Direction.Read);
            if (_pipe.TryRead(buffer, out int n))
                return n;
            _registration.WaitAsync(Registration.Direction.Read, seq, CancellationToken.None).GetAwaiter().GetResult();
        }
    }

    /// <inheritdoc/>
    public override int Read(byte[] buffer, int offset, int count)
    {
        ValidateBufferArguments(buffer, offset, count);
        return Read(buffer.AsSpan(offset, count));
    }

    /// <inheritdoc/>
    public override void Write(ReadOnlySpan<byte> buffer)
    {
        bool first = true;
        while (first || !buffer.IsEmpty)
        {
            int seq = Sequence(Registration.Direction.Write);
            if (_pipe.TryWrite(buffer, out int n))
            {
                first = false;
                buffer = buffer.Slice(n);
                continue;
            }
            _registration.WaitAsync(Registration.Direction.Write, seq, CancellationToken.None).GetAwaiter().GetResult();
        }
    }

    /// <inheritdoc/>
    public override void Write(byte[] buffer, int offset, int count)
    {
        ValidateBufferArguments(buffer, offset, count);
        Write(buffer.AsSpan(offset, count));
    }

    /// <inheritdoc/>
    public override void Flush() => FlushAsync(CancellationToken.None).GetAwaiter().GetResult();

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _registration.Close(new ObjectDisposedException(nameof(NpipeStream)));
            _pipe.Dispose();
        }
        base.Dispose(disposing);
    }

    // Tries `done` until it says so, awaiting the reactor's next Write event in between (flush and
    // drain both end with NPIPE_WRITABLE).
    private async Task UntilWritable(Func<bool> done, CancellationToken cancellationToken)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int seq = Sequence(Registration.Direction.Write);
            if (done())
                return;
            await _registration.WaitAsync(Registration.Direction.Write, seq, cancellationToken).ConfigureAwait(false);
        }
    }

    private int Sequence(Registration.Direction d)
    {
        ThrowIfDisposed();
        return _registration.Sequence(d);
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed != 0, this);
}
