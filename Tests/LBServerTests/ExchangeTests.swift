import LBHTTP
import XCTest

@testable import LBServer

/// The exchange as short event scripts with the actions each step must produce: no sockets, no loop.
final class ExchangeTests: XCTestCase {
    private var x = Exchange(retries: 2)
    private var actions: [ExchangeAction] = []

    /// Runs one event and returns the actions it produced.
    private func step(_ event: (inout Exchange, inout [ExchangeAction]) -> Void) -> [ExchangeAction] {
        actions.removeAll()
        event(&x, &actions)
        return actions
    }

    private func get(keepAlive: Bool = true, versionMinor: Int = 1) -> RequestFacts {
        var f = RequestFacts()
        f.method = .get
        f.keepAlive = keepAlive
        f.versionMinor = versionMinor
        return f
    }

    private func post(chunked: Bool = false, expectContinue: Bool = false) -> RequestFacts {
        var f = RequestFacts()
        f.method = .post
        f.hasBody = true
        f.chunked = chunked
        f.expectContinue = expectContinue
        return f
    }

    private func begin(_ facts: RequestFacts, draining: Bool = false) -> [ExchangeAction] {
        step { $0.begin(facts, draining: draining, now: 1_000, &$1) }
    }

    /// A request head went to a freshly connected server 0.
    private func beginOnFreshUpstream(_ facts: RequestFacts) {
        XCTAssertEqual(begin(facts), [.pick])
        x.picked(server: 0)
        if !facts.hasBody { XCTAssertEqual(step { $0.requestEnd(&$1) }, []) }
        XCTAssertEqual(step { $0.upstreamReady(connectNanos: 50, now: 2_000, &$1) }, [.sendRequestHead])
    }

    private func okHead(status: Int = 200, framing: HTTPFraming = .contentLength(2)) -> [ExchangeAction] {
        var accepted = false
        let a = step { accepted = $0.responseHead(status: status, framing: framing, now: 5_000, &$1) }
        XCTAssertTrue(accepted)
        return a
    }

    // MARK: the ordinary paths

    func testGetOnAFreshUpstreamStreamsTheResponseAndWaitsForTheNextRequest() {
        beginOnFreshUpstream(get())
        XCTAssertFalse(x.readsRequest, "the next pipelined head waits for this response")
        XCTAssertEqual(okHead(), [.responseStarted(server: 0), .passive(server: 0, success: true),
                                  .writeResponseHead(keepAlive: true, chunked: false)])
        XCTAssertFalse(x.responseBody(count: 2))
        XCTAssertEqual(step { $0.responseEnd(reusable: true, &$1) },
                       [.releaseUpstream(reusable: true), .log(.ok), .finished(keepAlive: true)])
        XCTAssertTrue(x.isIdle)
        XCTAssertEqual(x.record, ExchangeRecord(start: 1_000, sentAt: 2_000, connectNanos: 50, responseNanos: 3_000,
                                                status: 200, bytes: 2, server: 0))
    }

    func testPooledUpstreamTakesTheHeadAndTheBodyEndSendsTheLastChunk() {
        XCTAssertEqual(begin(post(chunked: true)), [.pick])
        XCTAssertFalse(x.readsRequest, "the body stays in the socket until an upstream has the head")
        x.picked(server: 3)
        XCTAssertEqual(step { $0.upstreamReady(connectNanos: nil, now: 2_000, &$1) }, [.sendRequestHead])
        XCTAssertTrue(x.readsRequest)
        XCTAssertTrue(x.bodyGoesUpstream)
        XCTAssertEqual(step { $0.requestEnd(&$1) }, [.sendLastChunk])
        XCTAssertNil(x.record.connectNanos)
    }

    func testChunkedAndCloseDelimitedResponsesAreReframedForHTTP11Clients() {
        beginOnFreshUpstream(get())
        XCTAssertEqual(okHead(framing: .closeDelimited).last, .writeResponseHead(keepAlive: true, chunked: true))
        XCTAssertTrue(x.responseBody(count: 10))
        XCTAssertEqual(step { $0.responseEnd(reusable: false, &$1) },
                       [.endChunkedResponse, .releaseUpstream(reusable: false), .log(.ok), .finished(keepAlive: true)])
    }

    func testHTTP10ClientGetsAChunkedResponseUntilTheClose() {
        beginOnFreshUpstream(get(keepAlive: true, versionMinor: 0))
        XCTAssertEqual(okHead(framing: .chunked).last, .writeResponseHead(keepAlive: false, chunked: false))
        XCTAssertEqual(step { $0.responseEnd(reusable: true, &$1) },
                       [.releaseUpstream(reusable: true), .log(.ok), .finished(keepAlive: false)])
    }

    func testHeadResponseHasNoBodyToReframe() {
        var facts = get()
        facts.method = .head
        beginOnFreshUpstream(facts)
        XCTAssertEqual(okHead(framing: .chunked).last, .writeResponseHead(keepAlive: true, chunked: false))
    }

    func testConnectIsRefusedWith405AndTheConnectionCloses() {
        var facts = get()
        facts.method = .connect
        XCTAssertEqual(begin(facts), [.log(.proxyResponse), .respond(status: 405, close: true),
                                      .closeClient(afterFlush: true)])
        XCTAssertEqual(x.state, .done)
    }

    // MARK: the review findings

    /// A client that sends a GET and shuts down its sending side while the connect is under way still gets
    /// its response (the request is complete: EOF only ends keep-alive).
    func testHalfCloseRightAfterACompleteRequestStillGetsTheResponse() {
        XCTAssertEqual(begin(get()), [.pick])
        x.picked(server: 0)
        XCTAssertEqual(step { $0.requestEnd(&$1) }, [])
        XCTAssertEqual(step { $0.clientEOF(&$1) }, [])
        XCTAssertEqual(step { $0.upstreamReady(connectNanos: 1, now: 2, &$1) }, [.sendRequestHead])
        XCTAssertEqual(okHead().last, .writeResponseHead(keepAlive: false, chunked: false))
        XCTAssertEqual(step { $0.responseEnd(reusable: true, &$1) },
                       [.releaseUpstream(reusable: true), .log(.ok), .finished(keepAlive: false)])
    }

    func testHalfCloseWhileTheBodyIsStillExpectedClosesTheClient() {
        XCTAssertEqual(begin(post()), [.pick])
        x.picked(server: 0)
        XCTAssertEqual(step { $0.clientEOF(&$1) }, [.log(.clientAborted), .closeClient(afterFlush: false)])
        XCTAssertEqual(step { $0.clientClosed(&$1) }, [.dropUpstream], "logged once, at the EOF")
    }

    /// The keep-alive race (a pooled connection closed before any byte) replays the request without counting
    /// an attempt, and the replayed request must not read on into the next pipelined head.
    func testKeepAliveRaceReplayDoesNotReadThePipelinedRequest() {
        XCTAssertEqual(begin(get()), [.pick])
        x.picked(server: 0)
        XCTAssertEqual(step { $0.upstreamReady(connectNanos: nil, now: 2, &$1) }, [.sendRequestHead])
        XCTAssertEqual(step { $0.requestEnd(&$1) }, [])
        XCTAssertEqual(step { $0.upstreamFailed(.closedBeforeResponse, wasReused: true, &$1) }, [.pick])
        XCTAssertEqual(x.tried, [])
        XCTAssertFalse(x.readsRequest)
        x.picked(server: 0)
        XCTAssertEqual(step { $0.upstreamReady(connectNanos: 9, now: 3, &$1) }, [.sendRequestHead])
        XCTAssertFalse(x.readsRequest, "the request already ended: what is pending is the next request")
        XCTAssertEqual(x.state, .forwarding(.complete, .awaitingHead))
    }

    func testRetryOnTheNextServerDoesNotReadThePipelinedRequest() {
        beginOnFreshUpstream(get())
        XCTAssertEqual(step { $0.upstreamFailed(.closedBeforeResponse, wasReused: false, &$1) },
                       [.passive(server: 0, success: false), .countRetry(server: 0), .pick])
        x.picked(server: 1)
        XCTAssertEqual(step { $0.upstreamReady(connectNanos: 9, now: 3, &$1) }, [.sendRequestHead])
        XCTAssertFalse(x.readsRequest)
        XCTAssertEqual(okHead().last, .writeResponseHead(keepAlive: true, chunked: false))
        XCTAssertEqual(step { $0.responseEnd(reusable: true, &$1) }.last, .finished(keepAlive: true))
        XCTAssertEqual(x.tried, [0, 1])
    }

    // MARK: 100-continue and interim responses

    func testExpectContinueIsAnsweredOnceWhenAnUpstreamIsReady() {
        XCTAssertEqual(begin(post(expectContinue: true)), [.pick])
        x.picked(server: 0)
        XCTAssertEqual(step { $0.upstreamReady(connectNanos: 1, now: 2, &$1) }, [.writeContinue, .sendRequestHead])
        XCTAssertEqual(okHead(status: 100), [], "the backend's own 100 is not passed on twice")
        XCTAssertEqual(okHead(status: 103), [.writeInterim])
        XCTAssertEqual(x.state, .forwarding(.streaming, .awaitingHead))
    }

    func testInterimResponsesAreNotSentToHTTP10Clients() {
        beginOnFreshUpstream(get(versionMinor: 0))
        XCTAssertEqual(okHead(status: 103), [])
    }

    // MARK: early responses, failures, tunnels

    func testEarlyResponseWhileTheBodyArrivesClosesAfterTheResponse() {
        XCTAssertEqual(begin(post()), [.pick])
        x.picked(server: 0)
        _ = step { $0.upstreamReady(connectNanos: 1, now: 2, &$1) }
        XCTAssertEqual(okHead(status: 413).last, .writeResponseHead(keepAlive: false, chunked: false))
        XCTAssertEqual(step { $0.responseEnd(reusable: true, &$1) },
                       [.releaseUpstream(reusable: false), .log(.ok), .closeClient(afterFlush: true)])
        XCTAssertFalse(x.readsRequest)
    }

    func testNoCandidateAnswers503AndKeepsABodylessRequestsConnection() {
        XCTAssertEqual(begin(get()), [.pick])
        XCTAssertEqual(step { $0.noCandidate(&$1) }, [.countNoServer, .log(.proxyResponse),
                                                      .respond(status: 503, close: false)])
        XCTAssertTrue(x.readsRequest, "the request's end is still to be read")
        XCTAssertEqual(step { $0.requestEnd(&$1) }, [.finished(keepAlive: true)])
    }

    func testNoCandidateForAnUnreadBodyClosesTheConnection() {
        XCTAssertEqual(begin(post()), [.pick])
        XCTAssertEqual(step { $0.noCandidate(&$1) },
                       [.countNoServer, .log(.proxyResponse), .respond(status: 503, close: true),
                        .closeClient(afterFlush: true)])
    }

    func testRetriesAreBoundedAndTheLastFailureIsWhatTheClientSees() {
        x = Exchange(retries: 1)
        beginOnFreshUpstream(get())
        XCTAssertEqual(step { $0.upstreamFailed(.timeout, wasReused: false, &$1) }.last, .pick)
        x.picked(server: 1)
        _ = step { $0.upstreamReady(connectNanos: 1, now: 2, &$1) }
        XCTAssertEqual(step { $0.upstreamFailed(.badResponse, wasReused: false, &$1) },
                       [.passive(server: 1, success: false), .dropUpstream, .log(.proxyResponse),
                        .respond(status: 502, close: false), .finished(keepAlive: true)])
    }

    func testConnectTimeoutsMoveOnAndEndIn504() {
        x = Exchange(retries: 1)
        XCTAssertEqual(begin(get()), [.pick])
        x.picked(server: 0)
        _ = step { $0.requestEnd(&$1) }
        XCTAssertEqual(step { $0.connectFailed(.timedOut, &$1) },
                       [.countRedispatch(server: 0), .passive(server: 0, success: false), .pick])
        x.picked(server: 1)
        XCTAssertEqual(step { $0.connectFailed(.refused, &$1) },
                       [.countRedispatch(server: 1), .passive(server: 1, success: false),
                        .log(.proxyResponse), .respond(status: 504, close: false), .finished(keepAlive: true)])
    }

    func testAFailedTLSHandshakeMovesOnAndEndsIn502() {
        x = Exchange(retries: 1)
        XCTAssertEqual(begin(get()), [.pick])
        x.picked(server: 0)
        _ = step { $0.requestEnd(&$1) }
        XCTAssertEqual(step { $0.connectFailed(.tls, &$1) },
                       [.countRedispatch(server: 0), .passive(server: 0, success: false), .pick])
        x.picked(server: 1)
        XCTAssertEqual(step { $0.connectFailed(.refused, &$1) },
                       [.countRedispatch(server: 1), .passive(server: 1, success: false),
                        .log(.proxyResponse), .respond(status: 502, close: false), .finished(keepAlive: true)])
    }

    /// A server picked by panic routing was already known down: whatever its connect failure, the client gets
    /// what it gets with panic routing off, 503 (no server), and the failure still counts for passive health.
    func testFailedPanicConnectsEndIn503WhateverTheFailure() {
        x = Exchange(retries: 1)
        XCTAssertEqual(begin(get()), [.pick])
        x.picked(server: 0, panic: true)
        _ = step { $0.requestEnd(&$1) }
        XCTAssertEqual(step { $0.connectFailed(.timedOut, &$1) },
                       [.countRedispatch(server: 0), .passive(server: 0, success: false), .pick])
        x.picked(server: 1, panic: true)
        XCTAssertEqual(step { $0.connectFailed(.tls, &$1) },
                       [.countRedispatch(server: 1), .passive(server: 1, success: false), .countNoServer,
                        .log(.proxyResponse), .respond(status: 503, close: false), .finished(keepAlive: true)])
    }

    /// A panic pick that connects is an ordinary attempt: its response failures answer as they always do.
    func testAPanicAttemptThatConnectsFailsLikeAnyOther() {
        x = Exchange(retries: 0)
        XCTAssertEqual(begin(get()), [.pick])
        x.picked(server: 2, panic: true)
        _ = step { $0.requestEnd(&$1) }
        XCTAssertEqual(step { $0.upstreamReady(connectNanos: 1, now: 2, &$1) }, [.sendRequestHead])
        XCTAssertEqual(step { $0.upstreamFailed(.timeout, wasReused: false, &$1) },
                       [.passive(server: 2, success: false), .dropUpstream, .log(.proxyResponse),
                        .respond(status: 504, close: false), .finished(keepAlive: true)])
    }

    func testResponseCutShortAbortsTheClient() {
        beginOnFreshUpstream(get())
        _ = okHead()
        XCTAssertEqual(step { $0.upstreamFailed(.truncated, wasReused: false, &$1) },
                       [.passive(server: 0, success: false), .log(.upstreamAborted), .abortClient])
        XCTAssertEqual(step { $0.clientClosed(&$1) }, [.dropUpstream], "logged once")
    }

    func testBrokenRequestBodyIsAnsweredBeforeTheResponseAndAbortedAfter() {
        XCTAssertEqual(begin(post()), [.pick])
        x.picked(server: 0)
        _ = step { $0.upstreamReady(connectNanos: 1, now: 2, &$1) }
        XCTAssertEqual(step { $0.requestFailed(status: 400, &$1) },
                       [.dropUpstream, .log(.proxyResponse), .respond(status: 400, close: true),
                        .closeClient(afterFlush: true)])

        XCTAssertEqual(begin(post()), [.pick])
        x.picked(server: 0)
        _ = step { $0.upstreamReady(connectNanos: 1, now: 2, &$1) }
        _ = okHead()
        XCTAssertEqual(step { $0.requestFailed(status: 400, &$1) }, [.dropUpstream, .log(.clientAborted), .abortClient])
    }

    func testUnsolicitedSwitchingProtocolsIsRefused() {
        beginOnFreshUpstream(get())
        var accepted = true
        XCTAssertEqual(step { accepted = $0.responseHead(status: 101, framing: .none, now: 3, &$1) }, [])
        XCTAssertFalse(accepted)
    }

    func testUpgradeBecomesATunnelThatEndsOnce() {
        var facts = get()
        facts.isUpgrade = true
        beginOnFreshUpstream(facts)
        XCTAssertEqual(okHead(status: 101, framing: .none).last, .writeResponseHead(keepAlive: true, chunked: false))
        XCTAssertEqual(step { $0.upgraded(&$1) }, [.startTunnel])
        XCTAssertEqual(step { $0.tunnelEnded(&$1) }, [.log(.ok), .closeClient(afterFlush: true)])
        XCTAssertEqual(step { $0.clientClosed(&$1) }, [.dropUpstream])
    }

    /// A client ending its tunnel is a normal end, logged once, and no failure of the backend.
    func testClientEndingATunnelIsNotABackendFailure() {
        var facts = get()
        facts.isUpgrade = true
        beginOnFreshUpstream(facts)
        _ = okHead(status: 101, framing: .none)
        XCTAssertEqual(step { $0.upgraded(&$1) }, [.startTunnel])
        XCTAssertEqual(step { $0.clientEOF(&$1) }, [.log(.ok), .closeTunnel])
        XCTAssertEqual(step { $0.upstreamFailed(.truncated, wasReused: false, &$1) }, [])
        XCTAssertEqual(step { $0.tunnelEnded(&$1) }, [])
        XCTAssertEqual(step { $0.clientClosed(&$1) }, [.dropUpstream])
    }

    func testClientGoneMidExchangeIsLoggedOnceAsAborted() {
        beginOnFreshUpstream(get())
        XCTAssertEqual(step { $0.clientClosed(&$1) }, [.log(.clientAborted), .dropUpstream])
        XCTAssertEqual(step { $0.clientClosed(&$1) }, [.dropUpstream])
        x = Exchange(retries: 2)
        XCTAssertEqual(step { $0.clientClosed(&$1) }, [], "no exchange, nothing to log")
    }

    func testRejectedHeadIsLoggedAndClosesTheConnection() {
        XCTAssertEqual(step { $0.rejectHead(status: 431, &$1) },
                       [.logRejectedHead(status: 431), .respond(status: 431, close: true),
                        .closeClient(afterFlush: true)])
        XCTAssertFalse(x.readsRequest)
    }

    func testDrainingClosesAfterTheResponseAndCountsNoPassiveFailure() {
        beginOnFreshUpstream(get())
        x.drain()
        XCTAssertEqual(step { $0.upstreamFailed(.truncated, wasReused: false, &$1) },
                       [.countRetry(server: 0), .pick])
        x.picked(server: 1)
        _ = step { $0.upstreamReady(connectNanos: 1, now: 2, &$1) }
        XCTAssertEqual(okHead().last, .writeResponseHead(keepAlive: false, chunked: false))
        XCTAssertEqual(begin(get(), draining: true), [.pick])
        XCTAssertFalse(x.keepAlive)
    }

    func testBackendErrorsCountAsPassiveFailures() {
        beginOnFreshUpstream(get())
        XCTAssertEqual(okHead(status: 503), [.responseStarted(server: 0), .passive(server: 0, success: false),
                                             .writeResponseHead(keepAlive: true, chunked: false)])
    }

    // MARK: the retry policy as a table

    func testRetryPolicyTable() {
        typealias Row = (cause: UpstreamFailure, reused: Bool, method: HTTPMethod, body: Bool, complete: Bool,
                         attempts: Int, expected: Exchange.AfterFailure)
        let rows: [Row] = [
            // The keep-alive race replays any complete body-less request, idempotent or not, attempts or not.
            (.closedBeforeResponse, true, .get, false, true, 1, .replay),
            (.closedBeforeResponse, true, .post, false, true, 9, .replay),
            // ...but not one whose body was streamed, nor one not yet complete.
            (.closedBeforeResponse, true, .post, true, true, 1, .fail),
            (.closedBeforeResponse, true, .get, false, false, 1, .fail),
            // A fresh connection that failed: idempotent body-less requests move on within the bound.
            (.closedBeforeResponse, false, .get, false, true, 1, .retry),
            (.timeout, false, .get, false, true, 3, .retry),
            (.timeout, false, .get, false, true, 4, .fail),
            (.badResponse, false, .head, false, true, 1, .retry),
            (.truncated, true, .options, false, true, 1, .retry),
            (.truncated, false, .trace, false, true, 1, .retry),
            (.truncated, false, .put, false, true, 1, .retry),
            (.truncated, false, .delete, false, true, 1, .retry),
            // Not idempotent: never sent twice.
            (.timeout, false, .post, false, true, 1, .fail),
            (.badResponse, false, .patch, false, true, 1, .fail),
            (.truncated, false, .other, false, true, 1, .fail),
            // A body that went out cannot be sent again.
            (.timeout, false, .put, true, true, 1, .fail),
            (.closedBeforeResponse, false, .get, true, true, 1, .fail),
        ]
        for (i, r) in rows.enumerated() {
            XCTAssertEqual(
                Exchange.afterFailure(r.cause, wasReused: r.reused, method: r.method, hasBody: r.body,
                                      requestComplete: r.complete, attempts: r.attempts, retries: 3),
                r.expected, "row \(i)")
        }
        // A shed connection: back to the same server for an idempotent complete body-less request, whatever the
        // attempts, at most `maxShedReplays` times; then the ordinary rule.
        typealias ShedRow = (method: HTTPMethod, body: Bool, attempts: Int, sheds: Int, expected: Exchange.AfterFailure)
        let shedRows: [ShedRow] = [
            (.get, false, 1, 0, .replay),
            (.get, false, 4, 1, .replay),
            (.get, false, 1, Exchange.maxShedReplays, .retry),
            (.get, false, 4, Exchange.maxShedReplays, .fail),
            (.post, false, 1, 0, .fail),
            (.get, true, 1, 0, .fail),
        ]
        for (i, r) in shedRows.enumerated() {
            XCTAssertEqual(
                Exchange.afterFailure(.shed, wasReused: false, method: r.method, hasBody: r.body,
                                      requestComplete: true, attempts: r.attempts, retries: 3, sheds: r.sheds),
                r.expected, "shed row \(i)")
        }
        // On a reused connection it is the keep-alive race whatever else it is: any method, no bound.
        XCTAssertEqual(
            Exchange.afterFailure(.shed, wasReused: true, method: .post, hasBody: false, requestComplete: true,
                                  attempts: 9, retries: 3, sheds: Exchange.maxShedReplays),
            .replay)
    }

    /// A shed connection is not held against the server's health, and the request goes back to the same
    /// server (counted as a retry) until the bound, after which it fails as any closed connection does.
    func testAShedConnectionIsReplayedOnTheSameServerAndNotCountedAgainstItsHealth() {
        beginOnFreshUpstream(get())
        for replay in 0..<Exchange.maxShedReplays {
            let a = step { $0.upstreamFailed(.shed, wasReused: false, &$1) }
            XCTAssertFalse(a.contains(.passive(server: 0, success: false)), "replay \(replay): \(a)")
            XCTAssertEqual(a, [.countRetry(server: 0), .pick], "replay \(replay)")
            XCTAssertEqual(x.tried, [], "the same server stays a candidate")
            x.picked(server: 0)
            XCTAssertEqual(step { $0.upstreamReady(connectNanos: 50, now: 3_000, &$1) }, [.sendRequestHead])
        }
        // Past the bound: the ordinary rule, which moves on to another server, still without a passive failure.
        let last = step { $0.upstreamFailed(.shed, wasReused: false, &$1) }
        XCTAssertEqual(last, [.countRetry(server: 0), .pick])
        XCTAssertEqual(x.tried, [0], "server 0 is no longer a candidate")
    }
}
