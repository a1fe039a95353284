import CLibSystemd
#if canImport(Glibc)
import Glibc
#endif

/// Reads cofferd's own audit events back from the journal with libsystemd's
/// sd-journal API (sd_journal_open(3)), for `audit` and `audit --verify`.
/// Needs read access to the journal files (root, or the systemd-journal
/// group: the unit adds it).
public enum JournalReader {
    /// One journal entry: its fields as sent (plus the journal's own `_`
    /// fields) and when journald received it.
    public struct Entry: Sendable {
        public var fields: [(String, String)]
        public var realtimeMicroseconds: UInt64

        public subscript(_ key: String) -> String? { fields.first { $0.0 == key }?.1 }
    }

    /// Calls `body` with every event of the chain `chainID` sent by `uid`
    /// (cofferd's own: anyone may log with SYSLOG_IDENTIFIER=cofferd, only
    /// cofferd's process has its uid in the journal's trusted `_UID`),
    /// oldest first, received at or after `since` (microseconds since the
    /// epoch). One entry at a time: a long journal is never held whole.
    public static func forEach(
        chainID: String, uid: UInt32, since: UInt64? = nil, _ body: (Entry) throws -> Void
    ) throws {
        let journal = try open(chainID: chainID, uid: uid)
        if let since { _ = sd_journal_seek_realtime_usec(journal.handle, since) }
        while true {
            let rc = sd_journal_next(journal.handle)
            guard rc >= 0 else { throw AuditError("reading the journal failed: \(String(cString: strerror(-rc)))") }
            if rc == 0 { break }
            var usec: UInt64 = 0
            _ = sd_journal_get_realtime_usec(journal.handle, &usec)
            if let since, usec < since { continue }
            try body(Entry(fields: fieldsOfCurrentEntry(journal.handle), realtimeMicroseconds: usec))
        }
    }

    /// The newest event of the chain's lane `lane`, if any (startup: resume
    /// the lane). Lane 0's events written before lanes existed carry no
    /// lane field: without a newer one, the chain's newest event is taken
    /// (`AuditChainer.resume` checks whose lane it is).
    public static func last(chainID: String, lane: Int, uid: UInt32) throws(AuditError) -> Entry? {
        if let found = try last(chainID: chainID, uid: uid, also: ["\(AuditChain.fieldLane)=\(lane)"]) { return found }
        return lane == 0 ? try last(chainID: chainID, uid: uid, also: []) : nil
    }

    private static func last(chainID: String, uid: UInt32, also: [String]) throws(AuditError) -> Entry? {
        let journal = try open(chainID: chainID, uid: uid, also: also)
        _ = sd_journal_seek_tail(journal.handle)
        guard sd_journal_previous(journal.handle) > 0 else { return nil }
        var usec: UInt64 = 0
        _ = sd_journal_get_realtime_usec(journal.handle, &usec)
        return Entry(fields: fieldsOfCurrentEntry(journal.handle), realtimeMicroseconds: usec)
    }

    private static func open(chainID: String, uid: UInt32, also: [String] = []) throws(AuditError) -> OpenJournal {
        let journal = try OpenJournal()
        for match in ["SYSLOG_IDENTIFIER=cofferd", "\(AuditChain.fieldChainID)=\(chainID)", "_UID=\(uid)"] + also {
            let rc = Array(match.utf8).withUnsafeBytes { sd_journal_add_match(journal.handle, $0.baseAddress, $0.count) }
            guard rc >= 0 else { throw AuditError("sd_journal_add_match failed: \(String(cString: strerror(-rc)))") }
        }
        return journal
    }

    private static func fieldsOfCurrentEntry(_ handle: OpaquePointer) -> [(String, String)] {
        var fields: [(String, String)] = []
        var data: UnsafeRawPointer?
        var length = 0
        sd_journal_restart_data(handle)
        while sd_journal_enumerate_data(handle, &data, &length) > 0 {
            guard let data else { continue }
            let bytes = UnsafeRawBufferPointer(start: data, count: length)
            guard let equals = bytes.firstIndex(of: UInt8(ascii: "=")) else { continue }
            fields.append((String(decoding: bytes[..<equals], as: UTF8.self),
                           String(decoding: bytes[(equals + 1)...], as: UTF8.self)))
        }
        return fields
    }

    /// An sd_journal handle, closed exactly once.
    private final class OpenJournal {
        let handle: OpaquePointer

        init() throws(AuditError) {
            var handle: OpaquePointer?
            // The system journal only: user journals hold what users logged.
            let rc = sd_journal_open(&handle, Int32(SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM))
            guard rc >= 0, let handle else {
                throw AuditError("cannot open the journal: \(String(cString: strerror(-rc))) (cofferd needs the systemd-journal group)")
            }
            self.handle = handle
        }

        deinit { sd_journal_close(handle) }
    }
}
