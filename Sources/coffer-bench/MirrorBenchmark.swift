import FileStore
import Foundation
import Keyring
import LockedMemory
import Mirror
import Model
import Seal

/// `coffer-bench mirror N CONNINFO`: N secrets through the outbox into an
/// empty PostgreSQL database, the way a first sync sends them (the goal in
/// docs/performance.md: 20k rows/s or more).
enum MirrorBenchmark {
    static func run(count: Int, conninfo: String) throws {
        try SecureHeap.initialize()
        let directory = NSTemporaryDirectory() + "coffer-bench-mirror-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let keyring = Keyring(current: try MasterKey.generate())
        let sealer = RecordSealer()
        let store = try SecretStore.open(directory: directory, authenticator: try StoreAuthenticator(keyring: keyring, sealer: sealer))
        try StoreBenchmark.fill(store, count: count, sealer: sealer, key: try keyring.current())
        store.keepsOutbox = true
        var settings = Mirror.Settings(conninfo: conninfo)
        settings.batchSize = Int(ProcessInfo.processInfo.environment["COFFER_BENCH_BATCH"] ?? "") ?? settings.batchSize
        let mirror = try Mirror(settings: settings, store: store, keyring: keyring, sealer: sealer,
                                stateDirectory: directory, events: { _ in })
        try store.queueEverything()
        let start = ContinuousClock.now
        let pushed = try mirror.pushOnce()
        let seconds = StoreBenchmark.seconds(since: start)
        precondition(pushed == count && store.snapshot.outbox.isEmpty, "pushed \(pushed) of \(count)")
        print(String(format: "mirror: %d secrets (%d rows with versions) pushed in %.2f s: %.0f secrets/s",
                     count, count * 2, seconds, Double(count) / seconds))
    }
}
