import FileStore
import Foundation
import Keyring
import LockedMemory
import Model
import Seal
import Syscalls

/// `coffer-bench daemon N COFFERD WORKDIR JSON-OUT` (docs/performance.md): a
/// release cofferd over a store of N secrets, measured from the outside:
/// - cold start: from spawning cofferd to its READY=1 (sd_notify): the
///   store parsed, its MAC and the key of every record checked;
/// - RSS after start, after reading 1000 different secrets, and its peak;
/// - gets for a second with nothing else going on (the slowest and p99 the
///   next two compare with);
/// - a reload: another process drops a newer store file in (an export with
///   one more secret); how long until cofferd serves it, and the slowest
///   get meanwhile;
/// - a master-key rotation of every record while gets go on: how long, the
///   slowest get, and whether any get failed.
struct DaemonBenchmark {
    let count: Int
    let cofferd: String
    let work: String
    let jsonOut: String

    struct Figures: Codable {
        var secrets: Int
        var coldStartSeconds: Double
        var rssAfterStartMiB: Double
        var rssAfterReadsMiB: Double
        var quietP99GetMilliseconds: Double
        var quietSlowestGetMilliseconds: Double
        var reloadSeconds: Double
        var reloadSlowestGetMilliseconds: Double
        var reloadP99GetMilliseconds: Double
        var rotationSeconds: Double
        var rotationSlowestGetMilliseconds: Double
        var rotationP99GetMilliseconds: Double
        var rotationFailedGets: Int
        var peakRSSMiB: Double
    }

    func run() throws {
        try SecureHeap.initialize()
        let daemon = try BenchDaemon(name: "daemon-\(count)", secrets: count, cofferd: cofferd, work: work)
        defer { daemon.stop() }
        let (dev, writer, sealer, key) = (daemon.directory, daemon.store, daemon.sealer, daemon.key)
        let coldStart = daemon.coldStartSeconds
        let pid = daemon.process.processIdentifier
        let rssAfterStart = Self.memory(pid, "VmRSS")

        let service = dev + "/run/coffer.sock"
        let reader = try BlockingLineClient(path: service)
        for i in stride(from: 0, to: count, by: max(1, count / 1000)) {
            precondition(reader.roundTrip(Self.get(i)), "get of secret \(i) failed")
        }
        let rssAfterReads = Self.memory(pid, "VmRSS")

        // Reload: a newer file with one more secret is dropped in; cofferd
        // notices (inotify), re-reads and checks the file, and serves it.
        let probe = try GetProbe(socket: service, count: count)
        // The same gets for a second with nothing else going on: what the
        // figures during a reload or rotation compare with (on a shared
        // 2-core VM, the slowest get of a quiet second is itself a few ms).
        probe.mark()
        Thread.sleep(forTimeInterval: 1)
        let quiet = probe.sinceMark()
        let marker = #"{"op":"get","name":"bench/reload-marker"}"#
        let markerName = try SecretName("bench/reload-marker")
        let markerSecret = try StoreBenchmark.secret(markerName, value: "marker", storeID: writer.snapshot.storeID, sealer: sealer, key: key)
        try StoreBenchmark.dropNewerFile(after: writer, in: dev + "/state") { $0[markerName] = .some(markerSecret) }
        probe.mark()
        let committed = ContinuousClock.now
        let poller = try BlockingLineClient(path: service)
        while !poller.roundTrip(marker) {
            precondition(StoreBenchmark.seconds(since: committed) < 120, "cofferd did not reload within 120 s")
            Thread.sleep(forTimeInterval: 0.001)
        }
        let reloadSeconds = StoreBenchmark.seconds(since: committed)
        let duringReload = probe.sinceMark()

        // Rotation of every record to a new master key, gets going on.
        probe.mark()
        let rotationStart = ContinuousClock.now
        let admin = try BlockingLineClient(path: dev + "/run/admin.sock")
        precondition(admin.roundTrip(#"{"op":"rotate-master-key","generate":true}"#), "rotate-master-key failed")
        let rotationSeconds = StoreBenchmark.seconds(since: rotationStart)
        let duringRotation = probe.sinceMark()
        probe.stop()

        let figures = Figures(
            secrets: count, coldStartSeconds: coldStart,
            rssAfterStartMiB: rssAfterStart, rssAfterReadsMiB: rssAfterReads,
            quietP99GetMilliseconds: quiet.p99, quietSlowestGetMilliseconds: quiet.slowest,
            reloadSeconds: reloadSeconds,
            reloadSlowestGetMilliseconds: duringReload.slowest, reloadP99GetMilliseconds: duringReload.p99,
            rotationSeconds: rotationSeconds,
            rotationSlowestGetMilliseconds: duringRotation.slowest, rotationP99GetMilliseconds: duringRotation.p99,
            rotationFailedGets: duringRotation.failed, peakRSSMiB: Self.memory(pid, "VmHWM"))
        print("")
        print("cofferd with \(count) secrets (release, strict journal audit)")
        print(String(format: "cold start to READY:        %.2f s", coldStart))
        print(String(format: "RSS after start:            %.1f MiB", rssAfterStart))
        print(String(format: "RSS after 1000 reads:       %.1f MiB", rssAfterReads))
        print(String(format: "gets, nothing else going on: 1 s (gets: %d, p99 %.2f ms, slowest %.2f ms, failed %d)",
                     quiet.gets, quiet.p99, quiet.slowest, quiet.failed))
        print(String(format: "reload until served:        %.2f s (gets meanwhile: %d, p99 %.2f ms, slowest %.2f ms, failed %d)",
                     reloadSeconds, duringReload.gets, duringReload.p99, duringReload.slowest, duringReload.failed))
        print(String(format: "master-key rotation:        %.2f s (gets meanwhile: %d, p99 %.2f ms, slowest %.2f ms, failed %d)",
                     rotationSeconds, duringRotation.gets, duringRotation.p99, duringRotation.slowest, duringRotation.failed))
        print(String(format: "peak RSS:                   %.1f MiB", figures.peakRSSMiB))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(figures).write(to: URL(fileURLWithPath: jsonOut))
        print("wrote \(jsonOut)")
    }

    static func get(_ i: Int) -> String {
        #"{"op":"get","name":"bench/group\#(i % 100)/secret\#(i)"}"#
    }

    /// A field of /proc/PID/status, in MiB.
    static func memory(_ pid: Int32, _ field: String) -> Double {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = text.split(separator: "\n").first { $0.hasPrefix(field + ":") } ?? ""
        let kib = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
        return kib / 1024
    }
}

/// sd_notify's receiving end: a datagram socket cofferd is told about in
/// NOTIFY_SOCKET.
struct ReadinessSocket: ~Copyable {
    let socket: OwnedFileDescriptor

    init(path: String) throws {
        unlink(path)
        let made = try UnixSocket.make(SOCK_DGRAM)
        try UnixSocket.bind(made, to: path)
        socket = made
    }

    func waitForReady(timeoutSeconds: Int) throws {
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        _ = setsockopt(socket.rawValue, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(socket.rawValue, &buffer, buffer.count, 0)
            guard n > 0 else { throw POSIXError(.ETIMEDOUT) }
            if String(decoding: buffer[0..<n], as: UTF8.self).split(separator: "\n").contains("READY=1") { return }
        }
    }
}

/// Gets of random secrets, one after another on a thread of its own, each
/// timed; `sinceMark` summarises those that finished after the last mark.
final class GetProbe: @unchecked Sendable {
    struct Summary {
        var gets = 0
        var failed = 0
        var p99 = 0.0
        var slowest = 0.0
    }

    private let lock = NSLock()
    private var running = true
    private var markedAt = 0
    private var samples: [(ms: Double, ok: Bool)] = []
    private let done = DispatchSemaphore(value: 0)

    init(socket: String, count: Int) throws {
        let client = try BlockingLineClient(path: socket)
        Thread.detachNewThread { [self] in
            var i = 0
            while lock.withLock({ running }) {
                i = (i &* 7919 &+ 13) % count
                let start = ContinuousClock.now
                let ok = client.roundTrip(DaemonBenchmark.get(i))
                let ms = StoreBenchmark.seconds(since: start) * 1000
                lock.withLock { samples.append((ms, ok)) }
            }
            done.signal()
        }
    }

    func mark() { lock.withLock { markedAt = samples.count } }

    func sinceMark() -> Summary {
        let taken = lock.withLock { Array(samples[markedAt...]) }
        let sorted = taken.map(\.ms).sorted()
        guard let slowest = sorted.last else { return Summary() }
        return Summary(gets: sorted.count, failed: taken.count { !$0.ok },
                       p99: GetBenchmark.percentile(99, of: sorted), slowest: slowest)
    }

    func stop() {
        lock.withLock { running = false }
        done.wait()
    }
}
