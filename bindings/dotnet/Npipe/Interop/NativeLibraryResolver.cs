// Finds the native library for every [LibraryImport("npipe")] in this assembly, in this order:
//   1. the NPIPE_LIBRARY environment variable (a full path; failing to load it is an error, not a
//      silent fallback, so a test run can never pick up a stale copy by accident);
//   2. runtimes/<rid>/native/ next to this assembly (the NuGet package layout);
//   3. the runtime's default search (application directory, deps.json, then the OS loader), with
//      libnpipe.so.1 (the SONAME) as a last try on Linux.
// The loaded library must have the same major version as the header this binding mirrors.
using System;
using System.IO;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Threading;

namespace Npipe.Interop;

internal static class NativeLibraryResolver
{
    internal const uint SupportedMajor = 1;
    private static int s_installed;

    /// <summary>The handle the resolver loaded (zero until the first call, or when the runtime's own
    /// search found the library).</summary>
    internal static IntPtr LoadedHandle { get; private set; }

    internal static void Install()
    {
        if (!Environment.Is64BitProcess)
            throw new PlatformNotSupportedException("npipe handles are 64-bit: the binding needs a 64-bit process.");
        if (Interlocked.Exchange(ref s_installed, 1) == 0)
            NativeLibrary.SetDllImportResolver(typeof(NativeLibraryResolver).Assembly, Resolve);
    }

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (libraryName != NativeMethods.Lib)
            return IntPtr.Zero;
        IntPtr handle = Load(assembly, searchPath);
        CheckVersion(handle);
        LoadedHandle = handle;
        return handle;
    }

    private static IntPtr Load(Assembly assembly, DllImportSearchPath? searchPath)
    {
        string? explicitPath = Environment.GetEnvironmentVariable("NPIPE_LIBRARY");
        if (!string.IsNullOrEmpty(explicitPath))
        {
            if (NativeLibrary.TryLoad(explicitPath, out IntPtr h))
                return h;
            throw new DllNotFoundException($"NPIPE_LIBRARY is set to '{explicitPath}', which could not be loaded.");
        }

        string fileName = OperatingSystem.IsWindows() ? "npipe.dll"
            : OperatingSystem.IsMacOS() ? "libnpipe.dylib" : "libnpipe.so";
#pragma warning disable IL3000 // empty in single-file apps: then the app directory stands in
        string? dir = Path.GetDirectoryName(assembly.Location);
#pragma warning restore IL3000
        if (string.IsNullOrEmpty(dir))
            dir = AppContext.BaseDirectory;
        string candidate = Path.Combine(dir, "runtimes", RuntimeId(), "native", fileName);
        if (File.Exists(candidate) && NativeLibrary.TryLoad(candidate, out IntPtr fromRuntimes))
            return fromRuntimes;

        if (NativeLibrary.TryLoad(NativeMethods.Lib, assembly, searchPath, out IntPtr fromDefault))
            return fromDefault;
        if (!OperatingSystem.IsWindows() && NativeLibrary.TryLoad("libnpipe.so.1", assembly, searchPath, out IntPtr soname))
            return soname;
        return IntPtr.Zero; // let the runtime raise its usual DllNotFoundException
    }

    private static string RuntimeId()
    {
        string os = OperatingSystem.IsWindows() ? "win" : OperatingSystem.IsMacOS() ? "osx" : "linux";
        string arch = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => "x64",
            Architecture.Arm64 => "arm64",
            Architecture.X86 => "x86",
            var other => other.ToString().ToLowerInvariant(),
        };
        return os + "-" + arch;
    }

    private static unsafe void CheckVersion(IntPtr handle)
    {
        if (handle == IntPtr.Zero || !NativeLibrary.TryGetExport(handle, "npipe_version", out IntPtr fn))
            return;
        uint version = ((delegate* unmanaged[Cdecl]<uint>)fn)();
        if (version >> 16 != SupportedMajor)
            throw new DllNotFoundException(
                $"npipe native library has version {version >> 16}.{(version >> 8) & 0xff}.{version & 0xff}; this binding needs major version {SupportedMajor}.");
    }
}
