import FileStore
import Foundation
import Keyring
import LockedMemory
import Model
import Seal
import Syscalls

/// `coffer-bench writes COFFERD WORKDIR JSON-OUT` (docs/performance.md): puts
/// through a release cofferd (admin.sock, strict journal audit), as an
/// operator's `cofferctl put` makes them:
/// - the median latency of one put, one after another on one connection,
///   in stores of 100, 10,000 and 100,000 secrets;
/// - puts per second with one writer, and with eight at once (a connection
///   each), in the store of 10,000.
/// Goals: the median at 100,000 at most twice the median at 100; eight
/// writers at least four times one writer's puts per second.
struct WriteBenchmark {
    let cofferd: String
    let work: String
    let jsonOut: String

    static let sizes = [100, 10_000, 100_000]
    static let timedPuts = 200
    static let writersSize = 10_000
    static let writersSeconds = 3.0

    struct Figures: Codable {
        var putMedianMilliseconds: [String: Double]
        var putP90Milliseconds: [String: Double]
        var oneWriterPutsPerSecond: Double
        var eightWritersPutsPerSecond: Double
        var medianRatio100kTo100: Double
        var writersRatio: Double
    }

    func run() throws {
        try SecureHeap.initialize()
        var medians: [String: Double] = [:], p90s: [String: Double] = [:]
        var one = 0.0, eight = 0.0
        for size in Self.sizes {
            let daemon = try BenchDaemon(secrets: size, cofferd: cofferd, work: work)
            defer { daemon.stop() }
            let admin = try BlockingLineClient(path: daemon.adminSocket)
            // Each put a new version of one secret (retention keeps its ten
            // newest), as rotating a credential does.
            for i in 0..<10 { precondition(admin.roundTrip(Self.put("bench/put-target", i)), "put failed") }
            var took: [Double] = []
            for i in 0..<Self.timedPuts {
                let start = ContinuousClock.now
                precondition(admin.roundTrip(Self.put("bench/put-target", i)), "put failed")
                took.append(StoreBenchmark.seconds(since: start) * 1000)
            }
            took.sort()
            medians[String(size)] = GetBenchmark.percentile(50, of: took)
            p90s[String(size)] = GetBenchmark.percentile(90, of: took)
            print(String(format: "put, %6d secrets: median %.2f ms, p90 %.2f ms (%d puts)", size, medians[String(size)]!,
                         p90s[String(size)]!, Self.timedPuts))
            if size == Self.writersSize {
                one = try Self.putsPerSecond(writers: 1, socket: daemon.adminSocket)
                eight = try Self.putsPerSecond(writers: 8, socket: daemon.adminSocket)
                print(String(format: "puts/s, %d secrets: 1 writer %.0f, 8 writers %.0f (%.2fx)", size, one, eight, eight / one))
            }
        }
        let ratio = medians["100000"]! / medians["100"]!
        print(String(format: "put median at 100,000 / at 100: %.2f (goal: at most 2)", ratio))
        print(String(format: "8 writers / 1 writer: %.2f (goal: at least 4)", eight / one))
        let figures = Figures(putMedianMilliseconds: medians, putP90Milliseconds: p90s, oneWriterPutsPerSecond: one,
                              eightWritersPutsPerSecond: eight, medianRatio100kTo100: ratio, writersRatio: eight / one)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(figures).write(to: URL(fileURLWithPath: jsonOut))
        print("wrote \(jsonOut)")
    }

    static func put(_ name: String, _ i: Int) -> String {
        #"{"op":"put","name":"\#(name)","value":"value-\#(i)-\#(UInt64.random(in: 0...UInt64.max))"}"#
    }

    /// Puts per second, `writers` connections putting one after another for
    /// `writersSeconds`, each to a secret of its own.
    static func putsPerSecond(writers: Int, socket: String) throws -> Double {
        let clients = try (0..<writers).map { _ in try BlockingLineClient(path: socket) }
        let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: writers)
        counts.initialize(repeating: 0)
        defer { counts.deallocate() }
        let shared = SendableCounts(counts)
        let start = ContinuousClock.now
        DispatchQueue.concurrentPerform(iterations: writers) { w in
            var done = 0
            while StoreBenchmark.seconds(since: start) < writersSeconds {
                precondition(clients[w].roundTrip(put("bench/writer-\(w)", done)), "put failed")
                done += 1
            }
            shared.set(w, done)
        }
        let elapsed = StoreBenchmark.seconds(since: start)
        return Double(counts.reduce(0, +)) / elapsed
    }
}

/// Each writer's count, written once by its own thread.
private struct SendableCounts: @unchecked Sendable {
    let counts: UnsafeMutableBufferPointer<Int>
    init(_ counts: UnsafeMutableBufferPointer<Int>) { self.counts = counts }
    func set(_ index: Int, _ value: Int) { counts[index] = value }
}

/// A release cofferd in a dev directory of its own over a store of
/// `secrets` secrets (filled and compacted before it starts), up once
/// READY=1 arrives.
final class BenchDaemon {
    let directory: String
    let process = Process()
    var adminSocket: String { directory + "/run/admin.sock" }

    init(secrets: Int, cofferd: String, work: String) throws {
        directory = work + "/writes-\(secrets)"
        let key = try MasterKey.generate()
        for (path, mode) in [(directory, 0o755), (directory + "/state", 0o700), (directory + "/run", 0o755)] {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: mode])
        }
        try MasterKeySource.createKeyFile(at: directory + "/master.key", key: key)
        let sealer = RecordSealer()
        do {
            let store = try SecretStore.open(directory: directory + "/state",
                                             authenticator: StoreAuthenticator(keyring: Keyring(current: key), sealer: sealer))
            try StoreBenchmark.fill(store, count: secrets, sealer: sealer, key: key)
            try store.compactNow()
        }
        let notify = work + "/writes-notify.sock"
        let readiness = try ReadinessSocket(path: notify)
        process.executableURL = URL(fileURLWithPath: cofferd)
        process.arguments = ["--dev", directory, "--audit", "journal"]
        process.environment = ProcessInfo.processInfo.environment.merging(["NOTIFY_SOCKET": notify]) { $1 }
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        try readiness.waitForReady(timeoutSeconds: 300)
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
