import CLibSystemd
import Foundation
import Syscalls

/// Gets against cofferd and against two baselines measured in the same
/// run (docs/performance.md): a minimal Unix-socket echo server, and the
/// same server sending one journal event per request (the floor when every
/// read is audited); and a peer: OpenSSH's ssh-agent answering
/// REQUEST_IDENTITIES. Figures are ratios, since absolute times vary. The
/// same two echo servers on SwiftNIO are measured too, for reference: the
/// ratios stay against the plain ones, as the goals define them. Each row
/// also says what the server (a separate process) and journald spent in
/// CPU per request.
struct GetBenchmark {
    let cofferd: String
    let work: String
    let jsonOut: String
    static let singleClientRequests = 5000
    static let perClientRequests = 1500
    static let clients = 16

    struct Figures: Codable {
        var scenario: String
        var clients: Int
        var meanMicroseconds: Double
        var p50Microseconds: Double
        var p99Microseconds: Double
        var requestsPerSecond: Double
        /// CPU per request of the serving process, when it is one of its
        /// own (cofferd, ssh-agent), and of journald.
        var serverCPUMicroseconds: Double?
        var journaldCPUMicroseconds: Double?
    }

    func run() throws {
        var all: [Figures] = []
        let request = Self.request

        for (name, journal) in [("echo", false), ("echo+journal", true)] {
            let server = try EchoServer(path: work + "/echo-\(journal).sock", journal: journal)
            all += measure(name, socket: server.path, request: request)
        }
        for (name, journal) in [("echo on NIO", false), ("echo+journal on NIO", true)] {
            let server = try NIOEchoServer(path: work + "/nio-echo-\(journal).sock", journal: journal)
            defer { try? server.close() }
            all += measure(name, socket: server.path, request: request)
        }
        let agent = try SSHAgentPeer(directory: work)
        all += measure("ssh-agent (identities)", server: agent.pid) { [socket = agent.socket] in try BlockingAgentClient(path: socket) }
        agent.stop()
        for (name, arguments) in [("cofferd strict audit", ["--audit", "journal"]),
                                  ("cofferd coalesced audit", ["--audit", "journal", "--audit-coalesce", "1"])] {
            let dev = work + "/dev-\(all.count)"
            let process = try startCofferd(dev: dev, arguments: arguments)
            defer { process.terminate(); process.waitUntilExit() }
            all += measure(name, socket: dev + "/run/coffer.sock", request: request, server: process.processIdentifier)
            if arguments.contains("--audit-coalesce") {
                // What cofferd spends on a request that opens nothing and
                // audits nothing: the transport's floor under a get.
                all += measure("cofferd ping", socket: dev + "/run/coffer.sock", request: Self.ping,
                               server: process.processIdentifier)
            }
        }

        func cpu(_ value: Double?) -> String { value.map { String(format: " %9.1f", $0) } ?? "         -" }
        print("")
        print("scenario                     clients  mean µs   p50 µs   p99 µs    req/s  srv µs/req  jd µs/req")
        for f in all {
            print(f.scenario.padding(toLength: 28, withPad: " ", startingAt: 0)
                  + String(format: " %7d %8.1f %8.1f %8.1f %9.0f", f.clients,
                           f.meanMicroseconds, f.p50Microseconds, f.p99Microseconds, f.requestsPerSecond)
                  + "  " + cpu(f.serverCPUMicroseconds) + " " + cpu(f.journaldCPUMicroseconds))
        }
        func find(_ s: String, _ c: Int) -> Figures { all.first { $0.scenario == s && $0.clients == c }! }
        let ratios: [(String, Double, String)] = [
            ("strict, 1 client: mean latency vs echo+journal",
             find("cofferd strict audit", 1).meanMicroseconds / find("echo+journal", 1).meanMicroseconds, "goal <= 1.5"),
            ("strict, 16 clients: throughput vs echo+journal",
             find("cofferd strict audit", 16).requestsPerSecond / find("echo+journal", 16).requestsPerSecond, "goal >= 0.8"),
            ("coalesced, 1 client: mean latency vs echo",
             find("cofferd coalesced audit", 1).meanMicroseconds / find("echo", 1).meanMicroseconds, "goal <= 1.5"),
            ("coalesced, 16 clients: throughput vs echo",
             find("cofferd coalesced audit", 16).requestsPerSecond / find("echo", 16).requestsPerSecond, "goal >= 0.6"),
            ("coalesced, 16 clients: throughput vs ssh-agent",
             find("cofferd coalesced audit", 16).requestsPerSecond / find("ssh-agent (identities)", 16).requestsPerSecond,
             "goal >= 1.5"),
        ]
        print("")
        for (what, ratio, goal) in ratios {
            print(what.padding(toLength: 50, withPad: " ", startingAt: 0) + String(format: " %5.2f  ", ratio) + "(\(goal))")
        }
        // cofferd's own CPU per get, 16 clients (the steadier figure).
        let strict = find("cofferd strict audit", 16), coalesced = find("cofferd coalesced audit", 16)
        print("coalesced, cofferd CPU per get (µs)".padding(toLength: 50, withPad: " ", startingAt: 0)
              + cpu(coalesced.serverCPUMicroseconds) + "  (goal <= 10)")
        print("strict, cofferd CPU per get (µs)".padding(toLength: 50, withPad: " ", startingAt: 0)
              + cpu(strict.serverCPUMicroseconds) + "  (goal <= 10 plus the journal send)")
        print("cofferd CPU per ping (µs): no record, no audit".padding(toLength: 50, withPad: " ", startingAt: 0)
              + cpu(find("cofferd ping", 16).serverCPUMicroseconds) + "  (the floor under both)")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(all).write(to: URL(fileURLWithPath: jsonOut))
        print("\nwrote \(jsonOut)")
    }

    static let request = #"{"id":1,"op":"get","name":"bench/secret"}"#
    static let ping = #"{"id":1,"op":"ping"}"#

    /// The `p`th percentile of sorted, non-empty figures.
    static func percentile(_ p: Int, of sorted: [Double]) -> Double {
        sorted[min(sorted.count - 1, sorted.count * p / 100)]
    }

    /// `coffer-bench load`: one scenario against a socket already served.
    static func load(socket: String, clients: Int, each: Int, server: Int32? = nil) {
        // COFFER_BENCH_REQUEST: another request line (a ping, to see what the
        // transport costs without a get's work).
        let line = ProcessInfo.processInfo.environment["COFFER_BENCH_REQUEST"] ?? request
        let f = run("load", clients: clients, each: each, server: server) { try LineRequest(path: socket, line: line) }
        print(String(format: "%d clients: mean %.1f µs, p50 %.1f µs, p99 %.1f µs, %.0f req/s",
                     clients, f.meanMicroseconds, f.p50Microseconds, f.p99Microseconds, f.requestsPerSecond)
              + (f.serverCPUMicroseconds.map { String(format: ", server CPU %.1f µs/req", $0) } ?? "")
              + (f.journaldCPUMicroseconds.map { String(format: ", journald CPU %.1f µs/req", $0) } ?? ""))
    }

    /// 1 client, then 16 at once; each sends a request and waits for its
    /// answer before the next (what a service on its request path does).
    func measure(_ scenario: String, socket: String, request: String, server: Int32? = nil) -> [Figures] {
        measure(scenario, server: server) { try LineRequest(path: socket, line: request) }
    }

    func measure(_ scenario: String, server: Int32?, connect: @escaping @Sendable () throws -> any RoundTripClient) -> [Figures] {
        [Self.run(scenario, clients: 1, each: Self.singleClientRequests, server: server, connect: connect),
         Self.run(scenario, clients: Self.clients, each: Self.perClientRequests, server: server, connect: connect)]
    }

    static func run(
        _ scenario: String, clients: Int, each: Int, server: Int32?, connect: @escaping @Sendable () throws -> any RoundTripClient
    ) -> Figures {
        let latencies = LatencyLog()
        let group = DispatchGroup()
        let journald = ProcessCPU.journald()
        let serverBefore = server.flatMap(ProcessCPU.seconds(of:)), journaldBefore = journald.flatMap(ProcessCPU.seconds(of:))
        let start = ContinuousClock.now
        for _ in 0..<clients {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                guard let client = try? connect() else { return }
                var mine: [Double] = []
                mine.reserveCapacity(each)
                for _ in 0..<each {
                    let t = ContinuousClock.now
                    guard client.roundTrip() else { break }
                    mine.append(StoreBenchmark.seconds(since: t) * 1e6)
                }
                latencies.add(mine)
            }
        }
        group.wait()
        let elapsed = StoreBenchmark.seconds(since: start)
        let sorted = latencies.all.sorted()
        guard !sorted.isEmpty else { return Figures(scenario: scenario, clients: clients, meanMicroseconds: 0, p50Microseconds: 0, p99Microseconds: 0, requestsPerSecond: 0) }
        func perRequest(_ before: Double?, _ pid: Int32?) -> Double? {
            guard let before, let after = pid.flatMap(ProcessCPU.seconds(of:)) else { return nil }
            return (after - before) / Double(sorted.count) * 1e6
        }
        return Figures(
            scenario: scenario, clients: clients,
            meanMicroseconds: sorted.reduce(0, +) / Double(sorted.count),
            p50Microseconds: percentile(50, of: sorted),
            p99Microseconds: percentile(99, of: sorted),
            requestsPerSecond: Double(sorted.count) / elapsed,
            serverCPUMicroseconds: perRequest(serverBefore, server),
            journaldCPUMicroseconds: perRequest(journaldBefore, journald))
    }

    /// A release cofferd in dev mode with one secret, ready to serve.
    func startCofferd(dev: String, arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: cofferd)
        process.arguments = ["--dev", dev] + arguments
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let admin = try? BlockingLineClient(path: dev + "/run/admin.sock"),
               admin.roundTrip(#"{"op":"put","name":"bench/secret","value":"correct horse battery staple"}"#) {
                return process
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        process.terminate()
        throw POSIXError(.ETIMEDOUT)
    }
}

/// One request and its answer, over a connection of its own.
protocol RoundTripClient: AnyObject {
    func roundTrip() -> Bool
}

/// A fixed request line (cofferd's get, or anything the echo servers echo).
final class LineRequest: RoundTripClient {
    private let client: BlockingLineClient
    private let line: String

    init(path: String, line: String) throws {
        client = try BlockingLineClient(path: path)
        self.line = line
    }

    func roundTrip() -> Bool { client.roundTrip(line) }
}

final class LatencyLog: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Double] = []
    func add(_ more: [Double]) { lock.withLock { values += more } }
    var all: [Double] { lock.withLock { values } }
}

/// Blocking request/answer over a Unix stream socket, one line each way.
/// Used by one thread at a time (@unchecked: handed to the thread that uses it).
final class BlockingLineClient: @unchecked Sendable {
    /// One send of the whole request; a closed peer is a failed round
    /// trip, not a SIGPIPE.
    static func send(_ bytes: [UInt8], on socket: Int32) -> Bool {
        bytes.withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    private let socket: OwnedFileDescriptor
    private var buffer = [UInt8](repeating: 0, count: 65536)
    private var pending: [UInt8] = []

    init(path: String) throws {
        socket = try UnixSocket.connect(to: path)
    }

    func roundTrip(_ line: String) -> Bool {
        guard let answer = answer(line) else { return false }
        return !answer.starts(with: Array(#"{"id":null,"ok":false"#.utf8))
    }

    /// The answer line to `line`, or nil when the connection ended first.
    func answer(_ line: String) -> [UInt8]? {
        var bytes = Array(line.utf8)
        bytes.append(10)
        guard Self.send(bytes, on: socket.rawValue) else { return nil }
        while true {
            if let newline = pending.firstIndex(of: 10) {
                let answer = Array(pending[..<newline])
                pending.removeSubrange(...newline)
                return answer
            }
            let n = recv(socket.rawValue, &buffer, buffer.count, 0)
            guard n > 0 else { return nil }
            pending.append(contentsOf: buffer[0..<n])
        }
    }
}

/// The baseline: answers each line with the line itself; with `journal`,
/// sends one journal event per request first (as strict audit does).
final class EchoServer: @unchecked Sendable {
    let path: String
    private let listener: Int32

    init(path: String, journal: Bool) throws {
        self.path = path
        unlink(path)
        let fd = try UnixSocket.make(SOCK_STREAM)
        try UnixSocket.bind(fd, to: path)
        _ = try syscall("listen") { listen(fd.rawValue, 256) }
        listener = dup(fd.rawValue)
        let listener = self.listener
        Thread.detachNewThread {
            while true {
                let client = accept(listener, nil, nil)
                guard client >= 0 else { return }
                Thread.detachNewThread { Self.serve(client, journal: journal) }
            }
        }
    }

    deinit {
        close(listener)
        unlink(path)
    }

    static func serve(_ fd: Int32, journal: Bool) {
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 65536)
        var pending: [UInt8] = []
        let fields = eventFields
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            guard n > 0 else { return }
            pending.append(contentsOf: buffer[0..<n])
            while let newline = pending.firstIndex(of: 10) {
                if journal { sendEvent(fields) }
                let line = Array(pending[...newline])
                pending.removeSubrange(...newline)
                _ = line.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            }
        }
    }

    /// The baseline's journal event: six fields, as a minimal audit record.
    static let eventFields = ["MESSAGE=get bench/secret: ok", "SYSLOG_IDENTIFIER=coffer-bench", "COFFER_EVENT=get",
                              "COFFER_SECRET=bench/secret", "COFFER_RESULT=ok", "COFFER_PEER_UID=0"].map { Array($0.utf8) }

    static func sendEvent(_ fields: [[UInt8]]) {
        var iovecs: [iovec] = []
        func pin(_ i: Int) {
            if i == fields.count { _ = sd_journal_sendv(iovecs, Int32(iovecs.count)); return }
            fields[i].withUnsafeBytes { b in
                iovecs.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: b.baseAddress), iov_len: b.count))
                pin(i + 1)
            }
        }
        pin(0)
    }
}
