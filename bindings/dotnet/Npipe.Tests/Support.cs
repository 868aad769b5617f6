// Test support without a test-framework dependency, so that the same scenarios run under xunit
// (Npipe.Tests) and as a plain program under Wine (Npipe.SelfTest).
using System;
using System.Security.Cryptography;
using System.Threading;
using System.Threading.Tasks;

namespace Npipe.Tests;

public sealed class ScenarioFailure : Exception
{
    public ScenarioFailure(string message) : base(message) { }
}

public static class Expect
{
    public static void True(bool condition, string what)
    {
        if (!condition)
            throw new ScenarioFailure("expected: " + what);
    }

    public static void Equal<T>(T expected, T actual, string what)
    {
        if (!Equals(expected, actual))
            throw new ScenarioFailure($"{what}: expected <{expected}>, got <{actual}>");
    }

    public static TEx Throws<TEx>(Action action, string what) where TEx : Exception
    {
        try
        {
            action();
        }
        catch (Exception ex)
        {
            return Check<TEx>(ex, what);
        }
        throw new ScenarioFailure($"{what}: expected {typeof(TEx).Name}, nothing was thrown");
    }

    public static async Task<TEx> ThrowsAsync<TEx>(Func<Task> action, string what, int seconds = 20) where TEx : Exception
    {
        try
        {
            await action().WaitAsync(TimeSpan.FromSeconds(seconds));
        }
        catch (Exception ex) when (ex is not System.TimeoutException || typeof(TEx) == typeof(System.TimeoutException))
        {
            return Check<TEx>(ex, what);
        }
        throw new ScenarioFailure($"{what}: expected {typeof(TEx).Name}, nothing was thrown");
    }

    private static TEx Check<TEx>(Exception ex, string what) where TEx : Exception =>
        ex as TEx ?? throw new ScenarioFailure($"{what}: expected {typeof(TEx).Name}, got {ex.GetType().Name}: {ex.Message}");
}

public static class Util
{
    /// Default bound for every await in the scenarios.
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    public static string UniqueName(string tag) => $"npdn-{tag}-{Guid.NewGuid():N}"[..32];

    public static byte[] RandomBytes(int count, int seed)
    {
        var data = new byte[count];
        new Random(seed).NextBytes(data);
        return data;
    }

    public static string Sha256(ReadOnlySpan<byte> data) => Convert.ToHexString(SHA256.HashData(data));

    public static Task Within(this Task task, TimeSpan? bound = null) => task.WaitAsync(bound ?? Bound);

    public static Task<T> Within<T>(this Task<T> task, TimeSpan? bound = null) => task.WaitAsync(bound ?? Bound);

    public static Task<T> Within<T>(this ValueTask<T> task, TimeSpan? bound = null) => task.AsTask().WaitAsync(bound ?? Bound);

    public static Task Within(this ValueTask task, TimeSpan? bound = null) => task.AsTask().WaitAsync(bound ?? Bound);

    public static NpipeClientOptions Patient(bool message = false) =>
        new() { Timeout = TimeSpan.FromSeconds(10), MessageMode = message };

    /// Polls until `condition` holds or `bound` passes; for conditions no event announces.
    public static async Task Eventually(Func<bool> condition, string what, TimeSpan? bound = null)
    {
        var deadline = DateTime.UtcNow + (bound ?? Bound);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
                throw new ScenarioFailure("timed out waiting for " + what);
            await Task.Delay(5);
        }
    }

    /// Waits on a raw poll until an event with `token` carries one of `flags` (bounded).
    public static NpipeEventFlags WaitFor(NpipePoll poll, ulong token, NpipeEventFlags flags, TimeSpan? bound = null)
    {
        var deadline = DateTime.UtcNow + (bound ?? Bound);
        Span<NpipeEvent> events = stackalloc NpipeEvent[16];
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
                throw new ScenarioFailure($"timed out waiting for {flags} on token {token}");
            int n = poll.Wait(events, left);
            for (int i = 0; i < n; i++)
                if (events[i].Token == token && (events[i].Flags & flags) != 0)
                    return events[i].Flags;
        }
    }

    public static CancellationTokenSource Timeout() => new(Bound);
}
