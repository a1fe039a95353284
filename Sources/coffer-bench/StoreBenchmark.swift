import FileStore
import Foundation
import Keyring
import LockedMemory
import Model
import Seal
import Syscalls

/// `scripts/bench` (docs/benchmarks.md): how long a large store takes to
/// load and to reload, and whether readers wait during a reload. Figures,
/// not pass/fail: speed goals are tracked here, not in timed tests.
@main
struct CofferBench {
    static func main() throws {
        let arguments = Array(CommandLine.arguments.dropFirst())
        switch arguments.first {
        case "mirror":
            guard arguments.count == 3, let count = Int(arguments[1]) else { fatalError("usage: coffer-bench mirror N CONNINFO") }
            try MirrorBenchmark.run(count: count, conninfo: arguments[2])
        case "gets":
            guard arguments.count == 4 else { fatalError("usage: coffer-bench gets COFFERD WORKDIR JSON-OUT") }
            try GetBenchmark(cofferd: arguments[1], work: arguments[2], jsonOut: arguments[3]).run()
        case "daemon":
            guard arguments.count == 5, let count = Int(arguments[1]) else {
                fatalError("usage: coffer-bench daemon N COFFERD WORKDIR JSON-OUT")
            }
            try DaemonBenchmark(count: count, cofferd: arguments[2], work: arguments[3], jsonOut: arguments[4]).run()
        case "writes":
            guard arguments.count == 4 else { fatalError("usage: coffer-bench writes COFFERD WORKDIR JSON-OUT") }
            try WriteBenchmark(cofferd: arguments[1], work: arguments[2], jsonOut: arguments[3]).run()
        case "load":
            // Gets against a running cofferd, for profiling it (docs/performance.md).
            // With the server's PID, its CPU per request too.
            guard (4...5).contains(arguments.count), let clients = Int(arguments[2]), let each = Int(arguments[3]) else {
                fatalError("usage: coffer-bench load SOCKET CLIENTS REQUESTS-EACH [SERVER-PID]")
            }
            GetBenchmark.load(socket: arguments[1], clients: clients, each: each, server: arguments.count == 5 ? Int32(arguments[4]) : nil)
        default:
            try StoreBenchmark.run(count: Int(arguments.dropFirst().first ?? "") ?? 100_000)
        }
    }
}

enum StoreBenchmark {
    /// `count` secrets `bench/groupN/secretI` = `value-I`, sealed, in one commit.
    static func fill(_ store: SecretStore, count: Int, sealer: RecordSealer, key: MasterKey) throws {
        try store.commit { storeID, secrets in
            for i in 0..<count {
                let name = try SecretName("bench/group\(i % 100)/secret\(i)")
                secrets[name] = try secret(name, value: "value-\(i)", storeID: storeID, sealer: sealer, key: key)
            }
        }
    }

    /// One sealed text secret with a single version, as a put would make it.
    static func secret(_ name: SecretName, value: String, storeID: String, sealer: RecordSealer, key: MasterKey) throws -> Secret {
        let identity = RecordIdentity(storeID: storeID, name: name.rawValue, version: 1, protection: "sealed")
        let sealed = try Array(value.utf8).withUnsafeBytes { try sealer.seal($0, for: identity, with: key) }
        return Secret(name: name, kind: .generic, protection: .sealed, versions: [
            SecretVersion(version: 1, sealed: sealed, encoding: .text, createdAt: 1_800_000_000, createdBy: "uid:0",
                          id: try SecureRandom.hex(8)),
        ])
    }

    static func run(count: Int) throws {
        try SecureHeap.initialize()
        let directory = NSTemporaryDirectory() + "coffer-bench-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }

        let keyring = Keyring(current: try MasterKey.generate())
        let sealer = RecordSealer()
        let authenticator = try StoreAuthenticator(keyring: keyring, sealer: sealer)
        let key = try keyring.current()

        var clock = ContinuousClock.now
        let writer = try SecretStore.open(directory: directory, authenticator: authenticator)
        try fill(writer, count: count, sealer: sealer, key: key)
        // The fill is one commit in the log; written whole as store.json, a
        // load reads the snapshot, as a cofferd started later would.
        try writer.compactNow()
        let sealSeconds = seconds(since: clock)
        let size = (try FileManager.default.attributesOfItem(atPath: writer.path)[.size] as? Int) ?? 0

        clock = .now
        let loaded = try SecretStore.open(directory: directory, authenticator: authenticator)
        let loadSeconds = seconds(since: clock)
        precondition(loaded.snapshot.secrets.count == count)

        // A reload of a newer file (the writer's state and one more change,
        // as another host would export it) while a reader thread takes
        // snapshots as fast as it can.
        try dropNewerFile(after: writer, in: directory) { $0[try SecretName("bench/group0/secret0")] = .some(nil) }
        let reading = ReaderProbe(store: loaded)
        reading.start()
        clock = .now
        _ = try loaded.reload()
        let reloadSeconds = seconds(since: clock)
        let (reads, worst) = reading.stop()

        // A put's commit with the outbox empty, then holding every name (a
        // mirror away since they all changed): it should cost the same.
        let quiet = try putMedian(writer, sealer: sealer, key: key)
        writer.keepsOutbox = true
        try writer.queueEverything()
        precondition(writer.snapshot.outbox.count == writer.snapshot.secrets.count)
        let queued = try putMedian(writer, sealer: sealer, key: key)

        print("secrets:               \(count)")
        print("store file:            \(size / 1024) KiB")
        print("seal + first commit:   \(format(sealSeconds)) s")
        print("load (parse + MAC):    \(format(loadSeconds)) s")
        print("reload (opens what changed): \(format(reloadSeconds)) s")
        print("reads during reload:   \(reads), slowest \(format(worst * 1000)) ms")
        print("commit of one put, median: \(format(quiet * 1000)) ms; with all \(count) names in the outbox: \(format(queued * 1000)) ms")
    }

    /// The median time of 50 commits, each a new version of one secret.
    static func putMedian(_ store: SecretStore, sealer: RecordSealer, key: MasterKey) throws -> Double {
        var times: [Double] = []
        for i in 0..<50 {
            let name = try SecretName("bench/put/secret\(i % 5)")
            let clock = ContinuousClock.now
            try store.commit { storeID, secrets in
                secrets[name] = try secret(name, value: "put-\(i)", storeID: storeID, sealer: sealer, key: key)
            }
            times.append(seconds(since: clock))
        }
        return times.sorted()[times.count / 2]
    }

    /// Writes, as store.json in `directory`, the file of `store`'s next
    /// generation with `change` applied: what another host's export would
    /// be. `store` itself does not change.
    static func dropNewerFile(
        after store: SecretStore, in directory: String, _ change: (inout [SecretName: Secret?]) throws -> Void
    ) throws {
        let now = store.snapshot
        var changes: [SecretName: Secret?] = [:]
        try change(&changes)
        let next = StoreSnapshot(storeID: now.storeID, generation: now.generation + 1, secrets: now.secrets.applying(changes),
                                 outbox: now.outbox)
        try DurableFile.replace(directory + "/" + SecretStore.fileName, in: directory, with: try store.exportedFile(of: next))
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let d = start.duration(to: .now).components
        return Double(d.seconds) + Double(d.attoseconds) / 1e18
    }

    static func format(_ value: Double) -> String { String(format: "%.3f", value) }
}

/// Takes snapshots on a thread of its own and records the slowest.
final class ReaderProbe: @unchecked Sendable {
    let store: SecretStore
    private let lock = NSLock()
    private var running = true
    private var reads = 0
    private var worst = 0.0
    private let done = DispatchSemaphore(value: 0)

    init(store: SecretStore) { self.store = store }

    func start() {
        Thread.detachNewThread { [self] in
            while lock.withLock({ running }) {
                let start = ContinuousClock.now
                _ = store.snapshot.secrets.count
                let took = StoreBenchmark.seconds(since: start)
                lock.withLock {
                    reads += 1
                    worst = max(worst, took)
                }
            }
            done.signal()
        }
    }

    func stop() -> (Int, Double) {
        lock.withLock { running = false }
        done.wait()
        return lock.withLock { (reads, worst) }
    }
}
