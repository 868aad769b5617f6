// `Npipe.SelfTest --measure-open [WAIT_MS]`: the CPU time this process uses while a client waits
// WAIT_MS (default 2000) for a server that never comes, through .NET's NamedPipeClientStream and
// through NpipeStream.ConnectAsync, in the same run. Reports numbers; checks nothing.
using System;
using System.Diagnostics;
using System.IO.Pipes;
using System.Threading.Tasks;
using Npipe;
using Npipe.Tests;

internal static class MeasureOpen
{
    internal static async Task<int> Run(int waitMs)
    {
        Console.WriteLine($"npipe {NpipeLibrary.VersionString} on {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, .NET {Environment.Version}");
        // A first round with a short wait compiles every path, so the measured rounds time waiting only.
        await Measure(50, print: false);
        await Measure(waitMs, print: true);
        return 0;
    }

    private static async Task Measure(int waitMs, bool print)
    {
        await Report(print, $"NamedPipeClientStream.Connect({waitMs})", () =>
        {
            using var client = new NamedPipeClientStream(".", Util.UniqueName("nobody"), PipeDirection.InOut, PipeOptions.Asynchronous);
            client.Connect(waitMs);
            return Task.CompletedTask;
        });
        await Report(print, $"NamedPipeClientStream.ConnectAsync({waitMs})", async () =>
        {
            using var client = new NamedPipeClientStream(".", Util.UniqueName("nobody"), PipeDirection.InOut, PipeOptions.Asynchronous);
            await client.ConnectAsync(waitMs);
        });
        await Report(print, $"NpipeStream.ConnectAsync(Timeout = {waitMs} ms)", async () =>
        {
            using var stream = await NpipeStream.ConnectAsync(Util.UniqueName("nobody"),
                new NpipeClientOptions { Timeout = TimeSpan.FromMilliseconds(waitMs) });
        });
    }

    private static async Task Report(bool print, string what, Func<Task> connect)
    {
        using var self = Process.GetCurrentProcess();
        TimeSpan cpu0 = self.TotalProcessorTime;
        var wall = Stopwatch.StartNew();
        string outcome = "connected?";
        try
        {
            await connect();
        }
        catch (TimeoutException)
        {
            outcome = "timed out";
        }
        wall.Stop();
        self.Refresh();
        double cpuMs = (self.TotalProcessorTime - cpu0).TotalMilliseconds;
        if (print)
            Console.WriteLine($"dotnet  {what}, nobody comes: {cpuMs:0.0} ms CPU over {wall.Elapsed.TotalSeconds:0.00} s ({outcome})");
    }
}
