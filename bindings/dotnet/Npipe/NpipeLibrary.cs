using System;
using System.Text;
using Npipe.Interop;

namespace Npipe;

/// <summary>Library-wide queries: version, status-code texts and name resolution.</summary>
public static class NpipeLibrary
{
    /// <summary>The version of the loaded native library (<c>npipe_version</c>).</summary>
    public static Version Version
    {
        get
        {
            uint v = NativeMethods.Version();
            return new Version((int)(v >> 16), (int)((v >> 8) & 0xff), (int)(v & 0xff));
        }
    }

    /// <summary>The native library's "MAJOR.MINOR.PATCH" (<c>npipe_version_string</c>).</summary>
    public static string VersionString => NativeMethods.Utf8(NativeMethods.VersionString()) ?? "";

    /// <summary>Static English text for a status code (<c>npipe_strerror</c>).</summary>
    public static string Describe(NpipeErrorCode code) => NativeMethods.Utf8(NativeMethods.StrError((int)code)) ?? "";

    /// <summary>The header name of a status code, e.g. "NPIPE_EAGAIN" (<c>npipe_err_name</c>).</summary>
    public static string ErrorName(int status) => NativeMethods.Utf8(NativeMethods.ErrName(status)) ?? "NPIPE_EUNKNOWN";

    /// <summary>
    /// The OS name that <paramref name="name"/> maps to: on Linux the socket path
    /// (<c>$TMPDIR/CoreFxPipe_name</c>, as .NET's own pipes use), on Windows <c>\\.\pipe\name</c>.
    /// </summary>
    public static unsafe string ResolveName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        // The header allows (NULL, 0) to ask the length; some library builds answer ENAMETOOLONG
        // instead, so fall back to growing buffers (an OS name is at most a few KiB).
        int asked = NativeMethods.ResolveName(name, null, 0);
        if (asked < 0 && asked != (int)NpipeErrorCode.NameTooLong)
            Check.Status(asked, name);
        int size = asked >= 0 ? asked + 1 : 1024;
        while (true)
        {
            byte[] buf = new byte[size];
            int rc;
            fixed (byte* p = buf)
                rc = NativeMethods.ResolveName(name, p, (nuint)buf.Length);
            if (rc >= 0)
                return Encoding.UTF8.GetString(buf, 0, rc);
            if (rc != (int)NpipeErrorCode.NameTooLong || size >= 1 << 16)
                Check.Status(rc, name);
            size *= 8;
        }
    }
}
