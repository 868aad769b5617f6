using System;
using System.Threading;
using Npipe.Interop;

namespace Npipe;

/// <summary>What a server instance and a listener's instances share (SPEC §6): direction, mode,
/// access, buffer sizes, linger and security.</summary>
public abstract record NpipeInstanceOptions
{
    /// <summary>NPIPE_FIRST_INSTANCE: fail with <see cref="NpipeErrorCode.AlreadyExists"/> if the name exists.</summary>
    public bool FirstInstance { get; init; }
    /// <summary>NPIPE_MESSAGE: message mode (both ends must use it).</summary>
    public bool MessageMode { get; init; }
    /// <summary>NPIPE_INBOUND_ONLY: the server only reads.</summary>
    public bool InboundOnly { get; init; }
    /// <summary>NPIPE_OUTBOUND_ONLY: the server only writes.</summary>
    public bool OutboundOnly { get; init; }
    /// <summary>NPIPE_ALLOW_REMOTE: accept remote clients (Windows; NotSupported on Linux).</summary>
    public bool AllowRemote { get; init; }
    /// <summary>NPIPE_CURRENT_USER_ONLY: only the current user may connect.</summary>
    public bool CurrentUserOnly { get; init; }
    /// <summary>OS buffer hint in bytes, 0 = 64 KiB.</summary>
    public int InBufferSize { get; init; }
    /// <summary>OS buffer hint in bytes, 0 = 64 KiB.</summary>
    public int OutBufferSize { get; init; }
    /// <summary>How long closing keeps delivering accepted bytes: 0 = default (1000 ms), &gt; 0 that long,
    /// &lt; 0 discard at once.</summary>
    public int LingerMilliseconds { get; init; }
    /// <summary>Windows: security descriptor in SDDL (null = default). Elsewhere it must be null.</summary>
    public string? Sddl { get; init; }

    internal uint Flags =>
        (FirstInstance ? NativeFlags.FirstInstance : 0) | (MessageMode ? NativeFlags.Message : 0)
        | (InboundOnly ? NativeFlags.InboundOnly : 0) | (OutboundOnly ? NativeFlags.OutboundOnly : 0)
        | (AllowRemote ? NativeFlags.AllowRemote : 0) | (CurrentUserOnly ? NativeFlags.CurrentUserOnly : 0);
}

/// <summary>Options of a server instance (SPEC §6, <c>npipe_server_options_t</c>). Defaults: duplex,
/// byte mode, unlimited instances, 64 KiB buffers, remote clients rejected.</summary>
public sealed record NpipeServerOptions : NpipeInstanceOptions
{
    /// <summary>0 = unlimited, else 1..254.</summary>
    public int MaxInstances { get; init; }
}

/// <summary>Options of a client end (SPEC §6, <c>npipe_client_options_t</c>). Defaults: duplex, byte mode,
/// fail at once when the server is absent or busy.</summary>
public sealed record NpipeClientOptions
{
    /// <summary>NPIPE_MESSAGE: read in message mode.</summary>
    public bool MessageMode { get; init; }
    /// <summary>NPIPE_INBOUND_ONLY: the client only reads.</summary>
    public bool InboundOnly { get; init; }
    /// <summary>NPIPE_OUTBOUND_ONLY: the client only writes.</summary>
    public bool OutboundOnly { get; init; }
    /// <summary>NPIPE_CURRENT_USER_ONLY: refuse a server owned by another user.</summary>
    public bool CurrentUserOnly { get; init; }
    /// <summary>Keep retrying while the pipe is busy or absent: <see cref="TimeSpan.Zero"/> = fail at once,
    /// <see cref="Timeout.InfiniteTimeSpan"/> = forever, else <see cref="TimeoutException"/> when it passes.
    /// Not set (null): <see cref="NpipeClient.Open"/> fails at once (as <c>npipe_open</c> does), while
    /// <see cref="NpipeStream.ConnectAsync(string, NpipeClientOptions?, NpipeReactor?, System.Threading.CancellationToken)"/> waits until its token is cancelled (as .NET's
    /// <c>NamedPipeClientStream.ConnectAsync()</c> does).</summary>
    public TimeSpan? Timeout { get; init; }
    /// <summary>As <see cref="NpipeInstanceOptions.LingerMilliseconds"/>.</summary>
    public int LingerMilliseconds { get; init; }

    internal uint Flags =>
        (MessageMode ? NativeFlags.Message : 0) | (InboundOnly ? NativeFlags.InboundOnly : 0)
        | (OutboundOnly ? NativeFlags.OutboundOnly : 0) | (CurrentUserOnly ? NativeFlags.CurrentUserOnly : 0);

    /// <summary>The C API's timeout_ms, with <paramref name="unsetMs"/> when <see cref="Timeout"/> is not set.</summary>
    internal int TimeoutMs(int unsetMs) => Timeout switch
    {
        null => unsetMs,
        TimeSpan t when t == System.Threading.Timeout.InfiniteTimeSpan => -1,
        TimeSpan t => NpipePoll.ToMilliseconds(t),
    };
}

/// <summary>Message-read flags (<c>NPIPE_MSG_*</c>).</summary>
[Flags]
public enum NpipeMessageFlags : uint
{
    /// <summary>A whole message (or the end of one), or EOF when the count is 0.</summary>
    None = 0,
    /// <summary>NPIPE_MSG_PARTIAL: more of this message follows.</summary>
    Partial = NativeFlags.MsgPartial,
    /// <summary>NPIPE_MSG_EMPTY: a zero-length message was read (not EOF).</summary>
    Empty = NativeFlags.MsgEmpty,
}

/// <summary>Who is on the other end of a connection (<c>npipe_peer_identity</c>): a server's client or a
/// client's server. Values the platform does not have are null: <see cref="UserId"/> and
/// <see cref="GroupId"/> on Windows, <see cref="Sid"/> on Linux.</summary>
/// <param name="ProcessId">The peer's process id (null if unknown); informative only, ids are reused and
/// a Windows client can fake its own.</param>
/// <param name="UserId">Linux: the peer's uid.</param>
/// <param name="GroupId">Linux: the peer's gid.</param>
/// <param name="Sid">Windows: the peer's user SID ("S-1-5-21-...").</param>
/// <param name="IsSameUser">The peer runs as this process's user.</param>
public sealed record NpipePeerIdentity(ulong? ProcessId, uint? UserId, uint? GroupId, string? Sid, bool IsSameUser);

/// <summary>A snapshot of <c>npipe_get_info</c> (<c>npipe_info_t</c>, 80 bytes since release 1.1; a 1.0
/// library fills the first 72 and leaves <see cref="WaitingInstances"/> and <see cref="PendingAccepts"/> 0).</summary>
public readonly record struct NpipeInfo(
    bool IsServer, bool IsConnected, bool MessageMode, bool InboundOnly, bool OutboundOnly, uint RawFlags,
    uint InBufferSize, uint OutBufferSize, uint MaxInstances, ulong PeerProcessId,
    ulong BytesRead, ulong BytesWritten, ulong WritePending, ulong ReadAvailable, ulong PeerUnread)
{
    /// <summary>NPIPE_INFO_LISTENER: the snapshot is of an <see cref="NpipeListener"/>.</summary>
    public bool IsListener { get; init; }
    /// <summary>Listener: instances waiting for clients now (Windows; always 0 on Linux, where the
    /// name's one listening socket is the pool). 0 for pipes.</summary>
    public uint WaitingInstances { get; init; }
    /// <summary>Listener: connected pipes not accepted yet. 0 for pipes.</summary>
    public uint PendingAccepts { get; init; }
}

/// <summary>Options of an <see cref="NpipeListener"/> (SPEC §7.1, <c>npipe_listener_options_t</c>): the
/// instance options of <see cref="NpipeInstanceOptions"/> for every instance (linger for every accepted
/// pipe), plus the pool. Defaults: duplex, byte mode, 64 KiB buffers, 4 spare instances, 128 pending.</summary>
public sealed record NpipeListenerOptions : NpipeInstanceOptions
{
    /// <summary>Windows: instances kept waiting for clients when idle (the pool grows by itself during a
    /// burst, up to 64): 0 = 4, else 1..64. No effect on Linux.</summary>
    public int SpareInstances { get; init; }
    /// <summary>Connected pipes not accepted yet before back pressure (clients wait, or see
    /// <see cref="NpipeErrorCode.Busy"/> once their timeout passes): 0 = 128, else 1..4096.</summary>
    public int MaxPending { get; init; }
}
