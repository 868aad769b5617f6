// xunit entry points: one [Fact] per scenario in Scenarios.cs (keep in step; the SelfTest program
// finds the scenarios by reflection instead). Windows_* scenarios run only in the SelfTest program
// (under Wine); xunit runs on Linux.
using System.Threading.Tasks;
using Xunit;

namespace Npipe.Tests;

public class InteropTests
{
    [Fact(Timeout = 120_000)]
    public Task DotnetClient_NpipeServer_1MiB_BothWays() => Scenarios.Interop_DotnetClient_NpipeServer_1MiB_BothWays();

    [Fact(Timeout = 120_000)]
    public Task NpipeClient_DotnetServer_1MiB_BothWays() => Scenarios.Interop_NpipeClient_DotnetServer_1MiB_BothWays();

    [Fact(Timeout = 120_000)]
    public Task DotnetClient_RawPollServer() => Scenarios.Interop_DotnetClient_RawPollServer();

    [Fact(Timeout = 120_000)]
    public Task ManyClients_BothWays() => Scenarios.Interop_ManyClients_BothWays();

    [Fact(Timeout = 120_000)]
    public Task OneWay_BothDirections() => Scenarios.Interop_OneWay_BothDirections();

    [Fact(Timeout = 120_000)]
    public Task ResolveName_MatchesDotnetPath() => Scenarios.Interop_ResolveName_MatchesDotnetPath();
}

public class StreamTests
{
    [Fact(Timeout = 120_000)]
    public Task Echo_Lines() => Scenarios.Stream_Echo_Lines();

    [Fact(Timeout = 120_000)]
    public Task Bulk_CopyTo_Checksum() => Scenarios.Stream_Bulk_CopyTo_Checksum();

    [Fact(Timeout = 120_000)]
    public Task ManyConcurrentClients() => Scenarios.Stream_ManyConcurrentClients();

    [Fact(Timeout = 120_000)]
    public Task MessageMode_Boundaries() => Scenarios.Stream_MessageMode_Boundaries();

    [Fact(Timeout = 120_000)]
    public Task Cancellation() => Scenarios.Stream_Cancellation();

    [Fact(Timeout = 120_000)]
    public Task DisposeWhileReadPending() => Scenarios.Stream_DisposeWhileReadPending();

    [Fact(Timeout = 120_000)]
    public Task PeerGone_EofAndBrokenPipe() => Scenarios.Stream_PeerGone_EofAndBrokenPipe();

    [Fact(Timeout = 120_000)]
    public Task SyncApi_And_Reconnect() => Scenarios.Stream_SyncApi_And_Reconnect();

    [Fact(Timeout = 120_000)]
    public Task WaitBound_SyncApi() => Scenarios.Stream_WaitBound_SyncApi();

    [Fact(Timeout = 120_000)]
    public Task ConnectAsync_Overloads() => Scenarios.Stream_ConnectAsync_Overloads();

    [Fact(Timeout = 120_000)]
    public Task ConnectAsync_WaitsForServer() => Scenarios.Stream_ConnectAsync_WaitsForServer();

    [Fact(Timeout = 120_000)]
    public Task ConnectAsync_NoTimeout_UntilServerOrCancelled() => Scenarios.Stream_ConnectAsync_NoTimeout_UntilServerOrCancelled();

    [Fact(Timeout = 120_000)]
    public Task ConnectAsync_ManyPending_NoThreadEach() => Scenarios.Stream_ConnectAsync_ManyPending_NoThreadEach();

    [Fact(Timeout = 120_000)]
    public Task ConnectAsync_BusyInstance() => Scenarios.Stream_ConnectAsync_BusyInstance();

    [Fact(Timeout = 120_000)]
    public Task MessageTooLarge() => Scenarios.Stream_MessageTooLarge();

    [Fact(Timeout = 120_000)]
    public Task PrivateReactorDispose_FailsPending() => Scenarios.Stream_PrivateReactorDispose_FailsPending();

    [Fact(Timeout = 120_000)]
    public Task SharedReactors_TakenInTurn() => Scenarios.Stream_SharedReactors_TakenInTurn();

    [Fact(Timeout = 120_000)]
    public Task ConnectionChurn() => Scenarios.Stream_ConnectionChurn();
}

public class PollTests
{
    [Fact(Timeout = 120_000)]
    public Task Basics() => Scenarios.Poll_Basics();

    [Fact(Timeout = 120_000)]
    public Task StartOpen() => Scenarios.Poll_StartOpen();
}

public class PeerTests
{
    [Fact(Timeout = 120_000)]
    public Task Identity_BothEnds() => Scenarios.Peer_Identity_BothEnds();

    [Fact(Timeout = 120_000)]
    public Task DrainAsync_WriteDrainDisconnect() => Scenarios.Peer_DrainAsync_WriteDrainDisconnect();

    [Fact(Timeout = 120_000)]
    public Task DrainAsync_CancelAndBrokenPipe() => Scenarios.Peer_DrainAsync_CancelAndBrokenPipe();
}

public class ListenerTests
{
    [Fact(Timeout = 120_000)]
    public Task Burst_AllAcceptedIntact() => Scenarios.Listener_Burst_AllAcceptedIntact();

    [Fact(Timeout = 120_000)]
    public Task Cancellation_LosesNoClient() => Scenarios.Listener_Cancellation_LosesNoClient();

    [Fact(Timeout = 120_000)]
    public Task DisposeWithPendingAccepts() => Scenarios.Listener_DisposeWithPendingAccepts();

    [Fact(Timeout = 120_000)]
    public Task ClientLeftBeforeAccept() => Scenarios.Listener_ClientLeftBeforeAccept();

    [Fact(Timeout = 120_000)]
    public Task SpreadsOverSharedReactors() => Scenarios.Listener_SpreadsOverSharedReactors();
}

public class AbiTests
{
    [Fact(Timeout = 120_000)]
    public Task DeclarationsMatchHeader() => Scenarios.Abi_DeclarationsMatchHeader();
}

public class ErrorsTests
{
    [Fact(Timeout = 120_000)]
    public Task CodesAndMessages() => Scenarios.Errors_CodesAndMessages();

    [Fact(Timeout = 120_000)]
    public Task ObjectDisposed() => Scenarios.Errors_ObjectDisposed();

    [Fact(Timeout = 120_000)]
    public Task PollClosedCancelsPipes() => Scenarios.Errors_PollClosedCancelsPipes();
}
