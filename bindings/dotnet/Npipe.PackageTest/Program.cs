// The README's example: an npipe server and client talking line by line through NpipeStream,
// .NET's own NamedPipeClientStream talking to an npipe server, an error as an exception, and an
// accept loop on an NpipeListener.
// Every wait is bounded.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.IO.Pipes;
using System.Text;
using System.Threading.Tasks;
using Npipe;

var bound = TimeSpan.FromSeconds(10);
Console.WriteLine($"npipe {NpipeLibrary.VersionString}");
string name = $"npipe-example-{Environment.ProcessId}";
Console.WriteLine($"\"{name}\" is {NpipeLibrary.ResolveName(name)}");

// 1. npipe server <-> npipe client, through StreamReader/StreamWriter.
using (var server = NpipeStream.CreateServer(name))
{
    var serve = Task.Run(async () =>
    {
        await server.WaitForConnectionAsync().WaitAsync(bound);
        using var reader = new StreamReader(server, leaveOpen: true);
        using var writer = new StreamWriter(server, leaveOpen: true) { AutoFlush = true };
        while (await reader.ReadLineAsync().WaitAsync(bound) is string line)
            await writer.WriteLineAsync(line.ToUpperInvariant()).WaitAsync(bound);
    });
    var options = new NpipeClientOptions { Timeout = TimeSpan.FromSeconds(5) };
    using (var client = await NpipeStream.ConnectAsync(name, options).WaitAsync(bound))
    {
        using var reader = new StreamReader(client, leaveOpen: true);
        using var writer = new StreamWriter(client, leaveOpen: true) { AutoFlush = true };
        foreach (var text in new[] { "hello", "named pipes" })
        {
            await writer.WriteLineAsync(text).WaitAsync(bound);
            Console.WriteLine($"sent \"{text}\", got \"{await reader.ReadLineAsync().WaitAsync(bound)}\"");
        }
    }
    await serve.WaitAsync(bound); // the server read EOF after the client left
}

// 2. .NET's NamedPipeClientStream and an npipe server of the same name.
using (var server = NpipeStream.CreateServer(name))
{
    var accept = server.WaitForConnectionAsync();
    using var dotnetClient = new NamedPipeClientStream(".", name, PipeDirection.InOut, PipeOptions.Asynchronous);
    await dotnetClient.ConnectAsync(5000).WaitAsync(bound);
    await accept.WaitAsync(bound);
    await dotnetClient.WriteAsync(Encoding.UTF8.GetBytes("from System.IO.Pipes")).AsTask().WaitAsync(bound);
    var buffer = new byte[64];
    int n = await server.ReadAsync(buffer).AsTask().WaitAsync(bound);
    Console.WriteLine($"npipe server got \"{Encoding.UTF8.GetString(buffer, 0, n)}\" from a NamedPipeClientStream");
}

// 3. Failures are exceptions carrying the status code and the library's message.
try
{
    NpipeClient.Open(name + "-absent");
}
catch (NpipeException e)
{
    Console.WriteLine($"{e.GetType().Name} {e.Code}: {e.Message}");
}

// 4. An accept loop: a listener keeps instances waiting (no client sees "busy" while the server is
//    busy) and hands out one connected stream per client; each is served on its own task.
string service = name + "-service";
using (var listener = new NpipeListener(service))
{
    var acceptLoop = Task.Run(async () =>
    {
        var sessions = new List<Task>();
        await foreach (NpipeStream client in listener.AcceptAllAsync()) // ends when the listener is disposed
        {
            sessions.Add(Task.Run(async () =>
            {
                using (client)
                {
                    using var reader = new StreamReader(client, leaveOpen: true);
                    using var writer = new StreamWriter(client, leaveOpen: true) { AutoFlush = true };
                    while (await reader.ReadLineAsync().WaitAsync(bound) is string line)
                        await writer.WriteLineAsync($"hello, {line}").WaitAsync(bound);
                }
            }));
        }
        await Task.WhenAll(sessions);
    });
    var options = new NpipeClientOptions { Timeout = TimeSpan.FromSeconds(5) };
    string[] replies = await Task.WhenAll(Enumerable.Range(1, 16).Select(async i =>
    {
        using var client = await NpipeStream.ConnectAsync(service, options).WaitAsync(bound);
        using var reader = new StreamReader(client, leaveOpen: true);
        using var writer = new StreamWriter(client, leaveOpen: true) { AutoFlush = true };
        await writer.WriteLineAsync($"client {i}").WaitAsync(bound);
        return await reader.ReadLineAsync().WaitAsync(bound) ?? "(EOF)";
    }));
    Console.WriteLine($"listener served {replies.Length} clients at once: \"{replies[0]}\" .. \"{replies[^1]}\"");
    listener.Dispose();                 // pending accepts end; the loop finishes its sessions
    await acceptLoop.WaitAsync(bound);
}
Console.WriteLine("done");
