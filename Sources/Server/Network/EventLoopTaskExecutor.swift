import NIOCore

/// Runs a task's jobs on one event loop: a task started with it as its
/// executor preference resumes there after every wait (the blocking pool,
/// the store's sync) instead of on the concurrency pool. For a write that
/// saves two thread wake-ups (to the pool and back to the connection's
/// loop), and its audit event is stamped in the loop's own lane instead of
/// the lane the pool's threads share (docs/performance.md, "Writes").
final class EventLoopTaskExecutor: TaskExecutor {
    private let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
