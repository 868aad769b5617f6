// A server and a client in one process over an npipe NpipeStream: the client sends a line, the
// server sends it back in capitals. This is the Program.cs of the README's "Use it in your own app".
using Npipe;

string name = $"hello-npipe-{Environment.ProcessId}";
using var server = NpipeStream.CreateServer(name);
var serve = Task.Run(async () =>
{
    await server.WaitForConnectionAsync();
    using var reader = new StreamReader(server, leaveOpen: true);
    using var writer = new StreamWriter(server, leaveOpen: true) { AutoFlush = true };
    while (await reader.ReadLineAsync() is string line)
        await writer.WriteLineAsync(line.ToUpperInvariant());
});
using (var client = await NpipeStream.ConnectAsync(name,
           new NpipeClientOptions { Timeout = TimeSpan.FromSeconds(5) }))
{
    using var reader = new StreamReader(client, leaveOpen: true);
    using var writer = new StreamWriter(client, leaveOpen: true) { AutoFlush = true };
    await writer.WriteLineAsync("hello");
    Console.WriteLine(await reader.ReadLineAsync());   // HELLO
}
await serve.WaitAsync(TimeSpan.FromSeconds(5));   // the server saw the client leave
