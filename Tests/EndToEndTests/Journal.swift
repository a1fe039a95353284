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
