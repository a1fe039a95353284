import CofferTestSupport
import Foundation
import Testing

/// The private journald scripts/test starts, read back with journalctl.
enum Journal {
    static let socket = "/run/systemd/journal/socket"

    /// Whether a journald listens; under scripts/test its absence fails.
    static func require() throws -> Bool {
        if FileManager.default.fileExists(atPath: socket) { return true }
        try #require(!requireAllPrerequisites, "no journald at \(socket): run the tests with scripts/test")
        return false
    }

    /// cofferd's events of one chain (store), oldest first.
    static func events(chain: String) throws -> [[String: String]] {
        let result = try runProgram("/usr/bin/journalctl", [
            "--no-pager", "-o", "json", "SYSLOG_IDENTIFIER=cofferd", "COFFER_CHAIN_ID=\(chain)",
        ])
        return result.stdoutText.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }.map { object in object.compactMapValues { $0 as? String } }
    }

    /// Everything in the journal, raw (journalctl -o export), for searching
    /// for values that must never be there.
    static func export() throws -> Data {
        try runProgram("/usr/bin/journalctl", ["--no-pager", "-o", "export"]).stdout
    }

    /// Waits (bounded) until the chain's events satisfy `condition`.
    static func waitFor(chain: String, _ what: String, _ condition: ([[String: String]]) -> Bool) throws -> [[String: String]] {
        var events: [[String: String]] = []
        _ = try waitUntil(what) {
            events = try Self.events(chain: chain)
            return condition(events)
        }
        return events
    }
}

extension DevDaemon {
    /// The store id: cofferd's events carry it as COFFER_CHAIN_ID.
    func storeID() throws -> String {
        let status = try ctl(["status", "--json"])
        let object = try JSONSerialization.jsonObject(with: status.stdout) as? [String: Any]
        return try #require((object?["store"] as? [String: Any])?["store_id"] as? String)
    }
}

/// A journald of its own, in a mount namespace of its own (fresh tmpfs over
/// its socket directory and its files), that a test may stop with SIGSTOP
/// without touching the journal every other test uses. cofferd joins the
/// namespace through `launcher`.
final class IsolatedJournal {
    private let process = Process()
    var pid: Int32 { process.processIdentifier }
    var launcher: [String] { ["/usr/bin/nsenter", "-t", "\(pid)", "-m"] }

    init() throws {
        let script = """
            mount -t tmpfs -o mode=0755 tmpfs /run/systemd/journal && \\
            mount -t tmpfs -o mode=0755 tmpfs /run/log/journal && \\
            exec /lib/systemd/systemd-journald
            """
        // unshare and sh exec into journald: one process, one pid.
        process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        process.arguments = ["--mount", "--propagation", "private", "/bin/sh", "-c", script]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let pid = process.processIdentifier
        // Until unshare and the mounts are done, /proc/PID/root shows the
        // shared journal's socket: wait for journald itself (the exec comes
        // after the mounts) and a socket that is not the shared one.
        func identity(_ path: String) -> String? {
            var info = stat()
            return stat(path, &info) == 0 ? "\(info.st_dev):\(info.st_ino)" : nil
        }
        let shared = identity(Journal.socket)
        let up = try waitUntil("the isolated journald listens") {
            guard let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe"),
                  exe.hasSuffix("systemd-journald"),
                  let own = identity("/proc/\(pid)/root/run/systemd/journal/socket")
            else { return false }
            return own != shared
        }
        try #require(up && process.isRunning, "the isolated journald did not start")
    }

    func stop() { kill(pid, SIGSTOP) }
    func resume() { kill(pid, SIGCONT) }

    deinit {
        kill(pid, SIGCONT)
        kill(pid, SIGKILL)
        process.waitUntilExit()
    }
}
