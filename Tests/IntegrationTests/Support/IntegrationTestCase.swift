import Foundation
import XCTest

/// Base class for tests that start processes or spy servers: whatever a test started and did not stop is stopped in
/// `tearDown`, and if the test failed, each process's log is printed first so the failure can be explained.
///
/// Tests that do not subclass this can call `TestResources.shared.cleanUpAll()` from their own `tearDown`, or
/// `addTeardownBlock { process.terminate() }` per resource.
class IntegrationTestCase: XCTestCase {
    override func tearDown() {
        // `hasSucceeded` is still false while the test is running, so count failures instead.
        if let run = testRun, run.totalFailureCount > 0 {
            for case let process as ManagedProcess in TestResources.shared.all {
                print(
                    "--- log of \(process.name) (pid \(process.pid)): \(process.arguments.joined(separator: " ")) ---")
                print(process.log, terminator: "")
                print("--- end of log of \(process.name) ---")
            }
        }
        TestResources.shared.cleanUpAll()
        super.tearDown()
    }
}
