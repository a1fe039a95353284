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
/// - kill -9 rounds while eight writers put values large enough that the log
///   is compacted every few puts: after each restart, every acknowledged put
///   must be there.
/// Goals: the median at 100,000 at most twice the median at 100; eight
/// writers at least four times one writer's puts per second; no
/// acknowledged put lost to kill -9.
struct WriteBenchmark {
    let cofferd: String
    let work: String
    let jsonOut: String

    static let sizes = [100, 10_000, 100_000]
    static let timedPuts = 200
    static let writersSize = 10_000
    static let writersSeconds = Double(ProcessInfo.processInfo.environment["COFFER_BENCH_WRITERS_SECONDS"] ?? "") ?? 3.0
    /// One writer and eight are measured this many times each, in turn
    /// (1, 8, 8, 1, 1, ...), and the medians compared: on a shared VM one
    /// measurement of either can be off by a third (how the scheduler
    /// happens to place the threads), and alternating spreads any drift
    /// over both.
    static let writersRounds = max(1, Int(ProcessInfo.processInfo.environment["COFFER_BENCH_WRITERS_ROUNDS"] ?? "") ?? 5)
    /// COFFER_BENCH_WRITERS_ONLY=1: only the writers' figures (the store of
    /// 10,000, no latency table, no kill -9 rounds, no JSON), to compare
    /// builds quickly.
    static let writersOnly = ProcessInfo.processInfo.environment["COFFER_BENCH_WRITERS_ONLY"] == "1"
    /// With COFFER_BENCH_WRITERS_ONLY, COFFER_BENCH_WRITERS=N measures only
    /// N writers in each round (to profile eight, or to try sixteen);
    /// otherwise one and eight in turn.
    static func writerCounts(_ round: Int) -> [Int] {
        if writersOnly, let only = Int(ProcessInfo.processInfo.environment["COFFER_BENCH_WRITERS"] ?? ""), only > 0 { return [only] }
        return round % 2 == 0 ? [1, 8] : [8, 1]
    }

    struct Figures: Codable {
        var putMedianMilliseconds: [String: Double]
        var putP90Milliseconds: [String: Double]
        var oneWriterPutsPerSecond: Double
        var eightWritersPutsPerSecond: Double
        var medianRatio100kTo100: Double
        var writersRatio: Double
        var crashRounds: Int
        var crashAcknowledgedPutsChecked: Int
        var crashLostPuts: Int
        var crashCompactions: Int
    }

    func run() throws {
        try SecureHeap.initialize()
        var medians: [String: Double] = [:], p90s: [String: Double] = [:]
        var one = 0.0, eight = 0.0
        for size in Self.writersOnly ? [Self.writersSize] : Self.sizes {
            let daemon = try BenchDaemon(name: "writes-\(size)", secrets: size, cofferd: cofferd, work: work)
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
                (one, eight) = try Self.writerRounds(size: size, daemon: daemon)
            }
        }
        print(String(format: "8 writers / 1 writer: %.2f (goal: at least 4)", eight / one))
        if Self.writersOnly { return }
        let crash = try Self.crashRounds(cofferd: cofferd, work: work)
        print(String(format: "kill -9 during 8 writers and compactions: %d rounds, %d compactions, %d acknowledged puts checked, %d lost (goal: 0)",
                     crash.rounds, crash.compactions, crash.checked, crash.lost))
        let ratio = medians["100000"]! / medians["100"]!
        print(String(format: "put median at 100,000 / at 100: %.2f (goal: at most 2)", ratio))
        let figures = Figures(putMedianMilliseconds: medians, putP90Milliseconds: p90s, oneWriterPutsPerSecond: one,
                              eightWritersPutsPerSecond: eight, medianRatio100kTo100: ratio, writersRatio: eight / one,
                              crashRounds: crash.rounds, crashAcknowledgedPutsChecked: crash.checked, crashLostPuts: crash.lost,
                              crashCompactions: crash.compactions)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(figures).write(to: URL(fileURLWithPath: jsonOut))
        print("wrote \(jsonOut)")
    }

    /// kill -9 at a random moment while eight writers put 8 KiB values to
    /// four secrets each, then a restart: each secret must hold its last
    /// acknowledged value, or the one in flight when the kill came.
    static func crashRounds(cofferd: String, work: String, rounds: Int = 5) throws -> (rounds: Int, checked: Int, lost: Int, compactions: Int) {
        let daemon = try BenchDaemon(name: "crash", secrets: 1000, cofferd: cofferd, work: work)
        defer { daemon.stop() }
        let expected = NSLock()
        nonisolated(unsafe) var acknowledged: [String: String] = [:]
        nonisolated(unsafe) var inFlight: [String: String] = [:]
        var checked = 0, lost = 0
        var generations: Set<String> = []
        func check() throws {
            let admin = try BlockingLineClient(path: daemon.adminSocket)
            for (name, value) in expected.withLock({ acknowledged }) {
                let answer = String(decoding: admin.answer(#"{"op":"get","name":"\#(name)"}"#) ?? [], as: UTF8.self)
                checked += 1
                let other = expected.withLock { inFlight[name] }
                if !answer.contains(value) && !(other.map { answer.contains($0) } ?? false) { lost += 1 }
            }
        }
        for _ in 0..<rounds {
            let finished = DispatchGroup()
            let socket = daemon.adminSocket
            for w in 0..<8 {
                finished.enter()
                Thread.detachNewThread {
                    defer { finished.leave() }
                    guard let client = try? BlockingLineClient(path: socket) else { return }
                    for i in 0... {
                        let name = "crash/w\(w)/k\(i % 4)"
                        let value = "v\(UInt64.random(in: 0...UInt64.max))" + String(repeating: "x", count: 8192)
                        expected.withLock { inFlight[name] = value }
                        guard client.roundTrip(#"{"op":"put","name":"\#(name)","value":"\#(value)"}"#) else { return }
                        expected.withLock { acknowledged[name] = value }
                    }
                }
            }
            Thread.sleep(forTimeInterval: Double.random(in: 0.3...1.5))
            daemon.restart(killing: SIGKILL)
            finished.wait()
            try check()
            // What a restart serves is durable: the next round starts from it.
            expected.withLock { inFlight = [:] }
            let file = (try? String(contentsOfFile: daemon.directory + "/state/store.json", encoding: .utf8)) ?? ""
            generations.insert(String(file.split(separator: "\n").first { $0.contains("\"generation\"") } ?? ""))
        }
        return (rounds, checked, lost, generations.count - 1)
    }

    static func put(_ name: String, _ i: Int) -> String {
        #"{"op":"put","name":"\#(name)","value":"value-\#(i)-\#(UInt64.random(in: 0...UInt64.max))"}"#
    }

    /// The medians of `writersRounds` measurements each of one writer and
    /// of eight, taken in turn.
    static func writerRounds(size: Int, daemon: BenchDaemon) throws -> (one: Double, eight: Double) {
        let pid = daemon.process.processIdentifier, journald = ProcessCPU.journald()
        var rates: [Int: [Double]] = [:]
        for round in 0..<writersRounds {
            for writers in Self.writerCounts(round) {
                let cpu = ProcessCPU.seconds(of: pid) ?? 0, journalCPU = journald.flatMap(ProcessCPU.seconds(of:)) ?? 0
                let clientCPU = ProcessCPU.seconds(of: getpid()) ?? 0
                let (rate, puts) = try putsPerSecond(writers: writers, socket: daemon.adminSocket)
                let perPut = ((ProcessCPU.seconds(of: pid) ?? 0) - cpu) / Double(puts) * 1e6
                let journalPerPut = ((journald.flatMap(ProcessCPU.seconds(of:)) ?? 0) - journalCPU) / Double(puts) * 1e6
                let clientPerPut = ((ProcessCPU.seconds(of: getpid()) ?? 0) - clientCPU) / Double(puts) * 1e6
                rates[writers, default: []].append(rate)
                print(String(format: "puts/s, %d secrets, %d writer(s): %.0f (cofferd CPU %.0f µs/put, journald %.0f µs/put, the writers %.0f µs/put)",
                             size, writers, rate, perPut, journalPerPut, clientPerPut))
            }
        }
        func median(_ values: [Double]) -> Double {
            let sorted = values.sorted(), middle = sorted.count / 2
            return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
        }
        for (writers, measured) in rates.sorted(by: { $0.key < $1.key }) {
            print(String(format: "puts/s, %d writer(s), median of %d rounds: %.0f", writers, measured.count, median(measured)))
        }
        return (rates[1].map(median) ?? .nan, rates[8].map(median) ?? .nan)
    }

    /// Puts per second, `writers` connections putting one after another for
    /// `writersSeconds`, each to a secret of its own.
    static func putsPerSecond(writers: Int, socket: String) throws -> (rate: Double, puts: Int) {
        let clients = try (0..<writers).map { _ in try BlockingLineClient(path: socket) }
        let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: writers)
        counts.initialize(repeating: 0)
        defer { counts.deallocate() }
        let shared = SendableCounts(counts)
        // A thread per writer (DispatchQueue.concurrentPerform would run
        // only as many at once as there are cores).
        let finished = DispatchGroup()
        let start = ContinuousClock.now
        for w in 0..<writers {
            finished.enter()
            Thread.detachNewThread {
                var done = 0
                while StoreBenchmark.seconds(since: start) < writersSeconds {
                    precondition(clients[w].roundTrip(put("bench/writer-\(w)", done)), "put failed")
                    done += 1
                }
                shared.set(w, done)
                finished.leave()
            }
        }
        finished.wait()
        let elapsed = StoreBenchmark.seconds(since: start)
        let puts = counts.reduce(0, +)
        return (Double(puts) / elapsed, puts)
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
    private(set) var process: Process
    /// The store as filled before cofferd started (the daemon benchmark
    /// drops newer files made from it), and what sealed it.
    let store: SecretStore
    let key: MasterKey
    let sealer = RecordSealer()
    /// From spawning cofferd to its READY=1.
    let coldStartSeconds: Double
    var adminSocket: String { directory + "/run/admin.sock" }
    var serviceSocket: String { directory + "/run/coffer.sock" }

    init(name: String, secrets: Int, cofferd: String, work: String) throws {
        directory = work + "/" + name
        key = try MasterKey.generate()
        for (path, mode) in [(directory, 0o755), (directory + "/state", 0o700), (directory + "/run", 0o755)] {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: mode])
        }
        try MasterKeySource.createKeyFile(at: directory + "/master.key", key: key)
        store = try SecretStore.open(directory: directory + "/state",
                                     authenticator: StoreAuthenticator(keyring: Keyring(current: key), sealer: sealer))
        try StoreBenchmark.fill(store, count: secrets, sealer: sealer, key: key)
        // The fill is one commit in the log: written whole as store.json,
        // cofferd starts from the snapshot, as after any compaction.
        try store.compactNow()

        self.cofferd = cofferd
        notify = work + "/\(name)-notify.sock"
        let start = ContinuousClock.now
        process = try Self.start(cofferd, directory: directory, notify: notify)
        coldStartSeconds = StoreBenchmark.seconds(since: start)
    }

    private let cofferd: String
    private let notify: String

    private static func start(_ cofferd: String, directory: String, notify: String) throws -> Process {
        let readiness = try ReadinessSocket(path: notify)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: cofferd)
        process.arguments = ["--dev", directory, "--audit", "journal"]
        process.environment = ProcessInfo.processInfo.environment.merging(["NOTIFY_SOCKET": notify]) { $1 }
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        try readiness.waitForReady(timeoutSeconds: 300)
        return process
    }

    /// Sends `signal`, waits for cofferd to end, and starts it again on the
    /// same directory.
    func restart(killing signal: Int32) {
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        do { process = try Self.start(cofferd, directory: directory, notify: notify) } catch {
            fatalError("cofferd did not start again after kill -\(signal): \(error)")
        }
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
