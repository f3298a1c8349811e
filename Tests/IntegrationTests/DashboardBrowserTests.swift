import Foundation
import XCTest

/// The dashboard (`GET /` on the admin listener) in a real browser: headless Chromium loads it against a running
/// balancer, its scripts poll the admin API, and the rendered DOM must name every server the API lists. A
/// screenshot is kept as a test artifact at `<package root>/artifacts/dashboard.png` (gitignored).
final class DashboardBrowserTests: IntegrationTestCase {
    func testDashboardIsSelfContainedHTML() throws {
        let backend = try LBBinaries.startDemoBackend(name: "b1")
        let lb = try startProxy(backends: [backend.address])
        let answer = try AdminClient(port: lb.adminPort).call("GET", "/")
        XCTAssertEqual(answer.status, 200)
        XCTAssertEqual(answer.response.header("Content-Type"), "text/html; charset=utf-8")
        let html = answer.response.bodyString
        XCTAssertTrue(html.hasPrefix("<!doctype html>"))
        // No external assets: nothing is loaded from another origin (no CDN, fonts or scripts by URL).
        for marker in ["http://", "https://", "<script src", "<link", "@import"] {
            XCTAssertFalse(html.contains(marker), "the page must be self-contained; found \(marker)")
        }
    }

    func testChromiumRendersEveryServerAndSavesScreenshot() throws {
        guard let browser = ["chromium", "chromium-browser", "google-chrome"].first(where: {
            ManagedProcess.resolveExecutable($0) != nil
        }) else {
            throw XCTSkip("chromium not installed (Debian: apt-get install chromium); dashboard not rendered")
        }
        let backends = try (1...3).map { try LBBinaries.startDemoBackend(name: "b\($0)") }
        let lb = try startProxy(backends: backends.map(\.address))
        let admin = AdminClient(port: lb.adminPort)
        _ = try TrafficProbe.backends(port: lb.proxyPort, paths: TrafficProbe.paths(200))
        let drained = backends[1].address
        let drain = try admin.call("PATCH", "/manage/servers/\(drained)", body: #"{"state":"draining"}"#)
        XCTAssertEqual(drain.status, 200, drain.error)
        let ids = try admin.servers().keys.sorted()
        XCTAssertEqual(ids.count, 3)

        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("lb-chromium-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: profile) }
        let url = "http://127.0.0.1:\(lb.adminPort)/"
        let common = [
            "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--user-data-dir=\(profile.path)",
            "--window-size=1280,900", "--virtual-time-budget=5000",
        ]
        let dump = ManagedProcess.run(browser, common + ["--dump-dom", url], timeout: 90)
        XCTAssertEqual(dump.status, 0, dump.stderr)
        let dom = String(decoding: dump.stdout, as: UTF8.self)
        for id in ids {
            XCTAssertTrue(dom.contains("<tr data-server=\"\(id)\""), "the servers table has a row for \(id)")
            XCTAssertTrue(dom.contains("data-server=\"\(id)\"><title>"), "the keyspace ring has an arc for \(id)")
        }
        XCTAssertTrue(dom.contains(#"<span class="badge draining">draining</span>"#), "the drained server shows it")

        let artifacts = LBBinaries.packageRoot.appendingPathComponent("artifacts")
        try FileManager.default.createDirectory(at: artifacts, withIntermediateDirectories: true)
        let png = artifacts.appendingPathComponent("dashboard.png")
        try? FileManager.default.removeItem(at: png)
        let shot = ManagedProcess.run(browser, common + ["--screenshot=\(png.path)", url], timeout: 90)
        XCTAssertEqual(shot.status, 0, shot.stderr)
        let size = ((try? FileManager.default.attributesOfItem(atPath: png.path))?[.size] as? Int) ?? 0
        XCTAssertGreaterThan(size, 10_000, "screenshot at \(png.path)")
    }
}
