// Runs every scenario of Npipe.Tests/Scenarios.cs (or those whose name contains an argument), each
// bounded, and prints "PASS"/"FAIL" lines, then "N passed, N failed" and the same counts in dotnet
// test's "Failed: N, Passed: N, Skipped: N" form (which the project's test summary counts case by case).
// `--measure-open [WAIT_MS]` instead prints what waiting for an absent server costs (MeasureOpen.cs).
using System;
using System.Diagnostics;
using System.Linq;
using System.Reflection;
using System.Threading.Tasks;
using Npipe;
using Npipe.Tests;

internal static class Program
{
    private static readonly TimeSpan CaseBound = TimeSpan.FromSeconds(120);

    private static async Task<int> Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "--measure-open")
            return await MeasureOpen.Run(args.Length > 1 ? int.Parse(args[1]) : 2000);
        Console.WriteLine($"npipe {NpipeLibrary.VersionString} on {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, .NET {Environment.Version}");
        var cases = typeof(Scenarios).GetMethods(BindingFlags.Public | BindingFlags.Static)
            .Where(m => m.ReturnType == typeof(Task) && m.GetParameters().Length == 0)
            .Where(m => args.Length == 0 || args.Any(a => m.Name.Contains(a, StringComparison.OrdinalIgnoreCase)))
            .OrderBy(m => m.MetadataToken)
            .ToList();
        int passed = 0, failed = 0;
        foreach (var m in cases)
        {
            var sw = Stopwatch.StartNew();
            try
            {
                await ((Task)m.Invoke(null, null)!).WaitAsync(CaseBound);
                passed++;
                Console.WriteLine($"PASS {m.Name} ({sw.ElapsedMilliseconds} ms)");
            }
            catch (Exception ex)
            {
                failed++;
                Console.WriteLine($"FAIL {m.Name} ({sw.ElapsedMilliseconds} ms): {ex.GetType().Name}: {ex.Message}");
                if (ex is not ScenarioFailure)
                    Console.WriteLine(ex.StackTrace);
            }
        }
        Console.WriteLine($"{passed} passed, {failed} failed");
        Console.WriteLine($"Failed: {failed}, Passed: {passed}, Skipped: 0, Total: {passed + failed}");
        return failed == 0 ? 0 : 1;
    }
}
