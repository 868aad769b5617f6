// The README's example: an npipe server and client talking line by line through NpipeStream,
// .NET's own NamedPipeClientStream talking to an npipe server, and an error as an exception.
// Every wait is bounded.
using System;
using System.IO;
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
Console.WriteLine("done");
