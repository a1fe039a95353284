import Syscalls

/// A staged commit's answer: success once it is durable (its log frame
/// synced and store-generation written), or the error that kept it from
/// being. Waited for on a thread (`wait`) or in a task (`durable`).
public final class CommitTicket: Sendable {
    private struct State {
        var result: Result<Void, StoreError>?
        var continuation: CheckedContinuation<Void, any Error>?
    }

    private let state = ConditionMutex(State())

    init() {}

    func complete(_ result: Result<Void, StoreError>) {
        let waiting = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            state.result = result
            defer { state.continuation = nil }
            return state.continuation
        }
        waiting?.resume(with: result.mapError { $0 as any Error })
    }

    /// Blocks the calling thread until the commit is durable or failed.
    public func wait() throws(StoreError) {
        try state.withLock(when: { $0.result != nil }) { $0.result! }.get()
    }

    /// Suspends until the commit is durable or failed.
    public func durable() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let done = state.withLock { state -> Result<Void, StoreError>? in
                if let result = state.result { return result }
                state.continuation = continuation
                return nil
            }
            if let done { continuation.resume(with: done.mapError { $0 as any Error }) }
        }
    }
}
