// Under Wine, the CPU time of the wineserver: the work Windows' kernel does inside the calling
// thread (and counts in its process's CPU time) Wine does there, in another Unix process. A row's
// CPU under Wine is this process's and the wineserver's together, as Windows would count it.
// Read from the wineserver's /proc/PID/stat (Wine shows the Unix root as Z:), in clock ticks of
// 10 ms. Not under Wine, or when no wineserver is found: Available is false.
using System;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;

internal static class WineServerCpu
{
    private const double MsPerTick = 10; // USER_HZ, 100 on every Linux Wine runs on
    private static readonly string? StatPath = FindStat();

    public static bool Available => StatPath is not null;

    // The wineserver's CPU time so far (user and system), in ms; 0 when not Available.
    public static double Ms()
    {
        if (StatPath is null)
            return 0;
        // After the command in parentheses (which may hold spaces): state is field 3, utime 14, stime 15.
        string stat = File.ReadAllText(StatPath);
        string[] f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(f[14 - 3]) + long.Parse(f[15 - 3])) * MsPerTick;
    }

    private static string? FindStat()
    {
        if (!OperatingSystem.IsWindows() || GetProcAddress(GetModuleHandleW("ntdll.dll"), "wine_get_version") == 0)
            return null;
        try
        {
            // This prefix's wineserver: the one whose WINEPREFIX is ours, else the only one running.
            string? prefix = Environment.GetEnvironmentVariable("WINEPREFIX")?.TrimEnd('/');
            var servers = Directory.GetDirectories(@"Z:\proc")
                .Where(d => Path.GetFileName(d).All(char.IsAsciiDigit))
                .Where(d => TryRead(Path.Combine(d, "comm")).StartsWith("wineserver", StringComparison.Ordinal))
                .ToList();
            string? ours = servers.FirstOrDefault(d => prefix is not null
                && TryRead(Path.Combine(d, "environ")).Split('\0').Any(v => v.TrimEnd('/') == "WINEPREFIX=" + prefix));
            ours ??= servers.Count == 1 ? servers[0] : null;
            return ours is null ? null : Path.Combine(ours, "stat");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static string TryRead(string path)
    {
        try { return File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return ""; }
    }

    [DllImport("kernel32", CharSet = CharSet.Unicode)]
    private static extern nint GetModuleHandleW(string name);

    [DllImport("kernel32", CharSet = CharSet.Ansi, BestFitMapping = false)]
    private static extern nint GetProcAddress(nint module, string name);
}
