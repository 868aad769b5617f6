using System;
using System.Runtime.InteropServices;
using Npipe.Interop;

namespace Npipe;

/// <summary>
/// Owns an npipe pipe handle (<c>npipe_t</c>, a 64-bit table id kept in <see cref="SafeHandle.handle"/>;
/// 64-bit processes only). Releasing it calls <c>npipe_close</c>, which never blocks.
/// </summary>
public sealed class NpipePipeHandle : SafeHandle
{
    /// <summary>Creates an invalid handle (used by the interop layer for out parameters).</summary>
    public NpipePipeHandle() : base(IntPtr.Zero, ownsHandle: true) { }

    /// <inheritdoc/>
    public override bool IsInvalid => handle == IntPtr.Zero;

    /// <summary>The raw <c>npipe_t</c> value.</summary>
    public ulong Value => (ulong)(long)handle;

    /// <inheritdoc/>
    protected override bool ReleaseHandle() => NativeMethods.Close((ulong)(long)handle) == 0;
}

/// <summary>Owns an npipe poll handle (<c>npipe_poll_t</c>); releasing it calls <c>npipe_poll_close</c>.</summary>
public sealed class NpipePollHandle : SafeHandle
{
    /// <summary>Creates an invalid handle (used by the interop layer for out parameters).</summary>
    public NpipePollHandle() : base(IntPtr.Zero, ownsHandle: true) { }

    /// <inheritdoc/>
    public override bool IsInvalid => handle == IntPtr.Zero;

    /// <summary>The raw <c>npipe_poll_t</c> value.</summary>
    public ulong Value => (ulong)(long)handle;

    /// <inheritdoc/>
    protected override bool ReleaseHandle() => NativeMethods.PollClose((ulong)(long)handle) == 0;
}
