// The test scenarios, framework-free: each public static method returning Task is one case. xunit
// runs them through Tests.cs; Npipe.SelfTest runs them all under Wine against npipe.dll.
// Every await is bounded (Util.Within / Util.Bound); a hang fails the case instead of the run.
using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Pipes;
using System.Linq;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace Npipe.Tests;

public static class Scenarios
{
    private const int MiB = 1 << 20;

    // ---- A. interop with .NET's own System.IO.Pipes ----------------------------------------------

    /// .NET NamedPipeClientStream(".", name) against an npipe server created as `name`:
    /// 1 MiB each way at the same time, checked by SHA-256.
    public static async Task Interop_DotnetClient_NpipeServer_1MiB_BothWays()
    {
        string name = Util.UniqueName("ia");
        byte[] toClient = Util.RandomBytes(MiB, 1), toServer = Util.RandomBytes(MiB, 2);
        using var server = NpipeStream.CreateServer(name);
        var accept = server.WaitForConnectionAsync();
        using var client = new NamedPipeClientStream(".", name, PipeDirection.InOut, PipeOptions.Asynchronous);
        await client.ConnectAsync(10_000).Within();
        await accept.Within();

        var gotAtClient = new byte[MiB];
        var gotAtServer = new byte[MiB];
        await Task.WhenAll(
            WriteChunked(server, toClient, 64 * 1024),
            client.ReadExactlyAsync(gotAtClient).AsTask(),
            WriteChunked(client, toServer, 50_000),
            server.ReadExactlyAsync(gotAtServer).AsTask()).Within();
        Expect.Equal(Util.Sha256(toClient), Util.Sha256(gotAtClient), "server -> .NET client checksum");
        Expect.Equal(Util.Sha256(toServer), Util.Sha256(gotAtServer), ".NET client -> server checksum");

        // Orderly end: the .NET client leaves, the npipe server reads EOF.
        client.Dispose();
        Expect.Equal(0, await server.ReadAsync(new byte[16]).Within(), "EOF at the npipe server after the .NET client left");
    }

    /// npipe client against a .NET NamedPipeServerStream(name): 1 MiB each way, SHA-256 checked.
    public static async Task Interop_NpipeClient_DotnetServer_1MiB_BothWays()
    {
        string name = Util.UniqueName("ib");
        byte[] toClient = Util.RandomBytes(MiB, 3), toServer = Util.RandomBytes(MiB, 4);
        using var server = new NamedPipeServerStream(name, PipeDirection.InOut, 1, PipeTransmissionMode.Byte, PipeOptions.Asynchronous);
        var accept = server.WaitForConnectionAsync();
        using var client = await NpipeStream.ConnectAsync(name, Util.Patient()).Within();
        await accept.Within();

        var gotAtClient = new byte[MiB];
        var gotAtServer = new byte[MiB];
        await Task.WhenAll(
            WriteChunked(server, toClient, 64 * 1024),
            client.ReadExactlyAsync(gotAtClient).AsTask(),
            WriteChunked(client, toServer, 50_000),
            server.ReadExactlyAsync(gotAtServer).AsTask()).Within();
        Expect.Equal(Util.Sha256(toClient), Util.Sha256(gotAtClient), ".NET server -> npipe client checksum");
        Expect.Equal(Util.Sha256(toServer), Util.Sha256(gotAtServer), "npipe client -> .NET server checksum");

        await client.FlushAsync().Within();
        client.Dispose();
        Expect.Equal(0, await server.ReadAsync(new byte[16]).Within(), "EOF at the .NET server after the npipe client left");
    }

    /// The raw readiness API (no reactor, no Stream) against a .NET client: TryRead/TryWrite until
    /// they would block, driven by NpipePoll events.
    public static async Task Interop_DotnetClient_RawPollServer()
    {
        string name = Util.UniqueName("ic");
        byte[] payload = Util.RandomBytes(256 * 1024, 5);
        using var poll = new NpipePoll();
        using var server = new NpipeServer(name);
        poll.Register(server, 7, NpipeInterest.ReadWrite);
        Expect.True(!server.TryConnect(), "no client yet: TryConnect is pending");

        using var client = new NamedPipeClientStream(".", name, PipeDirection.InOut, PipeOptions.Asynchronous);
        var connect = client.ConnectAsync(10_000);
        Util.WaitFor(poll, 7, NpipeEventFlags.Connected | NpipeEventFlags.Writable);
        await connect.Within();
        Expect.True(server.TryConnect(), "connected after the Connected event");

        // .NET writes, the raw server reads until EAGAIN after each Readable event.
        var write = client.WriteAsync(payload).AsTask();
        var got = new MemoryStream();
        var buf = new byte[10_000];
        var events = new NpipeEvent[4];
        var deadline = DateTime.UtcNow + Util.Bound;
        while (got.Length < payload.Length)
        {
            if (server.TryRead(buf, out int n))
            {
                Expect.True(n > 0, "no EOF in the middle of the payload");
                got.Write(buf, 0, n);
                continue;
            }
            Expect.True(DateTime.UtcNow < deadline, "payload arrived in time");
            poll.Wait(events, TimeSpan.FromMilliseconds(500));
        }
        await write.Within();
        Expect.Equal(Util.Sha256(payload), Util.Sha256(got.ToArray()), ".NET client -> raw server checksum");

        // The raw server answers; the .NET client reads it.
        byte[] answer = Encoding.UTF8.GetBytes("thanks, .NET");
        Expect.True(server.TryWrite(answer, out int w) && w == answer.Length, "small write taken at once");
        var back = new byte[answer.Length];
        await client.ReadExactlyAsync(back).AsTask().Within();
        Expect.Equal("thanks, .NET", Encoding.UTF8.GetString(back), "answer at the .NET client");
    }

    /// 8 .NET clients at once on 8 npipe server instances, and 8 npipe clients at once on 8 .NET server
    /// instances; every connection echoes its own payload.
    public static async Task Interop_ManyClients_BothWays()
    {
        const int count = 8;
        string name = Util.UniqueName("imn");
        var npipeServers = Enumerable.Range(0, count).Select(_ => NpipeStream.CreateServer(name)).ToList();
        try
        {
            var serving = npipeServers.Select(s => EchoOnce(s, () => s.WaitForConnectionAsync())).ToList();
            await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
            {
                using var c = new NamedPipeClientStream(".", name, PipeDirection.InOut, PipeOptions.Asynchronous);
                await c.ConnectAsync(10_000).Within();
                await RoundTrip(c, Util.RandomBytes(30_000 + i, 200 + i), $".NET client {i}");
            })).Within();
            await Task.WhenAll(serving).Within();
        }
        finally
        {
            foreach (var s in npipeServers)
                s.Dispose();
        }

        name = Util.UniqueName("imd");
        var dotnetServers = Enumerable.Range(0, count)
            .Select(_ => new NamedPipeServerStream(name, PipeDirection.InOut, count, PipeTransmissionMode.Byte, PipeOptions.Asynchronous))
            .ToList();
        try
        {
            var serving = dotnetServers.Select(s => EchoOnce(s, () => s.WaitForConnectionAsync())).ToList();
            await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
            {
                using var c = await NpipeStream.ConnectAsync(name, Util.Patient()).Within();
                await RoundTrip(c, Util.RandomBytes(30_000 + i, 300 + i), $"npipe client {i}");
            })).Within();
            await Task.WhenAll(serving).Within();
        }
        finally
        {
            foreach (var s in dotnetServers)
                s.Dispose();
        }

        static async Task EchoOnce(Stream s, Func<Task> accept)
        {
            await accept().Within();
            var buf = new byte[8192];
            int n;
            while ((n = await s.ReadAsync(buf).Within()) > 0)
                await s.WriteAsync(buf.AsMemory(0, n)).Within();
            // No flush after EOF: the client has read its echo before leaving, and on Windows .NET's
            // PipeStream throws "Pipe is broken" from FlushAsync once a read has returned 0.
        }

        static async Task RoundTrip(Stream c, byte[] payload, string who)
        {
            var back = new byte[payload.Length];
            var reading = c.ReadExactlyAsync(back).AsTask();
            await c.WriteAsync(payload).Within();
            await reading.Within();
            Expect.Equal(Util.Sha256(payload), Util.Sha256(back), who + " echo");
        }
    }

    /// One-way ends against .NET: an outbound-only npipe server to a .NET client opened for reading, and
    /// an inbound-only npipe client of a .NET server opened for writing.
    public static async Task Interop_OneWay_BothDirections()
    {
        byte[] payload = Util.RandomBytes(200_000, 7);

        string name = Util.UniqueName("ow1");
        using (var server = NpipeStream.CreateServer(name, new NpipeServerOptions { OutboundOnly = true }))
        {
            Expect.True(server.CanWrite && !server.CanRead, "outbound-only server stream can only write");
            var accept = server.WaitForConnectionAsync();
            using var client = new NamedPipeClientStream(".", name, PipeDirection.In, PipeOptions.Asynchronous);
            await client.ConnectAsync(10_000).Within();
            await accept.Within();
            var got = new byte[payload.Length];
            await Task.WhenAll(WriteChunked(server, payload, 32 * 1024), client.ReadExactlyAsync(got).AsTask()).Within();
            Expect.Equal(Util.Sha256(payload), Util.Sha256(got), "outbound-only npipe server -> .NET reader");
        }

        name = Util.UniqueName("ow2");
        using (var server = new NamedPipeServerStream(name, PipeDirection.Out, 1, PipeTransmissionMode.Byte, PipeOptions.Asynchronous))
        {
            var accept = server.WaitForConnectionAsync();
            using var client = await NpipeStream.ConnectAsync(name, Util.Patient() with { InboundOnly = true }).Within();
            Expect.True(client.CanRead && !client.CanWrite, "inbound-only client stream can only read");
            await accept.Within();
            var got = new byte[payload.Length];
            await Task.WhenAll(WriteChunked(server, payload, 32 * 1024), client.ReadExactlyAsync(got).AsTask()).Within();
            Expect.Equal(Util.Sha256(payload), Util.Sha256(got), ".NET writer -> inbound-only npipe client");
        }
    }

    /// Windows only: message mode between .NET (PipeTransmissionMode.Message) and npipe, both ways.
    public static async Task Windows_Interop_MessageMode()
    {
        if (!OperatingSystem.IsWindows())
            throw new PlatformNotSupportedException("message-mode interop needs Windows pipes");
        string[] messages = { "first", "", "third message", new string('m', 100_000) };

        string name = Util.UniqueName("wm1");
        using (var server = new NamedPipeServerStream(name, PipeDirection.InOut, 1, PipeTransmissionMode.Message, PipeOptions.Asynchronous))
        {
            var accept = server.WaitForConnectionAsync();
            using var client = await NpipeStream.ConnectAsync(name, Util.Patient(message: true)).Within();
            await accept.Within();
            // The writer runs beside the reader: a message larger than the pipe's buffer completes only
            // as the reader takes it.
            var writing = Task.Run(async () =>
            {
                foreach (var m in messages)
                    await server.WriteAsync(Encoding.UTF8.GetBytes(m));
            });
            var buf = new byte[200_000];
            foreach (var m in messages.Where(m => m.Length > 0)) // npipe_read skips empty messages
            {
                var got = new MemoryStream();
                do
                {
                    int n = await client.ReadAsync(buf).Within();
                    got.Write(buf, 0, n);
                }
                while (got.Length < Encoding.UTF8.GetByteCount(m));
                Expect.Equal(m, Encoding.UTF8.GetString(got.ToArray()), "message from the .NET server");
            }
            await writing.Within();
            writing = Task.Run(async () =>
            {
                foreach (var m in messages.Where(m => m.Length > 0))
                    await client.WriteAsync(Encoding.UTF8.GetBytes(m));
            });
            foreach (var m in messages.Where(m => m.Length > 0))
            {
                var got = new MemoryStream();
                do
                {
                    int n = await server.ReadAsync(buf).Within();
                    got.Write(buf, 0, n);
                }
                while (!server.IsMessageComplete);
                Expect.Equal(m, Encoding.UTF8.GetString(got.ToArray()), "message at the .NET server, boundaries kept");
            }
            await writing.Within();
        }
    }

    /// On Linux a bare name resolves to the socket path .NET's pipes use.
    public static Task Interop_ResolveName_MatchesDotnetPath()
    {
        string resolved = NpipeLibrary.ResolveName("some-pipe");
        string expected = OperatingSystem.IsWindows() ? @"\\.\pipe\some-pipe" : Path.Combine(Path.GetTempPath(), "CoreFxPipe_some-pipe");
        Expect.Equal(expected, resolved, "resolved name");
        return Task.CompletedTask;
    }

    // ---- streams -------------------------------------------------------------------------------

    /// Line echo through StreamReader/StreamWriter on both ends.
    public static async Task Stream_Echo_Lines()
    {
        string name = Util.UniqueName("echo");
        using var server = NpipeStream.CreateServer(name);
        var serverTask = Task.Run(async () =>
        {
            await server.WaitForConnectionAsync().Within();
            using var reader = new StreamReader(server, leaveOpen: true);
            using var writer = new StreamWriter(server, leaveOpen: true) { AutoFlush = true };
            string? line;
            while ((line = await reader.ReadLineAsync().Within()) is not null)
                await writer.WriteLineAsync("echo: " + line).Within();
        });
        using (var client = await NpipeStream.ConnectAsync(name, Util.Patient()).Within())
        {
            using var reader = new StreamReader(client, leaveOpen: true);
            using var writer = new StreamWriter(client, leaveOpen: true) { AutoFlush = true };
            foreach (var text in new[] { "hello", "wörld ✓", new string('x', 100_000) })
            {
                await writer.WriteLineAsync(text).Within();
                Expect.Equal("echo: " + text, await reader.ReadLineAsync().Within(), "echoed line");
            }
        }
        await serverTask.Within(); // the server saw EOF after the client left
    }

    /// 8 MiB through CopyToAsync, checked by SHA-256; small OS buffers force many would-block turns.
    public static async Task Stream_Bulk_CopyTo_Checksum()
    {
        string name = Util.UniqueName("bulk");
        byte[] data = Util.RandomBytes(8 * MiB, 6);
        using var server = NpipeStream.CreateServer(name, new NpipeServerOptions { InBufferSize = 4096, OutBufferSize = 4096 });
        var accept = server.WaitForConnectionAsync();
        using var client = await NpipeStream.ConnectAsync(name, Util.Patient()).Within();
        await accept.Within();

        var sink = new MemoryStream();
        var receive = server.CopyToAsync(sink, 81920);
        await new MemoryStream(data).CopyToAsync(client, 100_000).Within();
        await client.FlushAsync().Within();
        client.Dispose();
        await receive.Within();
        Expect.Equal(data.Length, (int)sink.Length, "bytes received");
        Expect.Equal(Util.Sha256(data), Util.Sha256(sink.ToArray()), "checksum");
        NpipeInfo info = server.Pipe.GetInfo();
        Expect.Equal((ulong)data.Length, info.BytesRead, "server's bytes_read counter");
    }

    /// 16 clients at once against 16 server instances of one name; each echoes its own payload.
    public static async Task Stream_ManyConcurrentClients()
    {
        const int count = 16;
        string name = Util.UniqueName("many");
        var servers = Enumerable.Range(0, count).Select(_ => NpipeStream.CreateServer(name)).ToList();
        try
        {
            var serverTasks = servers.Select(async s =>
            {
                await s.WaitForConnectionAsync().Within();
                var buf = new byte[4096];
                int n;
                while ((n = await s.ReadAsync(buf).Within()) > 0)
                    await s.WriteAsync(buf.AsMemory(0, n)).Within();
                await s.FlushAsync().Within();
            }).ToList();

            var clientTasks = Enumerable.Range(0, count).Select(async i =>
            {
                byte[] payload = Util.RandomBytes(20_000 + i * 1000, 100 + i);
                using var c = await NpipeStream.ConnectAsync(name, Util.Patient()).Within();
                var read = new byte[payload.Length];
                var reading = c.ReadExactlyAsync(read).AsTask();
                await c.WriteAsync(payload).Within();
                await reading.Within();
                Expect.Equal(Util.Sha256(payload), Util.Sha256(read), $"client {i} echo");
            }).ToList();

            await Task.WhenAll(clientTasks).Within();
            await Task.WhenAll(serverTasks).Within();
        }
        finally
        {
            foreach (var s in servers)
                s.Dispose();
        }
    }

    /// Message mode: boundaries survive (including an empty message), reads never merge messages, and
    /// a small buffer gets a message in parts flagged Partial.
    public static async Task Stream_MessageMode_Boundaries()
    {
        string name = Util.UniqueName("msg");
        using var server = NpipeStream.CreateServer(name, new NpipeServerOptions { MessageMode = true });
        var accept = server.WaitForConnectionAsync();
        using var client = await NpipeStream.ConnectAsync(name, Util.Patient(message: true)).Within();
        await accept.Within();
        Expect.True(server.IsMessageMode && client.IsMessageMode, "both ends in message mode");

        string[] messages = { "one", "two two", new string('3', 3000) };
        foreach (var m in messages)
            await client.WriteAsync(Encoding.UTF8.GetBytes(m)).Within();
        await client.FlushAsync().Within();

        var buf = new byte[65536];
        foreach (var m in messages)
        {
            int n = await server.ReadAsync(buf).Within();
            Expect.Equal(m, Encoding.UTF8.GetString(buf, 0, n), "one read = one message");
        }

        // ReadMessageAsync: an empty message and a message in parts.
        await client.WriteAsync(ReadOnlyMemory<byte>.Empty).Within();
        await client.WriteAsync("0123456789"u8.ToArray()).Within();
        var (e0, ef) = await server.ReadMessageAsync(buf).AsTask().Within();
        Expect.True(e0 == 0 && ef == NpipeMessageFlags.Empty, $"empty message via ReadMessageAsync ({e0}, {ef})");
        var pieces = new StringBuilder();
        var four = new byte[4];
        while (true)
        {
            var (pn, pf) = await server.ReadMessageAsync(four).AsTask().Within();
            pieces.Append(Encoding.ASCII.GetString(four, 0, pn));
            if ((pf & NpipeMessageFlags.Partial) == 0)
                break;
        }
        Expect.Equal("0123456789", pieces.ToString(), "message in parts via ReadMessageAsync");

        // Raw message reads: empty message and partial reads.
        using var poll = new NpipePoll();
        string name2 = Util.UniqueName("msg2");
        using var s2 = new NpipeServer(name2, new NpipeServerOptions { MessageMode = true });
        poll.Register(s2, 1, NpipeInterest.ReadWrite);
        s2.TryConnect();
        using var c2 = NpipeClient.Open(name2, Util.Patient(message: true));
        poll.Register(c2, 2, NpipeInterest.ReadWrite);
        Util.WaitFor(poll, 1, NpipeEventFlags.Connected | NpipeEventFlags.Writable);
        Expect.True(s2.TryConnect(), "raw message server connected");
        Expect.True(c2.TryWrite(ReadOnlySpan<byte>.Empty, out int w0) && w0 == 0, "empty message sent");
        Expect.True(c2.TryWrite("abcdefghij"u8, out int w1) && w1 == 10, "ten-byte message taken whole");
        Util.WaitFor(poll, 1, NpipeEventFlags.Readable);
        var small = new byte[4];
        int got;
        NpipeMessageFlags flags;
        Expect.True(await Retry(() => s2.TryReadMessage(small, out got, out flags) ? (got, flags) : null) is var (g0, f0)
                    && g0 == 0 && f0 == NpipeMessageFlags.Empty, "empty message reported as Empty");
        var parts = new StringBuilder();
        while (true)
        {
            var (n, f) = await Retry(() => s2.TryReadMessage(small, out got, out flags) ? (got, flags) : null);
            parts.Append(Encoding.ASCII.GetString(small, 0, n));
            if ((f & NpipeMessageFlags.Partial) == 0)
                break;
        }
        Expect.Equal("abcdefghij", parts.ToString(), "message read in parts");

        async Task<(int, NpipeMessageFlags)> Retry(Func<(int, NpipeMessageFlags)?> attempt)
        {
            var deadline = DateTime.UtcNow + Util.Bound;
            while (true)
            {
                if (attempt() is { } r)
                    return r;
                Expect.True(DateTime.UtcNow < deadline, "message arrived in time");
                poll.Wait(new NpipeEvent[4], TimeSpan.FromMilliseconds(100));
                await Task.Yield();
            }
        }
    }

    /// A cancelled ReadAsync throws OperationCanceledException, consumes nothing, and the stream keeps
    /// working; cancelled WaitForConnectionAsync and ConnectAsync too.
    public static async Task Stream_Cancellation()
    {
        string name = Util.UniqueName("cancel");
        using var server = NpipeStream.CreateServer(name);

        using (var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100)))
            await Expect.ThrowsAsync<OperationCanceledException>(() => server.WaitForConnectionAsync(cts.Token), "cancelled accept");

        var accept = server.WaitForConnectionAsync();
        using var client = await NpipeStream.ConnectAsync(name, Util.Patient()).Within();
        await accept.Within();

        using (var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100)))
            await Expect.ThrowsAsync<OperationCanceledException>(() => client.ReadAsync(new byte[8], cts.Token).AsTask(), "cancelled read");
        using (var cts = new CancellationTokenSource())
        {
            cts.Cancel();
            await Expect.ThrowsAsync<OperationCanceledException>(() => client.ReadAsync(new byte[8], cts.Token).AsTask(), "pre-cancelled read");
        }

        await server.WriteAsync("still here"u8.ToArray()).Within();
        var buf = new byte[10];
        await client.ReadExactlyAsync(buf).AsTask().Within();
        Expect.Equal("still here", Encoding.ASCII.GetString(buf), "data after cancellations");

        using (var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100)))
            await Expect.ThrowsAsync<OperationCanceledException>(
                () => NpipeStream.ConnectAsync(Util.UniqueName("absent"), new NpipeClientOptions { Timeout = System.Threading.Timeout.InfiniteTimeSpan }, cancellationToken: cts.Token),
                "cancelled connect to an absent server");
    }

    /// Disposing a stream while a ReadAsync waits completes that read with ObjectDisposedException;
    /// the peer then reads EOF; later calls throw ObjectDisposedException.
    public static async Task Stream_DisposeWhileReadPending()
    {
        string name = Util.UniqueName("disp");
        using var server = NpipeStream.CreateServer(name);
        var accept = server.WaitForConnectionAsync();
        var client = await NpipeStream.ConnectAsync(name, Util.Patient()).Within();
        await accept.Within();

        var pending = client.ReadAsync(new byte[64]).AsTask();
        await Task.Delay(50);
        Expect.True(!pending.IsCompleted, "read is pending");
        client.Dispose();
        await Expect.ThrowsAsync<ObjectDisposedException>(() => pending, "pending read after Dispose", seconds: 5);
        await Expect.ThrowsAsync<ObjectDisposedException>(() => client.ReadAsync(new byte[1]).AsTask(), "read after Dispose");
        Expect.Throws<ObjectDisposedException>(() => client.Write(new byte[1]), "write after Dispose");
        Expect.True(!client.CanRead && !client.CanWrite, "disposed stream can neither read nor write");
        Expect.Equal(0, await server.ReadAsync(new byte[8]).Within(), "peer reads EOF");
    }

    /// The peer leaving: reads return 0 (sticky), writes eventually throw BrokenPipe.
    public static async Task Stream_PeerGone_EofAndBrokenPipe()
    {
        string name = Util.UniqueName("gone");
        using var server = NpipeStream.CreateServer(name);
        var accept = server.WaitForConnectionAsync();
        var client = await NpipeStream.ConnectAsync(name, Util.Patient()).Within();
        await accept.Within();
        client.Dispose();

        Expect.Equal(0, await server.ReadAsync(new byte[8]).Within(), "EOF");
        Expect.Equal(0, await server.ReadAsync(new byte[8]).Within(), "EOF again (sticky)");
        var ex = await Expect.ThrowsAsync<NpipeException>(async () =>
        {
            for (int i = 0; i < 1000; i++)
            {
                await server.WriteAsync(new byte[1024]).Within();
                await Task.Delay(1);
            }
        }, "write to a gone peer");
        Expect.Equal(NpipeErrorCode.BrokenPipe, ex.Code, "code");
        Expect.True(ex is IOException, "NpipeException is an IOException");
    }

    /// Synchronous Read/Write/Flush work too (blocking only the calling thread); a server instance can
    /// disconnect and accept the next client.
    public static async Task Stream_SyncApi_And_Reconnect()
    {
        string name = Util.UniqueName("sync");
        using var server = NpipeStream.CreateServer(name);
        for (int round = 0; round < 2; round++)
        {
            var accept = server.WaitForConnectionAsync();
            using (var client = await NpipeStream.ConnectAsync(name, Util.Patient()).Within())
            {
                await accept.Within();
                var text = $"round {round}";
                await Task.Run(() =>
                {
                    client.Write(Encoding.ASCII.GetBytes(text));
                    client.Flush();
                    var buf = new byte[text.Length];
                    server.ReadExactly(buf);
                    Expect.Equal(text, Encoding.ASCII.GetString(buf), "sync round trip");
                }).Within();
            }
            server.Disconnect();
        }
    }

    /// Streams used synchronously from the start wait in npipe_wait on the calling thread: sync
    /// Connect / WaitForConnection / Write / Read / Flush / WaitForPipeDrain, IsConnected on both ends,
    /// async calls on such a stream (cancellable), and Dispose ending a blocked sync Read with
    /// ObjectDisposedException; the peer then reads EOF and sees IsConnected false.
    public static async Task Stream_WaitBound_SyncApi()
    {
        string name = Util.UniqueName("wsync");
        using var server = NpipeStream.CreateServer(name);
        Expect.True(!server.IsConnected, "no client yet");
        var connecting = Task.Run(() => NpipeStream.Connect(name, 10_000));
        await Task.Run(server.WaitForConnection).Within();
        var client = await connecting.Within();
        Expect.True(server.IsConnected && client.IsConnected, "both ends connected");

        byte[] big = Util.RandomBytes(300_000, 77); // more than the OS buffers: Write must wait for room
        var got = new byte[big.Length];
        var reading = Task.Run(() => client.ReadExactly(got));
        await Task.Run(() =>
        {
            server.Write(big);
            server.Flush();
            server.WaitForPipeDrain(); // the client has read it all (under Wine: flushed)
        }).Within();
        await reading.Within();
        Expect.Equal(Util.Sha256(big), Util.Sha256(got), "300 KB through sync Write/Read");

        // Async calls on a wait-bound stream: cancellable, then they work.
        using (var cts = new CancellationTokenSource())
        {
            var pending = client.ReadAsync(new byte[4], cts.Token).AsTask();
            cts.Cancel();
            await Expect.ThrowsAsync<OperationCanceledException>(() => pending, "async read on a wait-bound stream, cancelled");
        }
        await server.WriteAsync("ping"u8.ToArray()).Within();
        var four = new byte[4];
        await client.ReadExactlyAsync(four).Within();
        Expect.Equal("ping", Encoding.ASCII.GetString(four), "async read on a wait-bound stream");

        // Dispose ends a sync Read blocked in npipe_wait (whether it started waiting before or after).
        var blocked = Task.Run(() => client.Read(new byte[8]));
        client.Dispose();
        await Expect.ThrowsAsync<ObjectDisposedException>(() => blocked, "blocked sync read after Dispose", seconds: 10);
        Expect.True(!client.IsConnected, "disposed: not connected");
        Expect.Equal(0, await Task.Run(() => server.Read(new byte[8])).Within(), "the server reads EOF");
        Expect.True(!server.IsConnected, "the peer left: not connected");
        Expect.Throws<ObjectDisposedException>(() => client.Write(new byte[1]), "write after Dispose");
    }

    /// The ConnectAsync overloads shaped like NamedPipeClientStream's: int and TimeSpan timeouts
    /// (TimeoutException when nobody comes), a token alone waits until a server appears.
    public static async Task Stream_ConnectAsync_Overloads()
    {
        string name = Util.UniqueName("ovl");
        await Expect.ThrowsAsync<TimeoutException>(() => NpipeStream.ConnectAsync(name, 100), "int timeout, nobody");
        await Expect.ThrowsAsync<TimeoutException>(() => NpipeStream.ConnectAsync(name, TimeSpan.FromMilliseconds(100)), "TimeSpan timeout, nobody");
        Expect.Throws<TimeoutException>(() => NpipeStream.Connect(name, 100), "sync Connect, int timeout, nobody");
        using var cts = Util.Timeout();
        var connecting = NpipeStream.ConnectAsync(name, cts.Token); // no timeout: waits for the server
        Expect.True(!connecting.IsCompleted, "waiting for a server");
        using var server = NpipeStream.CreateServer(name);
        var accept = server.WaitForConnectionAsync();
        using var client = await connecting.Within();
        await accept.Within();
        using var second = NpipeStream.CreateServer(name);
        var accept2 = second.WaitForConnectionAsync();
        using var client2 = await NpipeStream.ConnectAsync(name, Timeout.Infinite).Within();
        await accept2.Within();
        Expect.True(client.IsConnected && client2.IsConnected, "both connected");
    }

    /// ConnectAsync retries an absent server on timers until it appears (no thread blocked meanwhile).
    public static async Task Stream_ConnectAsync_WaitsForServer()
    {
        string name = Util.UniqueName("late");
        await ServerComesLater(name, NpipeStream.ConnectAsync(name, Util.Patient()));
    }

    /// `connecting` (a ConnectAsync to `name`) still waits 200 ms on, while no server exists; a
    /// server created then gets it, and a byte goes through.
    private static async Task ServerComesLater(string name, Task<NpipeStream> connecting)
    {
        await Task.Delay(200);
        Expect.True(!connecting.IsCompleted, "still waiting while no server exists");
        using var server = NpipeStream.CreateServer(name);
        var accept = server.WaitForConnectionAsync();
        using var client = await connecting.Within();
        await accept.Within();
        await OneByteThrough(client, server, 42);
    }

    private static async Task OneByteThrough(NpipeStream from, NpipeStream to, byte value)
    {
        await from.WriteAsync(new[] { value }).Within();
        var one = new byte[1];
        await to.ReadExactlyAsync(one).AsTask().Within();
        Expect.Equal(value, one[0], "the byte that went through");
    }

    /// ConnectAsync without a timeout waits, like NamedPipeClientStream.ConnectAsync(), until a
    /// server comes or the token is cancelled. Cancelling closes the connecting pipe at once: a
    /// server created afterwards sees no client.
    public static async Task Stream_ConnectAsync_NoTimeout_UntilServerOrCancelled()
    {
        string name = Util.UniqueName("notimeout");
        await ServerComesLater(name, NpipeStream.ConnectAsync(name));

        string absent = Util.UniqueName("cancelled");
        using (var cts = new CancellationTokenSource())
        {
            var cancelled = NpipeStream.ConnectAsync(absent, cancellationToken: cts.Token);
            await Task.Delay(100);
            Expect.True(!cancelled.IsCompleted, "waiting until cancelled");
            cts.Cancel();
            await Expect.ThrowsAsync<OperationCanceledException>(() => cancelled, "cancelled wait", seconds: 5);
        }
        using var late = NpipeStream.CreateServer(absent);
        var nobody = late.WaitForConnectionAsync();
        await Task.WhenAny(nobody, Task.Delay(300));
        Expect.True(!nobody.IsCompleted, "the cancelled attempt did not connect to a server that came later");
    }

    /// Many connects waiting at once cost no thread each: the poll drives them all, and each is
    /// cancelled on its own.
    public static async Task Stream_ConnectAsync_ManyPending_NoThreadEach()
    {
        const int Count = 64;
        using var reactor = new NpipeReactor();
        using var cts = new CancellationTokenSource();
        int threadsBefore = System.Diagnostics.Process.GetCurrentProcess().Threads.Count;
        var pending = Enumerable.Range(0, Count)
            .Select(i => NpipeStream.ConnectAsync(Util.UniqueName("many" + i), null, reactor, cts.Token))
            .ToList();
        await Task.Delay(300);
        int threadsWhile = System.Diagnostics.Process.GetCurrentProcess().Threads.Count;
        Expect.True(pending.All(t => !t.IsCompleted), "every connect still waits");
        Expect.True(threadsWhile - threadsBefore < 8,
            $"{Count} waiting connects added {threadsWhile - threadsBefore} threads ({threadsBefore} -> {threadsWhile})");
        cts.Cancel();
        foreach (var t in pending)
            await Expect.ThrowsAsync<OperationCanceledException>(() => t, "cancelled connect", seconds: 10);
    }

    /// A single server instance held by one client: a second ConnectAsync waits (Windows: an
    /// asynchronous wait for the instance; Linux: the kernel queues it) and gets the instance once
    /// the server disconnects the first client and waits again.
    public static async Task Stream_ConnectAsync_BusyInstance()
    {
        string name = Util.UniqueName("busy");
        using var server = NpipeStream.CreateServer(name, new NpipeServerOptions { MaxInstances = 1 });
        var accept = server.WaitForConnectionAsync();
        using (var first = await NpipeStream.ConnectAsync(name, Util.Patient()).Within())
        {
            await accept.Within();
            var second = NpipeStream.ConnectAsync(name, Util.Patient());
            if (OperatingSystem.IsWindows())
            {
                await Task.Delay(200);
                Expect.True(!second.IsCompleted, "the second client waits while the only instance is taken");
            }
            server.Disconnect();
            var again = server.WaitForConnectionAsync();
            using var client = await second.Within();
            await again.Within();
            await OneByteThrough(client, server, 2);
        }
    }

    /// A message above 16 MiB is refused whole with MessageTooLarge; the pipe stays usable.
    public static async Task Stream_MessageTooLarge()
    {
        string name = Util.UniqueName("big");
        using var server = NpipeStream.CreateServer(name, new NpipeServerOptions { MessageMode = true });
        var accept = server.WaitForConnectionAsync();
        using var client = await NpipeStream.ConnectAsync(name, Util.Patient(message: true)).Within();
        await accept.Within();
        var ex = await Expect.ThrowsAsync<NpipeException>(() => client.WriteAsync(new byte[16 * MiB + 1]).AsTask(), "17 MiB message");
        Expect.Equal(NpipeErrorCode.MessageTooLarge, ex.Code, "code");
        await client.WriteAsync("small"u8.ToArray()).Within();
        var buf = new byte[64];
        int n = await server.ReadAsync(buf).Within();
        Expect.Equal("small", Encoding.ASCII.GetString(buf, 0, n), "next message");
    }

    /// Disposing a private reactor fails the operations still waiting on it with ObjectDisposedException.
    public static async Task Stream_PrivateReactorDispose_FailsPending()
    {
        string name = Util.UniqueName("reac");
        var reactor = new NpipeReactor();
        using var server = NpipeStream.CreateServer(name, reactor: reactor);
        var accept = server.WaitForConnectionAsync();
        using var client = await NpipeStream.ConnectAsync(name, Util.Patient(), reactor).Within();
        await accept.Within();
        await client.WriteAsync("via a private reactor"u8.ToArray()).Within();
        var buf = new byte[64];
        Expect.True(await server.ReadAsync(buf).Within() > 0, "data through the private reactor");

        var pending = server.ReadAsync(buf).AsTask();
        await Task.Delay(50);
        Expect.True(!pending.IsCompleted, "read is pending");
        reactor.Dispose();
        await Expect.ThrowsAsync<ObjectDisposedException>(() => pending, "pending read after the reactor was disposed", seconds: 5);
        Expect.Throws<InvalidOperationException>(() => NpipeReactor.Shared.Dispose(), "the shared reactor cannot be disposed");
    }

    /// Streams given no reactor take the shared reactors in turn, one per processor (at most 4), so
    /// many busy pipes are not all served by one thread: every one of them serves pipes, pairs whose
    /// ends sit on different reactors talk, and none of them can be disposed.
    public static async Task Stream_SharedReactors_TakenInTurn()
    {
        int expected = Math.Clamp(Environment.ProcessorCount, 1, 4);
        string name = Util.UniqueName("turn");
        var pairs = new List<(NpipeStream Server, NpipeStream Client)>();
        try
        {
            for (int i = 0; i < 2 * expected; i++)
            {
                var server = NpipeStream.CreateServer(name);
                var accept = server.WaitForConnectionAsync();
                NpipeStream client;
                try
                {
                    client = await NpipeStream.ConnectAsync(name, Util.Patient()).Within();
                }
                catch
                {
                    server.Dispose();
                    throw;
                }
                pairs.Add((server, client));
                await accept.Within();
            }
            var reactors = pairs.SelectMany(p => new[] { p.Server.Reactor, p.Client.Reactor }).Distinct().ToList();
            Expect.Equal(expected, reactors.Count, "shared reactors serving 4 x processors streams");
            Expect.True(reactors.Contains(NpipeReactor.Shared), "NpipeReactor.Shared is one of them");
            if (expected > 1)
                Expect.True(pairs.Any(p => p.Server.Reactor != p.Client.Reactor), "a pair split across two reactors");
            foreach (var reactor in reactors)
                Expect.Throws<InvalidOperationException>(() => reactor.Dispose(), "a shared reactor cannot be disposed");
            var buf = new byte[64];
            for (int i = 0; i < pairs.Count; i++)
            {
                byte[] hello = Encoding.ASCII.GetBytes($"pair {i}");
                await pairs[i].Client.WriteAsync(hello).Within();
                int n = await pairs[i].Server.ReadAsync(buf).Within();
                await pairs[i].Server.WriteAsync(buf.AsMemory(0, n)).Within();
                n = await pairs[i].Client.ReadAsync(buf).Within();
                Expect.Equal($"pair {i}", Encoding.ASCII.GetString(buf, 0, n), "echo through the pair's reactors");
            }
        }
        finally
        {
            foreach (var (server, client) in pairs)
            {
                client.Dispose();
                server.Dispose();
            }
        }
    }

    /// Churn: 4 server instances serving 200 short connections in turn (connect, 1 KiB echo, close,
    /// disconnect, accept again), from 4 client loops at once.
    public static async Task Stream_ConnectionChurn()
    {
        const int instances = 4, perClient = 50;
        string name = Util.UniqueName("churn");
        using var stop = new CancellationTokenSource();
        var servers = Enumerable.Range(0, instances).Select(_ => NpipeStream.CreateServer(name)).ToList();
        int served = 0;
        try
        {
            var serverLoops = servers.Select(async s =>
            {
                var buf = new byte[4096];
                while (!stop.IsCancellationRequested)
                {
                    try
                    {
                        await s.WaitForConnectionAsync(stop.Token).Within();
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }
                    int n;
                    while ((n = await s.ReadAsync(buf).Within()) > 0)
                        await s.WriteAsync(buf.AsMemory(0, n)).Within();
                    s.Disconnect();
                    Interlocked.Increment(ref served);
                }
            }).ToList();

            var clientLoops = Enumerable.Range(0, instances).Select(async c =>
            {
                for (int i = 0; i < perClient; i++)
                {
                    byte[] payload = Util.RandomBytes(1024, c * 1000 + i);
                    using var client = await NpipeStream.ConnectAsync(name, Util.Patient()).Within();
                    var back = new byte[payload.Length];
                    await client.WriteAsync(payload).Within();
                    await client.ReadExactlyAsync(back).AsTask().Within();
                    Expect.Equal(Util.Sha256(payload), Util.Sha256(back), $"client {c} round {i}");
                }
            }).ToList();
            await Task.WhenAll(clientLoops).Within(TimeSpan.FromSeconds(90));
            await Util.Eventually(() => Volatile.Read(ref served) == instances * perClient, "every connection served");
            stop.Cancel();
            await Task.WhenAll(serverLoops).Within();
        }
        finally
        {
            foreach (var s in servers)
                s.Dispose();
        }
    }

    // ---- raw poll --------------------------------------------------------------------------------

    /// Register/Reregister/Deregister, Wake, timeouts and the connect handshake on a raw poll.
    public static Task Poll_Basics()
    {
        using var poll = new NpipePoll();
        Span<NpipeEvent> events = stackalloc NpipeEvent[8];
        var sw = System.Diagnostics.Stopwatch.StartNew();
        Expect.Equal(0, poll.Wait(events, TimeSpan.FromMilliseconds(50)), "nothing registered: timeout");
        Expect.True(sw.ElapsedMilliseconds >= 40, "the timeout was honoured");
        Expect.Equal(0, poll.Wait(events, TimeSpan.Zero), "zero timeout returns at once");

        poll.Wake(42);
        poll.Wake(42);
        int n = poll.Wait(events, Util.Bound);
        Expect.Equal(1, n, "coalesced wakes give one event");
        Expect.Equal(42UL, events[0].Token, "wake token");
        Expect.Equal(NpipeEventFlags.Wake, events[0].Flags, "wake flag");

        string name = Util.UniqueName("poll");
        using var server = new NpipeServer(name);
        Expect.True(!server.TryRead(new byte[4], out _), "unregistered pipe: would block");
        poll.Register(server, 1, NpipeInterest.ReadWrite);
        var again = Expect.Throws<NpipeException>(() => poll.Register(server, 1, NpipeInterest.Readable), "second registration");
        Expect.Equal(NpipeErrorCode.AlreadyExists, again.Code, "second registration code");
        Expect.True(!server.TryConnect(), "connect pending");
        var notConnected = Expect.Throws<NpipeException>(() => server.TryRead(new byte[4], out _), "read before a client");
        Expect.Equal(NpipeErrorCode.NotConnected, notConnected.Code, "read before a client code");

        using var client = NpipeClient.Open(name, Util.Patient());
        poll.Register(client, 2, NpipeInterest.ReadWrite);
        Util.WaitFor(poll, 1, NpipeEventFlags.Connected | NpipeEventFlags.Writable);
        Expect.True(server.TryConnect(), "connected");
        Expect.Equal(NpipeErrorCode.Ok, server.TakeError(), "no background error");
        NpipeInfo si = server.GetInfo(), ci = client.GetInfo();
        Expect.True(si.IsServer && si.IsConnected && !ci.IsServer, "info flags");

        poll.Reregister(client, 3, NpipeInterest.ReadWrite);
        Expect.True(server.TryWrite("ping"u8, out int w) && w == 4, "write taken");
        Util.WaitFor(poll, 3, NpipeEventFlags.Readable);
        var buf = new byte[16];
        Expect.True(client.TryRead(buf, out int r) && r == 4, "read after Readable");
        Expect.True(!client.TryRead(buf, out _), "drained: would block");

        poll.Deregister(client);
        var dereg = Expect.Throws<NpipeException>(() => poll.Deregister(client), "deregister twice");
        Expect.Equal(NpipeErrorCode.NotFound, dereg.Code, "deregister twice code");

        // Vectored I/O.
        poll.Register(client, 4, NpipeInterest.ReadWrite);
        Expect.True(server.TryWrite(new ReadOnlyMemory<byte>[] { "ab"u8.ToArray(), "cde"u8.ToArray() }, out long wv) && wv == 5, "writev");
        Util.WaitFor(poll, 4, NpipeEventFlags.Readable);
        var b1 = new byte[1];
        var b2 = new byte[10];
        long rv = 0;
        var deadline = DateTime.UtcNow + Util.Bound;
        while (!client.TryRead(new Memory<byte>[] { b1, b2 }, out rv))
        {
            Expect.True(DateTime.UtcNow < deadline, "readv data in time");
            poll.Wait(events, TimeSpan.FromMilliseconds(50));
        }
        Expect.True(rv >= 1, "readv returned data");
        Expect.True(server.RawHandle != 0, "raw handle lent");
        return Task.CompletedTask;
    }

    // ---- the peer: who it is, and whether it has read everything ---------------------------------

    /// Both ends name this process and its user; a Windows server only once the client has sent
    /// something (WouldBlock before), Linux at once.
    public static async Task Peer_Identity_BothEnds()
    {
        var pair = await ConnectedStreams("peer");
        using var server = pair.Server;
        using var client = pair.Client;
        if (OperatingSystem.IsWindows())
        {
            var early = Expect.Throws<NpipeException>(() => _ = server.PeerIdentity, "identity before the client wrote");
            Expect.Equal(NpipeErrorCode.WouldBlock, early.Code, "a Windows server waits for the client's bytes");
        }
        await client.WriteAsync(new byte[] { 42 }).Within();
        Expect.Equal(1, await server.ReadAsync(new byte[1]).Within(), "the client's byte");
        foreach (var (end, peer) in new[] { ("server", server.PeerIdentity), ("client", client.PeerIdentity) })
        {
            Expect.True(peer.IsSameUser, $"{end}: the peer is this user");
            Expect.Equal((ulong)Environment.ProcessId, peer.ProcessId ?? 0, $"{end}: the peer is this process");
            if (OperatingSystem.IsWindows())
            {
                Expect.True(peer.Sid is not null && peer.Sid.StartsWith("S-1-"), $"{end}: a SID ({peer.Sid})");
                Expect.True(peer.UserId is null && peer.GroupId is null, $"{end}: no uid/gid on Windows");
            }
            else
            {
                Expect.Equal(EffectiveUid(), peer.UserId ?? uint.MaxValue, $"{end}: uid");
                Expect.True(peer.GroupId is not null && peer.Sid is null, $"{end}: a gid and no SID on Linux");
            }
        }
        Expect.Equal(server.PeerIdentity, client.PeerIdentity, "both ends see the same process and user");
        client.Dispose();
        Expect.Throws<ObjectDisposedException>(() => _ = client.PeerIdentity, "identity of a disposed stream");
    }

    /// DrainAsync completes once the client has read, not when the bytes were flushed; then the server
    /// disconnects without losing anything.
    public static async Task Peer_DrainAsync_WriteDrainDisconnect()
    {
        var pair = await ConnectedStreams("drain");
        using var server = pair.Server;
        using var client = pair.Client;
        byte[] response = Util.RandomBytes(100_000, 7);
        await server.WriteAsync(response).Within();  // more than the client's first read takes
        await server.FlushAsync().Within();
        var drain = server.DrainAsync();
        if (!OperatingSystem.IsWindows())  // Wine counts a pipe as drained once flushed
            Expect.True(!drain.IsCompleted, "not drained while the client has read nothing");
        var got = new byte[response.Length];
        await client.ReadExactlyAsync(got).AsTask().Within();
        await drain.Within();
        server.Disconnect();
        Expect.Equal(0, await client.ReadAsync(new byte[8]).Within(), "EOF after the disconnect");
        Expect.Equal(Util.Sha256(response), Util.Sha256(got), "every byte delivered");
    }

    /// A drain that cannot end: cancelled by its token, and BrokenPipe once the reader leaves with bytes
    /// still in the writer's buffer.
    public static async Task Peer_DrainAsync_CancelAndBrokenPipe()
    {
        string name = Util.UniqueName("drainx");
        using var server = NpipeStream.CreateServer(name);
        var accept = server.WaitForConnectionAsync();
        // A client that is never registered anywhere: its library reads nothing ahead (a stream on
        // the reactor would, and under Wine, where a pipe counts as drained once flushed, the
        // read-ahead could take everything the writer accepted).
        using var client = NpipeClient.Open(name, Util.Patient());
        await accept.Within();
        var chunk = new byte[64 * 1024];
        while (server.Pipe.TryWrite(chunk, out _)) { }  // the writer's own buffer is full: not drained
        using (var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100)))
            await Expect.ThrowsAsync<OperationCanceledException>(() => server.DrainAsync(cts.Token).Within(), "cancelled drain");
        client.Dispose();  // leaves with all of it unread
        var ex = await Expect.ThrowsAsync<NpipeException>(() => server.DrainAsync().Within(), "drain after the reader left");
        Expect.Equal(NpipeErrorCode.BrokenPipe, ex.Code, "code");
    }

    // A server stream of a fresh name and a client stream connected to it.
    private static async Task<(NpipeStream Server, NpipeStream Client)> ConnectedStreams(string tag)
    {
        string name = Util.UniqueName(tag);
        var server = NpipeStream.CreateServer(name);
        try
        {
            var accept = server.WaitForConnectionAsync();
            var client = await NpipeStream.ConnectAsync(name, Util.Patient()).Within();
            await accept.Within();
            return (server, client);
        }
        catch
        {
            server.Dispose();
            throw;
        }
    }

    private static uint EffectiveUid()
    {
        // /proc/self/status: "Uid:\treal\teffective\tsaved\tfs".
        string line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("Uid:"));
        return uint.Parse(line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[2]);
    }

    /// NpipeClient.StartOpen on a raw poll: it returns at once; the poll drives the attempts; a
    /// Connected event ends them, and TakeError says how (a late server: Ok; nobody: TimedOut).
    public static Task Poll_StartOpen()
    {
        using var poll = new NpipePoll();
        string name = Util.UniqueName("start");
        using var client = NpipeClient.StartOpen(name, Util.Patient());
        poll.Register(client, 2, NpipeInterest.ReadWrite);
        Expect.True(!client.TryWrite("x"u8, out _), "connecting: a write would block");
        Span<NpipeEvent> events = stackalloc NpipeEvent[8];
        Expect.Equal(0, poll.Wait(events, TimeSpan.FromMilliseconds(100)), "no event while nobody listens");
        using var server = new NpipeServer(name);
        poll.Register(server, 1, NpipeInterest.ReadWrite);
        server.TryConnect();
        Util.WaitFor(poll, 2, NpipeEventFlags.Connected);
        Expect.Equal(NpipeErrorCode.Ok, client.TakeError(), "the late server was reached");
        Expect.True(client.TryWrite("x"u8, out int w) && w == 1, "connected: the write is taken");

        using var nobody = NpipeClient.StartOpen(Util.UniqueName("nobody"), new NpipeClientOptions { Timeout = TimeSpan.FromMilliseconds(150) });
        poll.Register(nobody, 3, NpipeInterest.Readable);
        var flags = Util.WaitFor(poll, 3, NpipeEventFlags.Connected);
        Expect.True((flags & NpipeEventFlags.Error) != 0, "a failed open raises Error with Connected");
        Expect.Equal(NpipeErrorCode.TimedOut, nobody.TakeError(), "nobody came within the timeout");
        var bad = Expect.Throws<NpipeException>(() => NpipeClient.StartOpen("bad/name"), "bad name at once");
        Expect.Equal(NpipeErrorCode.InvalidArgument, bad.Code, "bad name code");
        return Task.CompletedTask;
    }

    // ---- the listener (SPEC §7.1) ----------------------------------------------------------------

    /// A burst of 80 clients from 4 tasks at once against one listener: every one is accepted (through
    /// AcceptAllAsync) and its bytes come back intact; nobody sees "busy".
    public static async Task Listener_Burst_AllAcceptedIntact()
    {
        const int tasks = 4, perTask = 20, count = tasks * perTask;
        string name = Util.UniqueName("lburst");
        using var listener = new NpipeListener(name);
        Expect.True(listener.GetInfo().IsListener, "get_info says listener");
        using var stop = Util.Timeout();
        var served = new System.Collections.Concurrent.ConcurrentBag<int>();
        var serving = new System.Collections.Concurrent.ConcurrentBag<Task>();
        var acceptLoop = Task.Run(async () =>
        {
            int accepted = 0;
            await foreach (NpipeStream s in listener.AcceptAllAsync(stop.Token))
            {
                serving.Add(Task.Run(async () =>
                {
                    using (s)
                    {
                        var header = new byte[8];
                        await s.ReadExactlyAsync(header).Within();
                        int id = BitConverter.ToInt32(header, 0), length = BitConverter.ToInt32(header, 4);
                        var body = new byte[length];
                        await s.ReadExactlyAsync(body).Within();
                        await s.WriteAsync(SHA256Of(body)).Within();
                        served.Add(id);
                        Expect.Equal(0, await s.ReadAsync(new byte[1]).Within(), $"client {id} left: EOF");
                    }
                }));
                if (++accepted == count)
                    break;
            }
        });
        var clients = Enumerable.Range(0, tasks).Select(t => Task.Run(async () =>
        {
            var mine = new List<Task>();
            for (int k = 0; k < perTask; k++)
            {
                int id = t * perTask + k;
                mine.Add(Task.Run(async () =>
                {
                    byte[] body = Util.RandomBytes(1000 + id * 97, 500 + id);
                    using var c = await NpipeStream.ConnectAsync(name, Util.Patient()).Within();
                    var header = new byte[8];
                    BitConverter.TryWriteBytes(header.AsSpan(0), id);
                    BitConverter.TryWriteBytes(header.AsSpan(4), body.Length);
                    await c.WriteAsync(header).Within();
                    await c.WriteAsync(body).Within();
                    var digest = new byte[32];
                    await c.ReadExactlyAsync(digest).Within();
                    Expect.Equal(Util.Sha256(body), Convert.ToHexString(digest), $"client {id}: the server got its bytes intact");
                }));
            }
            await Task.WhenAll(mine);
        })).ToList();
        await Task.WhenAll(clients).Within();
        await acceptLoop.Within();
        await Task.WhenAll(serving).Within();
        Expect.Equal(count, served.Distinct().Count(), "every client was accepted and served once");
        Expect.Equal(0u, listener.GetInfo().PendingAccepts, "nothing left pending");
    }

    private static byte[] SHA256Of(byte[] data) => System.Security.Cryptography.SHA256.HashData(data);

    /// Cancellation: a pre-cancelled token and one cancelled while waiting end AcceptAsync with
    /// OperationCanceledException; the client that comes afterwards is not lost.
    public static async Task Listener_Cancellation_LosesNoClient()
    {
        string name = Util.UniqueName("lcancel");
        using var listener = new NpipeListener(name);
        await Expect.ThrowsAsync<OperationCanceledException>(
            () => listener.AcceptAsync(new CancellationToken(true)).AsTask(), "pre-cancelled accept");
        using (var cts = new CancellationTokenSource())
        {
            var pending = listener.AcceptAsync(cts.Token).AsTask();
            Expect.True(!pending.IsCompleted, "no client yet: the accept waits");
            cts.Cancel();
            await Expect.ThrowsAsync<OperationCanceledException>(() => pending, "accept cancelled while waiting");
        }
        using var client = await NpipeStream.ConnectAsync(name, Util.Patient()).Within();
        await client.WriteAsync("after"u8.ToArray()).Within();
        using var accepted = await listener.AcceptAsync().Within();
        var buf = new byte[5];
        await accepted.ReadExactlyAsync(buf).Within();
        Expect.Equal("after", Encoding.ASCII.GetString(buf), "the later client is accepted with its data");
        Expect.True(accepted.Pipe is NpipeServer && accepted.Pipe.GetInfo().IsServer, "an accepted stream is a server end");
    }

    /// Dispose with accepts pending returns at once: they fail with ObjectDisposedException, an
    /// AcceptAllAsync loop ends, later calls throw. A client connected but not accepted sees the end.
    public static async Task Listener_DisposeWithPendingAccepts()
    {
        string name = Util.UniqueName("ldisp");
        var listener = new NpipeListener(name);
        var pending = Enumerable.Range(0, 3).Select(_ => listener.AcceptAsync().AsTask()).ToList();
        var loop = Task.Run(async () =>
        {
            int n = 0;
            await foreach (var s in listener.AcceptAllAsync())
            {
                s.Dispose();
                n++;
            }
            return n;
        });
        foreach (var p in pending)
            Expect.True(!p.IsCompleted, "accept pending before Dispose");
        await Task.Run(listener.Dispose).Within(TimeSpan.FromSeconds(5));
        foreach (var p in pending)
            await Expect.ThrowsAsync<ObjectDisposedException>(() => p, "pending accept after Dispose");
        Expect.Equal(0, await loop.Within(), "the AcceptAllAsync loop ended, having accepted nobody");
        await Expect.ThrowsAsync<ObjectDisposedException>(() => listener.AcceptAsync().AsTask(), "accept after Dispose");
        Expect.Throws<ObjectDisposedException>(() => listener.GetInfo(), "GetInfo after Dispose");
        listener.Dispose(); // twice is fine

        // A second listener with a client connected but never accepted.
        string name2 = Util.UniqueName("ldisp2");
        var other = new NpipeListener(name2);
        using var orphan = await NpipeStream.ConnectAsync(name2, Util.Patient()).Within();
        // No event tells the caller that the library queued the connection; poll its counter.
        await Util.Eventually(() => other.GetInfo().PendingAccepts == 1, "the connection is pending");
        await Task.Run(other.Dispose).Within(TimeSpan.FromSeconds(5));
        try
        {
            Expect.Equal(0, await orphan.ReadAsync(new byte[8]).Within(), "client of a closed listener reads EOF");
        }
        catch (NpipeException e) when (e.Code == NpipeErrorCode.BrokenPipe)
        {
        }
    }

    /// A client that connected, wrote and left before the accept is still accepted: its data, then EOF.
    /// PendingAccepts counts it until then.
    public static async Task Listener_ClientLeftBeforeAccept()
    {
        string name = Util.UniqueName("lleft");
        using var listener = new NpipeListener(name, new NpipeListenerOptions { MaxPending = 16, SpareInstances = 2 });
        using (var client = await NpipeStream.ConnectAsync(name, Util.Patient()).Within())
        {
            await client.WriteAsync("goodbye"u8.ToArray()).Within();
            await client.FlushAsync().Within();
        }
        // No event tells the caller that the library queued the connection; poll its counter.
        await Util.Eventually(() => listener.GetInfo().PendingAccepts == 1, "the connection is pending");
        using var accepted = await listener.AcceptAsync().Within();
        Expect.Equal(0u, listener.GetInfo().PendingAccepts, "taken");
        var all = new MemoryStream();
        await accepted.CopyToAsync(all).Within();
        Expect.Equal("goodbye", Encoding.ASCII.GetString(all.ToArray()), "its data, then EOF");
        Expect.True(!accepted.IsConnected, "the peer has left");
    }

    /// A listener given no reactor holds one native listener per shared reactor: FirstInstance applies
    /// to the name (not to its own second native listener), the accepted streams are served by those
    /// reactors and by more than one of them, and each carries its client's bytes both ways. Given a
    /// reactor, every accepted stream is served there.
    public static async Task Listener_SpreadsOverSharedReactors()
    {
        string name = Util.UniqueName("lspread");
        NpipeReactor[] shared = NpipeReactor.SharedSet;
        using var listener = new NpipeListener(name, new NpipeListenerOptions { FirstInstance = true });
        Expect.Equal(shared.Length, listener.Reactors.Count, "one native listener per shared reactor");
        Expect.Equal(shared.Length, listener.Reactors.Distinct().Count(), "each on its own reactor");
        var taken = Expect.Throws<NpipeException>(
            () => new NpipeListener(name, new NpipeListenerOptions { FirstInstance = true }), "the name is taken");
        Expect.Equal(NpipeErrorCode.AlreadyExists, taken.Code, "FirstInstance on a taken name");
        // A pool size out of range is the library's to reject, not shared out into a valid one.
        var tooMany = Expect.Throws<NpipeException>(
            () => new NpipeListener(Util.UniqueName("lbad"), new NpipeListenerOptions { MaxPending = 4097 }), "MaxPending 4097");
        Expect.Equal(NpipeErrorCode.InvalidArgument, tooMany.Code, "MaxPending out of range");

        // Which native listener a client reaches is up to the OS (and, on Linux, to which reactor
        // takes the connection first), so clients keep coming, each served and kept, until streams on
        // two reactors are seen; 200 all on one would mean the clients are not spread.
        var clients = new List<NpipeStream>();
        var accepted = new List<NpipeStream>();
        try
        {
            for (int i = 0; i < 200 && accepted.Select(a => a.Reactor).Distinct().Count() < Math.Min(2, shared.Length); i++)
            {
                var client = await NpipeStream.ConnectAsync(name, Util.Patient()).Within();
                clients.Add(client);
                var server = await listener.AcceptAsync().Within();
                accepted.Add(server);
                Expect.True(listener.Reactors.Contains(server.Reactor), "an accepted stream is on one of the listener's reactors");
                byte[] hello = BitConverter.GetBytes(i);
                await client.WriteAsync(hello).Within();
                var got = new byte[4];
                await server.ReadExactlyAsync(got).Within();
                await server.WriteAsync(got).Within();
                var back = new byte[4];
                await client.ReadExactlyAsync(back).Within();
                Expect.Equal(i, BitConverter.ToInt32(back), $"client {i}: its bytes there and back");
            }
            Expect.Equal(Math.Min(2, shared.Length), accepted.Select(a => a.Reactor).Distinct().Count(),
                $"{accepted.Count} accepted streams are served by more than one reactor");
            Expect.Equal(0u, listener.GetInfo().PendingAccepts, "nothing left pending in any native listener");
        }
        finally
        {
            foreach (var s in clients.Concat(accepted))
                s.Dispose();
        }

        using var reactor = new NpipeReactor();
        string name2 = Util.UniqueName("lone");
        using var one = new NpipeListener(name2, reactor: reactor);
        Expect.Equal(1, one.Reactors.Count, "given a reactor: one native listener");
        using var c2 = await NpipeStream.ConnectAsync(name2, Util.Patient()).Within();
        using var s2 = await one.AcceptAsync().Within();
        Expect.True(ReferenceEquals(reactor, s2.Reactor), "given a reactor: the stream is served there");
    }

    // ---- ABI -------------------------------------------------------------------------------------

    /// Every function of npipe.h is declared (and every declaration resolves in the loaded library);
    /// the mirrored structs have the header's sizes.
    public static Task Abi_DeclarationsMatchHeader()
    {
        Expect.Equal(16, Unsafe.SizeOf<NpipeEvent>(), "sizeof(npipe_event_t)");
        Expect.Equal(16, Unsafe.SizeOf<Interop.NativeClientOptions>(), "sizeof(npipe_client_options_t)");
        Expect.Equal(32, Unsafe.SizeOf<Interop.NativeServerOptions>(), "sizeof(npipe_server_options_t)");
        Expect.Equal(80, Unsafe.SizeOf<Interop.NativeInfo>(), "sizeof(npipe_info_t) (release 1.1)");
        Expect.Equal(40, Unsafe.SizeOf<Interop.NativeListenerOptions>(), "sizeof(npipe_listener_options_t)");
        Expect.Equal(16, Unsafe.SizeOf<Interop.NativeIoVec>(), "sizeof(npipe_iovec_t)");
        Expect.Equal(216, Unsafe.SizeOf<Interop.NativePeer>(), "sizeof(npipe_peer_t)");

        var declared = typeof(Interop.NativeMethods)
            .GetMethods(BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public)
            .Select(m => m.GetCustomAttribute<LibraryImportAttribute>()?.EntryPoint)
            .OfType<string>()
            .ToHashSet();
        _ = NpipeLibrary.Version; // loads the library through the resolver
        IntPtr lib = Interop.NativeLibraryResolver.LoadedHandle;
        Expect.True(lib != IntPtr.Zero, "the resolver loaded the library");
        foreach (var entry in declared)
            Expect.True(NativeLibrary.TryGetExport(lib, entry, out _), $"{entry} is exported");

        string? header = FindHeader();
        // The source tree is always there on Linux (tests run from it); the Wine program may not see it.
        Expect.True(header is not null || OperatingSystem.IsWindows(), "include/npipe.h found (or NPIPE_HEADER set)");
        if (header is not null)
        {
            var inHeader = Regex.Matches(File.ReadAllText(header), @"NPIPE_API\s[^;(]*?NPIPE_CALL\s+(npipe_\w+)\s*\(")
                .Select(m => m.Groups[1].Value).ToHashSet();
            Expect.True(inHeader.Count >= 31, $"parsed the functions of {header} ({inHeader.Count})");
            var missing = inHeader.Except(declared).ToList();
            var extra = declared.Except(inHeader).ToList();
            Expect.True(missing.Count == 0, "declared in Npipe: " + string.Join(", ", missing));
            Expect.True(extra.Count == 0, "in the header: " + string.Join(", ", extra));
        }
        return Task.CompletedTask;
    }

    private static string? FindHeader([CallerFilePath] string here = "")
    {
        string? env = Environment.GetEnvironmentVariable("NPIPE_HEADER");
        if (!string.IsNullOrEmpty(env) && File.Exists(env))
            return env;
        try
        {
            string candidate = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(here) ?? ".", "..", "..", "..", "include", "npipe.h"));
            return File.Exists(candidate) ? candidate : null;
        }
        catch (Exception)
        {
            return null;
        }
    }

    // ---- errors ----------------------------------------------------------------------------------

    /// Status codes become exceptions with the library's message, the code's name and the OS error.
    public static async Task Errors_CodesAndMessages()
    {
        Expect.Equal(1, NpipeLibrary.Version.Major, "library major version");
        Expect.True(NpipeLibrary.VersionString.StartsWith("1."), "version string");
        Expect.Equal("NPIPE_EAGAIN", NpipeLibrary.ErrorName(-1), "err_name");
        Expect.Equal("NPIPE_EUNKNOWN", NpipeLibrary.ErrorName(-12345), "err_name of an unknown code");
        Expect.True(NpipeLibrary.Describe(NpipeErrorCode.BrokenPipe).Length > 0, "strerror text");

        string absent = Util.UniqueName("absent");
        var notFound = Expect.Throws<NpipeException>(() => NpipeClient.Open(absent), "open of an absent pipe");
        Expect.Equal(NpipeErrorCode.NotFound, notFound.Code, "absent pipe code");
        Expect.True(notFound.Message.Contains("NPIPE_ENOENT") && notFound.Message.Contains(absent), "message names code and pipe: " + notFound.Message);
        Expect.True(!notFound.Message.Contains("no error"), "message carries the library's detail: " + notFound.Message);
        Expect.Equal("NPIPE_ENOENT", notFound.CodeName, "CodeName");

        var timeout = Expect.Throws<TimeoutException>(() => NpipeClient.Open(absent, new NpipeClientOptions { Timeout = TimeSpan.FromMilliseconds(200) }), "open with a deadline");
        Expect.True(timeout.InnerException is NpipeException { Code: NpipeErrorCode.TimedOut }, "inner NpipeException carries TimedOut");
        await Expect.ThrowsAsync<TimeoutException>(() => NpipeStream.ConnectAsync(absent, new NpipeClientOptions { Timeout = TimeSpan.FromMilliseconds(200) }), "async open with a deadline");
        var asyncNotFound = await Expect.ThrowsAsync<NpipeException>(() => NpipeStream.ConnectAsync(absent, new NpipeClientOptions { Timeout = TimeSpan.Zero }), "async open, one attempt");
        Expect.Equal(NpipeErrorCode.NotFound, asyncNotFound.Code, "async open code");

        var empty = Expect.Throws<NpipeException>(() => new NpipeServer(""), "empty name");
        Expect.Equal(NpipeErrorCode.InvalidArgument, empty.Code, "empty name code");
        var slash = Expect.Throws<NpipeException>(() => new NpipeServer("a/b"), "slash in a bare name");
        Expect.Equal(NpipeErrorCode.InvalidArgument, slash.Code, "slash code");
        var tooLong = Expect.Throws<NpipeException>(() => new NpipeServer(new string('n', 5000)), "long name");
        Expect.Equal(NpipeErrorCode.NameTooLong, tooLong.Code, "long name code");

        string name = Util.UniqueName("first");
        using (var first = new NpipeServer(name, new NpipeServerOptions { FirstInstance = true }))
        {
            var exists = Expect.Throws<NpipeException>(() => new NpipeServer(name, new NpipeServerOptions { FirstInstance = true }), "FirstInstance twice");
            Expect.Equal(NpipeErrorCode.AlreadyExists, exists.Code, "FirstInstance twice code");
        }
        if (!OperatingSystem.IsWindows())
        {
            var sddl = Expect.Throws<NpipeException>(() => new NpipeServer(Util.UniqueName("sddl"), new NpipeServerOptions { Sddl = "D:P" }), "SDDL on Linux");
            Expect.Equal(NpipeErrorCode.NotSupported, sddl.Code, "SDDL on Linux code");
        }
        else
        {
            var badSddl = Expect.Throws<NpipeException>(() => new NpipeServer(Util.UniqueName("sddl"), new NpipeServerOptions { Sddl = "this is not sddl" }), "invalid SDDL");
            Expect.Equal(NpipeErrorCode.InvalidArgument, badSddl.Code, "invalid SDDL code");
        }
        var badMax = Expect.Throws<NpipeException>(() => new NpipeServer(Util.UniqueName("max"), new NpipeServerOptions { MaxInstances = 255 }), "max_instances 255");
        Expect.Equal(NpipeErrorCode.InvalidArgument, badMax.Code, "max_instances code");
    }

    /// Every object throws ObjectDisposedException once disposed (checked before any native call).
    public static Task Errors_ObjectDisposed()
    {
        var poll = new NpipePoll();
        poll.Dispose();
        poll.Dispose(); // idempotent
        Expect.Throws<ObjectDisposedException>(() => poll.Wait(new NpipeEvent[1], TimeSpan.Zero), "wait on a disposed poll");
        Expect.Throws<ObjectDisposedException>(() => poll.Wake(1), "wake on a disposed poll");

        var server = new NpipeServer(Util.UniqueName("odx"));
        server.Dispose();
        Expect.True(server.IsDisposed, "IsDisposed");
        Expect.Throws<ObjectDisposedException>(() => server.TryRead(new byte[1], out _), "read on a disposed pipe");
        Expect.Throws<ObjectDisposedException>(() => server.TryConnect(), "connect on a disposed pipe");
        Expect.Throws<ObjectDisposedException>(() => server.GetInfo(), "info on a disposed pipe");
        using var live = new NpipePoll();
        Expect.Throws<ObjectDisposedException>(() => live.Register(server, 1, NpipeInterest.Readable), "register a disposed pipe");
        return Task.CompletedTask;
    }

    /// Closing the poll a pipe is registered with: the pipe's calls give Canceled.
    public static Task Errors_PollClosedCancelsPipes()
    {
        var poll = new NpipePoll();
        using var server = new NpipeServer(Util.UniqueName("pcl"));
        poll.Register(server, 1, NpipeInterest.ReadWrite);
        poll.Dispose();
        var ex = Expect.Throws<NpipeException>(() => server.TryConnect(), "connect after the poll closed");
        Expect.Equal(NpipeErrorCode.Canceled, ex.Code, "code");
        return Task.CompletedTask;
    }

    // ---- helpers ---------------------------------------------------------------------------------

    private static async Task WriteChunked(Stream s, byte[] data, int chunk)
    {
        for (int off = 0; off < data.Length; off += chunk)
            await s.WriteAsync(data.AsMemory(off, Math.Min(chunk, data.Length - off)));
        await s.FlushAsync();
    }
}
