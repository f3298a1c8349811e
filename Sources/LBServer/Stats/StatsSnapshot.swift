/// Every worker's counters, copied on its own loop thread and merged on the control loop: how the admin API
/// sees the data path without reading another thread's memory. A copy is cheap (plain values; the histogram
/// arrays are copied on write, at most once per collection).
struct StatsSnapshot {
    struct Backend {
        var counters = BackendCounters()
        var activeConnections = 0
        var idleConnections = 0
        var inFlight = 0
        /// What the pools' purge keeps: the recent peak of connections in use, or its decaying estimate.
        var poolNeed = 0
        /// Requests waiting for a connection slot now (`max_connections`).
        var queueLength = 0
        /// The limits learnt from the server (`limits.learn_server_limits`), summed over the workers that have
        /// one; 0 when none has.
        var learntLimit = 0

        mutating func add(_ b: Backend) {
            activeConnections += b.activeConnections
            idleConnections += b.idleConnections
            inFlight += b.inFlight
            poolNeed += b.poolNeed
            queueLength += b.queueLength
            learntLimit += b.learntLimit
            counters.merge(b.counters)
        }

        /// Open connections not idle in a pool.
        var connectionsInUse: Int { activeConnections - idleConnections }
    }

    var workers = WorkerCounters()
    var openConnections = 0
    /// HTTP/1.1 client connections reading or answering a request (the others are between requests).
    var http1Active = 0
    /// Upstream connections open now, over every backend and worker.
    var openUpstreams = 0
    var workerCount = 0
    /// Wake-up coalescing sleeps the workers' loops took (`coalesce_us`).
    var coalescedSleeps: UInt64 = 0
    /// By backend id (servers removed from the table drop out of the next snapshot).
    var backends: [String: Backend] = [:]

    mutating func merge(_ o: StatsSnapshot) {
        workerCount += o.workerCount
        openConnections += o.openConnections
        http1Active += o.http1Active
        openUpstreams += o.openUpstreams
        // With several workers the sum of their peaks: an upper bound, as for each backend.
        workers.upstreamPeak += o.workers.upstreamPeak
        coalescedSleeps &+= o.coalescedSleeps
        workers.connectionsTotal &+= o.workers.connectionsTotal
        workers.connectionsRefused &+= o.workers.connectionsRefused
        workers.connectionsRefusedPerClient &+= o.workers.connectionsRefusedPerClient
        workers.headerTimeouts &+= o.workers.headerTimeouts
        workers.idleTimeouts &+= o.workers.idleTimeouts
        workers.sendTimeouts &+= o.workers.sendTimeouts
        workers.slowReaderPauses &+= o.workers.slowReaderPauses
        workers.clientAborts &+= o.workers.clientAborts
        workers.uploadsAborted &+= o.workers.uploadsAborted
        workers.acceptErrors &+= o.workers.acceptErrors
        workers.tlsFailures &+= o.workers.tlsFailures
        for i in workers.tlsFailureReasons.indices {
            workers.tlsFailureReasons[i] &+= o.workers.tlsFailureReasons[i]
        }
        workers.tlsAcceptsDeferred.perTurn &+= o.workers.tlsAcceptsDeferred.perTurn
        workers.tlsAcceptsDeferred.perSecond &+= o.workers.tlsAcceptsDeferred.perSecond
        workers.acceptsDeferred &+= o.workers.acceptsDeferred
        for i in workers.clientCertificateRefusals.indices {
            workers.clientCertificateRefusals[i] &+= o.workers.clientCertificateRefusals[i]
        }
        workers.requests &+= o.workers.requests
        workers.inFlight += o.workers.inFlight
        workers.noServer &+= o.workers.noServer
        workers.panicRouted &+= o.workers.panicRouted
        workers.keyFallbacks &+= o.workers.keyFallbacks
        workers.responses.add(o.workers.responses)
        for i in workers.proxyErrors.indices { workers.proxyErrors[i] &+= o.workers.proxyErrors[i] }
        workers.bytesIn &+= o.workers.bytesIn
        workers.bytesOut &+= o.workers.bytesOut
        workers.requestLatency.merge(o.workers.requestLatency)
        workers.http1Connections &+= o.workers.http1Connections
        workers.h2.add(o.workers.h2)
        backends.reserveCapacity(o.backends.count)
        for (id, b) in o.backends {
            // The first part for a server is taken as it is (its histograms shared, not copied); later parts are
            // added in place.
            guard backends[id] != nil else {
                backends[id] = b
                continue
            }
            backends[id]!.add(b)
        }
    }
}

extension BackendCounters {
    mutating func merge(_ o: BackendCounters) {
        requests &+= o.requests
        responses.add(o.responses)
        connectsOpened &+= o.connectsOpened
        peakConnections += o.peakConnections
        connectErrors &+= o.connectErrors
        responseErrors &+= o.responseErrors
        reused &+= o.reused
        purged &+= o.purged
        poolFull &+= o.poolFull
        queued &+= o.queued
        queueTimeouts &+= o.queueTimeouts
        queueFull &+= o.queueFull
        peakQueue += o.peakQueue
        limitsLearnt &+= o.limitsLearnt
        retries &+= o.retries
        redispatches &+= o.redispatches
        bytesIn &+= o.bytesIn
        bytesOut &+= o.bytesOut
        tlsHandshakes &+= o.tlsHandshakes
        tlsResumed &+= o.tlsResumed
        tlsCertificateRejections &+= o.tlsCertificateRejections
        tlsHandshakeFailures &+= o.tlsHandshakeFailures
        connectLatency.merge(o.connectLatency)
        responseLatency.merge(o.responseLatency)
    }
}
