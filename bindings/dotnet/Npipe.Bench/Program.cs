// npipe's NpipeStream against System.IO.Pipes, in one process, alternating A B, B A for `rounds`
// rounds per row. Prints, per row, each round's time ratio npipe / System.IO.Pipes (> 1 = npipe
// slower), their median, and bytes allocated per round trip (GC.GetTotalAllocatedBytes, every
// thread: the reactor's and the thread pool's count too). The last column is the median ratio of
// the process's CPU time per run, npipe / System.IO.Pipes; under Wine one more, the same with the
// wineserver's CPU time added (where Wine does the work of Windows' kernel).
// Usage: Npipe.Bench [--rounds N] [--quick] [--rows 1,2] [--clients N] [--per-client KIB]
// (--quick: a tenth of the sizes, for a smoke run; --rows: only those rows, 0-3 in the order
// printed, and no allocation lines, so a noisy row can be given many rounds; --clients: the fan-out
// row with N clients, 1 to 1,024, sharing its 64 MiB; --per-client: each of them echoes KIB KiB
// instead, at least one 16 KiB piece (one piece shows what the connections cost); --listener:
// npipe's side of that row served by one NpipeListener)
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.IO.Pipes;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Npipe;

internal static class Program
{
    private const int KiB = 1024, MiB = 1024 * KiB;

    private static async Task<int> Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "--alloc-types")
            return await AllocTypes(args.Length > 1 && args[1] == "sip" ? Impl.Sip : Impl.Npipe);
        int rounds = 3;
        int scale = 1;
        int onlyRow = -1, onlyRuns = 0;
        int clients = 64;
        int perClientKiB = 0; // 0: the clients share the row's 64 MiB
        bool listener = false;
        HashSet<int>? pickedRows = null;
        Impl onlyImpl = Impl.Npipe;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--rounds") rounds = int.Parse(args[++i]);
            else if (args[i] == "--quick") scale = 10;
            else if (args[i] == "--clients") clients = Math.Clamp(int.Parse(args[++i]), 1, 1024); // the fan-out row's
            else if (args[i] == "--per-client") perClientKiB = Math.Max(int.Parse(args[++i]), 16); // KiB each
            else if (args[i] == "--listener") listener = true; // npipe's fan-out servers: one NpipeListener
            else if (args[i] == "--rows") pickedRows = args[++i].Split(',').Select(int.Parse).ToHashSet();
            else if (args[i] == "--only")
            {
                // --only ROW IMPL RUNS: one row of one implementation, RUNS times, nothing else, so
                // an outside counter (WINEDEBUG=+server, strace) can subtract a run of 1 from a
                // run of N and see what one run costs.
                onlyRow = int.Parse(args[++i]);
                onlyImpl = args[++i] == "sip" ? Impl.Sip : Impl.Npipe;
                onlyRuns = int.Parse(args[++i]);
            }
        }
        Console.WriteLine($"npipe {NpipeLibrary.VersionString}, .NET {Environment.Version}, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, {Environment.ProcessorCount} cores, {rounds} rounds");
        // Under Wine one more column: the CPU ratio with the wineserver's CPU time added (WineServerCpu).
        bool serverCpu = WineServerCpu.Available;
        Console.WriteLine($"{"row",-44} {"npipe ms",10} {"SIP ms",10} {"ratios (npipe/SIP)",-22} {"median",7} {"CPU",7}"
            + (serverCpu ? $" {"+server",7}" : ""));

        int perClient = perClientKiB > 0 ? perClientKiB * KiB : 64 * MiB / scale / clients;
        var rows = new (string Name, Func<Impl, Task<double>> Run)[]
        {
            ($"{256 / scale} MiB in 64 KiB async writes", impl => Bulk(impl, 256 * MiB / scale, 64 * KiB)),
            ($"{20000 / scale} async ping-pongs of 64 B", impl => PingPongAsync(impl, 20000 / scale, 64)),
            ($"{clients} clients x {perClient / KiB} KiB echoed in 16 KiB{(listener ? ", listener" : "")}",
                impl => ManyClients(impl, clients, perClient, 16 * KiB, listener)),
            ($"{20000 / scale} sync Read/Write ping-pongs of 64 B", impl => PingPongSync(impl, 20000 / scale, 64)),
        };
        if (onlyRow >= 0)
        {
            for (int r = 0; r < onlyRuns; r++)
            {
                long items = ThreadPool.CompletedWorkItemCount, contentions = Monitor.LockContentionCount;
                var (ms, cpuMs, serverMs) = await Measure(rows[onlyRow].Run, onlyImpl);
                // Counts that do not depend on load: the thread pool's work items and the contended
                // Monitor entries of this run, and the pool's threads at its end. The JIT's totals so
                // far: under Wine a run is long enough that tiering is still at work.
                Console.WriteLine($"{rows[onlyRow].Name} {onlyImpl}: {ms:F1} ms, CPU {cpuMs:F0} ms"
                    + (serverCpu ? $", wineserver {serverMs:F0} ms" : "")
                    + $", work items {ThreadPool.CompletedWorkItemCount - items}, lock contentions {Monitor.LockContentionCount - contentions}, pool threads {ThreadPool.ThreadCount}"
                    + $", JIT so far {System.Runtime.JitInfo.GetCompiledMethodCount()} methods in {System.Runtime.JitInfo.GetCompilationTime().TotalMilliseconds:F0} ms");
            }
            return 0;
        }
        foreach (var (name, run) in rows.Where((_, index) => pickedRows is null || pickedRows.Contains(index)))
        {
            await run(Impl.Npipe); // warm-up: JIT, tiering, the reactor thread
            await run(Impl.Sip);
            var ratios = new List<double>();
            var cpuRatios = new List<double>();
            var withServerRatios = new List<double>();
            double tn = 0, ts = 0;
            for (int r = 0; r < rounds; r++)
            {
                // A B, then B A: neither implementation always runs right after the other's run
                // (its teardown, the collections it leaves behind) or always first.
                bool npipeFirst = r % 2 == 0;
                var first = await Measure(run, npipeFirst ? Impl.Npipe : Impl.Sip);
                var second = await Measure(run, npipeFirst ? Impl.Sip : Impl.Npipe);
                var ((a, cpuA, serverA), (b, cpuB, serverB)) = npipeFirst ? (first, second) : (second, first);
                tn += a;
                ts += b;
                ratios.Add(a / b);
                cpuRatios.Add(cpuA / Math.Max(cpuB, 1));
                withServerRatios.Add((cpuA + serverA) / Math.Max(cpuB + serverB, 1));
            }
            ratios.Sort(); // printed in order
            Console.WriteLine($"{name,-44} {tn / rounds,10:F1} {ts / rounds,10:F1} {string.Join(",", ratios.Select(x => x.ToString("F2"))),-22} {Median(ratios),7:F2} {Median(cpuRatios),7:F2}"
                + (serverCpu ? $" {Median(withServerRatios),7:F2}" : ""));
        }

        if (pickedRows is not null)
            return 0;
        // Allocations per round trip, after warm-up, over every thread.
        foreach (var (what, sync) in new[] { ("async", false), ("sync", true) })
        {
            const int trips = 5000;
            var per = new Dictionary<Impl, double>();
            foreach (var impl in new[] { Impl.Npipe, Impl.Sip, Impl.Npipe, Impl.Sip })
            {
                await using var pair = await Pair.Open(impl, sync);
                var buf = new byte[64];
                await Exchange(pair, buf, 500, sync); // warm-up on this connection
                long before = GC.GetTotalAllocatedBytes(precise: true);
                await Exchange(pair, buf, trips, sync);
                per[impl] = (GC.GetTotalAllocatedBytes(precise: true) - before) / (double)trips;
            }
            Console.WriteLine($"allocated per {what} round trip (64 B each way): npipe {per[Impl.Npipe]:F0} B, System.IO.Pipes {per[Impl.Sip]:F0} B");
        }
        return 0;
    }

    internal enum Impl { Npipe, Sip }

    // The middle value of the rounds (of an even count the upper one).
    private static double Median(List<double> values)
    {
        List<double> sorted = values.Order().ToList();
        return sorted[sorted.Count / 2];
    }

    // One run of a row: its time, the CPU time every thread of this process spent meanwhile (the
    // reactors', the thread pool's, the I/O poller's; not the kernel's on behalf of nobody), and under
    // Wine the wineserver's (0 elsewhere). The CPU time moves less than the time when the machine is
    // shared, though only in clock ticks (10 ms on Linux).
    private static async Task<(double Ms, double CpuMs, double ServerMs)> Measure(Func<Impl, Task<double>> run, Impl impl)
    {
        TimeSpan before = Process.GetCurrentProcess().TotalProcessorTime;
        double serverBefore = WineServerCpu.Ms();
        double ms = await run(impl);
        TimeSpan after = Process.GetCurrentProcess().TotalProcessorTime;
        return (ms, (after - before).TotalMilliseconds, WineServerCpu.Ms() - serverBefore);
    }

    // Which types the async round trips allocate: the runtime's AllocationTick samples (one per
    // ~100 KB allocated), counted by type name.
    private static async Task<int> AllocTypes(Impl impl)
    {
        await using var pair = await Pair.Open(impl);
        var buf = new byte[64];
        await Exchange(pair, buf, 2000, sync: false);
        using var listener = new AllocListener();
        await Exchange(pair, buf, 100_000, sync: false);
        await Task.Delay(500);
        foreach (var (type, n) in listener.Counts.OrderByDescending(kv => kv.Value))
            Console.WriteLine($"{n,6} {type}");
        return 0;
    }

    private sealed class AllocListener : System.Diagnostics.Tracing.EventListener
    {
        public readonly System.Collections.Concurrent.ConcurrentDictionary<string, int> Counts = new();

        protected override void OnEventSourceCreated(System.Diagnostics.Tracing.EventSource source)
        {
            if (source.Name == "Microsoft-Windows-DotNETRuntime")
                EnableEvents(source, System.Diagnostics.Tracing.EventLevel.Verbose, (System.Diagnostics.Tracing.EventKeywords)0x1);
        }

        protected override void OnEventWritten(System.Diagnostics.Tracing.EventWrittenEventArgs e)
        {
            if (e.EventName is not null && e.EventName.StartsWith("GCAllocationTick") && e.PayloadNames is not null)
            {
                int i = e.PayloadNames.IndexOf("TypeName");
                if (i >= 0)
                    Counts.AddOrUpdate(e.Payload![i]?.ToString() ?? "?", 1, (_, n) => n + 1);
            }
        }
    }

    private static string NewName() => $"npbench-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40];

    /// A connected server/client pair of one implementation.
    private sealed class Pair : IAsyncDisposable
    {
        public required Stream Server { get; init; }
        public required Stream Client { get; init; }

        public static async Task<Pair> Open(Impl impl, bool sync = false)
        {
            string name = NewName();
            if (impl == Impl.Sip)
            {
                var options = sync ? PipeOptions.None : PipeOptions.Asynchronous;
                var server = new NamedPipeServerStream(name, PipeDirection.InOut, 1, PipeTransmissionMode.Byte, options);
                var client = new NamedPipeClientStream(".", name, PipeDirection.InOut, options);
                var accept = server.WaitForConnectionAsync();
                await client.ConnectAsync(10_000);
                await accept;
                return new Pair { Server = server, Client = client };
            }
            var s = NpipeStream.CreateServer(name);
            if (sync)
            {
                // Synchronous from the start: both ends wait in npipe_wait on the calling thread.
                var connecting = Task.Run(() => NpipeStream.Connect(name, 10_000));
                s.WaitForConnection();
                return new Pair { Server = s, Client = await connecting };
            }
            var wait = s.WaitForConnectionAsync();
            var c = await NpipeStream.ConnectAsync(name, new NpipeClientOptions { Timeout = TimeSpan.FromSeconds(10) });
            await wait;
            return new Pair { Server = s, Client = c };
        }

        public async ValueTask DisposeAsync()
        {
            await Client.DisposeAsync();
            await Server.DisposeAsync();
        }
    }

    private static async Task<double> Bulk(Impl impl, int total, int chunk)
    {
        await using var pair = await Pair.Open(impl);
        var sw = Stopwatch.StartNew();
        var reader = Task.Run(async () =>
        {
            var buf = new byte[chunk];
            long got = 0;
            while (got < total)
            {
                int n = await pair.Server.ReadAsync(buf);
                if (n == 0) throw new EndOfStreamException();
                got += n;
            }
        });
        var data = new byte[chunk];
        for (int sent = 0; sent < total; sent += chunk)
            await pair.Client.WriteAsync(data);
        await reader;
        return sw.Elapsed.TotalMilliseconds;
    }

    private static async Task<double> PingPongAsync(Impl impl, int trips, int size)
    {
        await using var pair = await Pair.Open(impl);
        var buf = new byte[size];
        var sw = Stopwatch.StartNew();
        await Exchange(pair, buf, trips, sync: false);
        return sw.Elapsed.TotalMilliseconds;
    }

    private static async Task<double> PingPongSync(Impl impl, int trips, int size)
    {
        await using var pair = await Pair.Open(impl, sync: true);
        var buf = new byte[size];
        var sw = Stopwatch.StartNew();
        await Exchange(pair, buf, trips, sync: true);
        return sw.Elapsed.TotalMilliseconds;
    }

    // `trips` round trips of buf.Length bytes: the client writes, the server reads all and answers.
    private static async Task Exchange(Pair pair, byte[] buf, int trips, bool sync)
    {
        if (sync)
        {
            var echo = new Thread(() =>
            {
                var b = new byte[buf.Length];
                for (int i = 0; i < trips; i++)
                {
                    pair.Server.ReadExactly(b);
                    pair.Server.Write(b);
                }
            });
            echo.Start();
            var mine = new byte[buf.Length];
            for (int i = 0; i < trips; i++)
            {
                pair.Client.Write(buf);
                pair.Client.ReadExactly(mine);
            }
            echo.Join();
            return;
        }
        var server = Task.Run(async () =>
        {
            var b = new byte[buf.Length];
            for (int i = 0; i < trips; i++)
            {
                await pair.Server.ReadExactlyAsync(b);
                await pair.Server.WriteAsync(b);
            }
        });
        var back = new byte[buf.Length];
        for (int i = 0; i < trips; i++)
        {
            await pair.Client.WriteAsync(buf);
            await pair.Client.ReadExactlyAsync(back);
        }
        await server;
    }

    private static async Task<double> ManyClients(Impl impl, int clients, int perClient, int piece, bool listener = false)
    {
        string name = NewName();
        var sw = Stopwatch.StartNew();
        var servers = new List<Task>();
        var clientTasks = new List<Task>();
        bool throughListener = impl == Impl.Npipe && listener;
        if (throughListener)
            servers.Add(ListenerEcho(name, clients, piece));
        for (int i = 0; i < clients && !throughListener; i++)
        {
            Stream server = impl == Impl.Sip
                ? new NamedPipeServerStream(name, PipeDirection.InOut, NamedPipeServerStream.MaxAllowedServerInstances, PipeTransmissionMode.Byte, PipeOptions.Asynchronous)
                : NpipeStream.CreateServer(name);
            servers.Add(Task.Run(async () =>
            {
                await using (server)
                {
                    if (server is NamedPipeServerStream sip) await sip.WaitForConnectionAsync();
                    else await ((NpipeStream)server).WaitForConnectionAsync();
                    await Echo(server, piece);
                }
            }));
        }
        for (int i = 0; i < clients; i++)
        {
            clientTasks.Add(Task.Run(async () =>
            {
                Stream client;
                if (impl == Impl.Sip)
                {
                    var c = new NamedPipeClientStream(".", name, PipeDirection.InOut, PipeOptions.Asynchronous);
                    await c.ConnectAsync(10_000);
                    client = c;
                }
                else
                {
                    client = await NpipeStream.ConnectAsync(name, new NpipeClientOptions { Timeout = TimeSpan.FromSeconds(10) });
                }
                await using (client)
                {
                    var data = new byte[piece];
                    var back = new byte[piece];
                    for (int sent = 0; sent < perClient; sent += piece)
                    {
                        await client.WriteAsync(data);
                        await client.ReadExactlyAsync(back);
                    }
                }
            }));
        }
        await Task.WhenAll(clientTasks);
        await Task.WhenAll(servers);
        return sw.Elapsed.TotalMilliseconds;
    }

    // The fan-out row's servers as an accept loop: one NpipeListener (one native listener per shared
    // reactor, each accepted stream on its native listener's reactor, SPEC 7.1) echoing for `clients`
    // clients.
    private static async Task ListenerEcho(string name, int clients, int piece)
    {
        using var listener = new NpipeListener(name);
        var echoes = new List<Task>();
        for (int i = 0; i < clients; i++)
        {
            NpipeStream server = await listener.AcceptAsync();
            echoes.Add(Task.Run(async () =>
            {
                await using (server)
                    await Echo(server, piece);
            }));
        }
        await Task.WhenAll(echoes);
    }

    // The fan-out row's server side of one connection: every piece read is written back.
    private static async Task Echo(Stream server, int piece)
    {
        var b = new byte[piece];
        int n;
        while ((n = await server.ReadAsync(b)) > 0)
            await server.WriteAsync(b.AsMemory(0, n));
    }
}
