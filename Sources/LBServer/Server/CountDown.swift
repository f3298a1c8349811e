import LBUV

/// Collects one answer from each of `count` workers on the control loop and calls `done` once, with the errors
/// reported, when the last one has answered. Created and finished on the control loop only (worker threads
/// post their answer there through the control inbox); `@unchecked Sendable` so those posts can carry it.
final class CountDown: @unchecked Sendable {
    private var remaining: Int
    private var errors: [SetupError] = []
    private var done: (([SetupError]) -> Void)?

    init(count: Int, done: @escaping ([SetupError]) -> Void) {
        remaining = count
        self.done = done
    }

    func finish(_ error: SetupError?) {
        if let error { errors.append(error) }
        remaining -= 1
        guard remaining <= 0, let action = done else { return }
        done = nil
        action(errors)
    }
}
