import LBDNS

/// The `lb_dns_*` series of `/metrics`, present only with a dns source.
extension AdminServer {
    func dnsMetrics(_ m: inout PrometheusText, _ dns: DNSSource) {
        let now = server.loop.now
        m.family("lb_dns_resolutions_total", .counter, "Resolutions of the DNS source's name started.")
        m.sample("lb_dns_resolutions_total", [], dns.resolutions)
        m.family("lb_dns_answers_total", .counter, "Resolutions that answered with at least one server.")
        m.sample("lb_dns_answers_total", [], dns.answers)
        m.family(
            "lb_dns_failures_total", .counter,
            "Resolutions that failed, by kind; all but nxdomain keep the set in force.")
        for kind in DNSFailureKind.allCases {
            m.sample("lb_dns_failures_total", [("kind", kind.rawValue)], dns.failures[kind] ?? 0)
        }
        m.family(
            "lb_dns_failing", .gauge, "1 while the last resolution failed (the set in force is the last good one).")
        m.sample("lb_dns_failing", [], dns.consecutiveFailures > 0 ? 1 : 0)
        m.family("lb_dns_ttl_seconds", .gauge, "The smallest TTL of the last answer with servers.")
        m.sample("lb_dns_ttl_seconds", [], Int(dns.lastTTLSeconds ?? 0))
        if let at = dns.lastAnswerMs {
            m.family("lb_dns_last_answer_age_seconds", .gauge, "Seconds since the last answer with servers.")
            m.sample("lb_dns_last_answer_age_seconds", [], Double(now - min(at, now)) / 1000)
        }
        m.family("lb_dns_apply_failures_total", .counter, "Resolved server sets that could not be built into routing.")
        m.sample("lb_dns_apply_failures_total", [], server.dnsApplyFailures)
    }
}
