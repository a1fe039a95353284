import CofferCore
import FileStore
import Logging
import NIOPosix
import Server
import ServiceLifecycle

/// Reloads the store when its file changes on disk (a `git pull`, a copy
/// from another host): inotify on the state directory, debounced so that a
/// burst of writes is read once, on a thread of its own so that neither the
/// event loops nor the commit pool wait for it.
struct StoreWatch: Service {
    let services: CofferServices
    let logger: Logger
    /// Quiet time after the last event before reading the file.
    var debounceMilliseconds: Int32 = 50
    /// How often a store file commits wait on is read again.
    static let retryInterval: Duration = .seconds(5)

    func run() async throws {
        let watcher = try StoreWatcher(directory: services.store.directory)
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        let debounce = debounceMilliseconds
        var lastRead = ContinuousClock.now
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            // Wakes at least every 250 ms to notice shutdown.
            let changed = try await pool.runIfActive {
                guard try watcher.waitForChange(timeoutMilliseconds: 250) else { return false }
                while try watcher.waitForChange(timeoutMilliseconds: debounce) {}
                return true
            }
            // A file a reload could not take (an I/O error) raises no new
            // event, yet commits wait on it: read again every few seconds.
            let retry = services.store.waitsOnAStoreFile && lastRead.duration(to: .now) > Self.retryInterval
            guard changed || retry else { continue }
            lastRead = .now
            // Reading and checking a large store takes a while: on the
            // watcher's own thread, not a cooperative one.
            let services = self.services
            let outcome = try await pool.runIfActive { services.reloadStore() }
            switch outcome {
            case .success(.unchanged):
                break
            case .success(.replaced(let old, let new)):
                logger.info("store reloaded", metadata: ["generation": "\(old.generation) -> \(new.generation)"])
            case .failure(let error):
                logger.error("store file refused; still serving the last good one", metadata: ["reason": "\(error.message)"])
            }
        }
        try? await pool.shutdownGracefully()
    }
}
