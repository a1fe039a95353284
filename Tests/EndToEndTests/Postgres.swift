import CofferTestSupport
import Foundation
import Testing

/// The throwaway PostgreSQL scripts/test starts (COFFER_TEST_POSTGRES),
/// reached with psql. Each test takes a database of its own.
struct PostgresDatabase {
    static let bin = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql"))?.sorted().last
        .map { "/usr/lib/postgresql/\($0)/bin" } ?? "/usr/lib/postgresql/15/bin"

    /// The server's conninfo, or nil (a failure under scripts/test).
    static func server() throws -> String? {
        if let conninfo = ProcessInfo.processInfo.environment["COFFER_TEST_POSTGRES"] { return conninfo }
        try #require(!requireAllPrerequisites, "no PostgreSQL: run the tests with scripts/test")
        return nil
    }

    let server: String
    let name: String
    var conninfo: String { server.replacingOccurrences(of: "dbname=postgres", with: "dbname=\(name)") }

    /// A fresh database on `server`.
    init?(label: String) throws {
        guard let server = try Self.server() else { return nil }
        self.server = server
        name = "coffer_\(label)_\(UUID().uuidString.prefix(8).lowercased())"
        _ = try Self.psql(server, "CREATE DATABASE \(name)")
    }

    /// Runs SQL; returns psql's unaligned, tuples-only output.
    @discardableResult
    func sql(_ statement: String) throws -> String {
        try Self.psql(conninfo, statement)
    }

    @discardableResult
    static func psql(_ conninfo: String, _ statement: String) throws -> String {
        let result = try runProgram(bin + "/psql", [conninfo, "-v", "ON_ERROR_STOP=1", "-At", "-c", statement])
        try #require(result.status == 0, "psql failed: \(result.stderr)")
        return result.stdoutText
    }
}

/// A PostgreSQL cluster of one test's own, which it may stop and start
/// (the shared server must keep running for the other tests).
final class PrivatePostgres {
    let directory: TemporaryDirectory
    let conninfo: String
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/private-postgres.sh").path

    /// Listening on 127.0.0.1:`tcpPort` too (no TLS) when given.
    let tcpPort: Int?

    init?(tcpPort: Int? = nil) throws {
        guard try PostgresDatabase.server() != nil else { return nil }
        self.tcpPort = tcpPort
        directory = try TemporaryDirectory("pg")
        chmod(directory.path, 0o755)
        // The server must not inherit our pipes (runProgram reads them to
        // the end): everything goes to a log file.
        let log = directory.path + "/start.log"
        let result = try runProgram("/bin/bash", ["-c", ". \(Self.script) && start_private_postgres \(directory.path) \(tcpPort.map(String.init) ?? "") >\(log) 2>&1 </dev/null"])
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        if result.status != 0, tcpPort != nil, output.contains("Address already in use") { throw PortTaken() }
        try #require(result.status == 0, "could not start a private PostgreSQL: \(output)")
        conninfo = "host=\(directory.path)/pgsock user=postgres dbname=postgres"
    }

    /// The TCP port was taken between finding it free and the server
    /// binding it.
    struct PortTaken: Error {}

    /// A cluster listening on a free TCP port of 127.0.0.1, and the port.
    /// A port found free can be handed out again (the kernel gives the same
    /// range to outgoing connections) before the server binds it: then
    /// another one is tried.
    static func onAFreePort() throws -> (server: PrivatePostgres, port: Int)? {
        for _ in 0..<4 {
            let port = try freePort()
            do {
                guard let server = try PrivatePostgres(tcpPort: port) else { return nil }
                return (server, port)
            } catch is PortTaken {
                continue
            }
        }
        let port = try freePort()
        return try PrivatePostgres(tcpPort: port).map { ($0, port) }
    }

    /// A port nothing listens on right now.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                try #require(bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0)
            }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    func stop() throws {
        try control("stop", "-m", "fast")
    }

    func start() throws {
        try control("start", "-o", "-c listen_addresses='' -k \(directory.path)/pgsock -c fsync=off", "-l", directory.path + "/pg/server.log")
    }

    private func control(_ arguments: String...) throws {
        let log = directory.path + "/pg_ctl.log"
        let command = (["/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups",
                        PostgresDatabase.bin + "/pg_ctl", "-D", directory.path + "/pg/data", "-w"] + arguments)
            .map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        let result = try runProgram("/bin/bash", ["-c", "\(command) >>\(log) 2>&1 </dev/null"])
        try #require(result.status == 0, "pg_ctl \(arguments[0]) failed: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }

    deinit {
        _ = try? runProgram("/bin/bash", ["-c", ". \(Self.script) && stop_private_postgres \(directory.path) >/dev/null 2>&1 </dev/null"])
    }
}
