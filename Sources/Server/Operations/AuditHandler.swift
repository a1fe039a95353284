import Audit
import CofferCore
import Keyring
import Model
import Seal
#if canImport(Glibc)
import Glibc
#endif

/// `audit`: cofferd's audit events from the journal, filtered, and with
/// `verify` the chain check (gaps, edits, restarts). cofferd does it, not
/// cofferctl, because the chain key is derived from the master key.
struct AuditHandler: OperationHandler {
    let operation = Operation.audit
    let members: Set<String> = ["secret", "peer_uid", "unit", "event", "denied", "since", "limit", "verify"]
    static let maxLimit = 10_000
    let audit: AuditTrail
    let opener: RecordOpener
    /// The chain's keys, those of retired master keys included.
    let chainKeys: AuditChainKeys?
    let pool: any BlockingWork

    func handle(_ request: Request, context: RequestContext) async throws -> HandlerOutcome {
        let filter = try AuditFilter(request)
        let limit = try request.unsigned("limit") ?? 200
        guard (1...UInt64(Self.maxLimit)).contains(limit) else {
            throw CofferError(.badRequest, "'limit' must be 1 to \(Self.maxLimit)")
        }
        let verify = try request.bool("verify") ?? false
        let chainID = context.snapshot.storeID
        // Everything cofferd has sent so far must be found (journald takes
        // a moment to write what it received: look again briefly).
        let expected = audit.sequences
        var result = try await read(chainID: chainID, filter: filter, limit: Int(limit))
        var waited = 0
        while verify, let expected, result.verifier.finish(expectLast: expected).missingAtEnd > 0, waited < 20 {
            try await Task.sleep(for: .milliseconds(50))
            waited += 1
            result = try await read(chainID: chainID, filter: filter, limit: Int(limit))
        }
        var fields: [(String, ResponseValue)] = []
        if verify {
            fields.append(("verify", Self.describe(result.verifier.finish(expectLast: filter.sinceMicroseconds == nil ? expected : nil))))
        }
        fields.append(("events", .array(result.shown.map { Self.event($0, authentic: result.verifier.isAuthentic($0.fields)) })))
        return HandlerOutcome(fields)
    }

    struct Reading: Sendable {
        var verifier: AuditChainVerifier
        var shown: [JournalReader.Entry]
    }

    /// One pass over this chain's events on the blocking pool: every event
    /// goes through the verifier; only the newest `limit` that pass the
    /// filter are kept.
    func read(chainID: String, filter: AuditFilter, limit: Int) async throws -> Reading {
        let keyring = opener.keyring
        let sealer = opener.sealer
        let chainKeys = self.chainKeys
        let uid = geteuid()
        do {
            return try await pool.run {
                let macs = MACCache(chainKeys: chainKeys, keyring: keyring, sealer: sealer)
                let verifier = AuditChainVerifier(mac: macs.mac, retiredAt: { chainKeys?.retiredAt(keyID: $0) })
                var reading = Reading(verifier: verifier, shown: [])
                try JournalReader.forEach(chainID: chainID, uid: uid, since: filter.sinceMicroseconds) { entry in
                    reading.verifier.add(entry.fields)
                    guard filter.admits(entry) else { return }
                    reading.shown.append(entry)
                    if reading.shown.count > limit { reading.shown.removeFirst(reading.shown.count - limit) }
                }
                return reading
            }
        } catch {
            throw CofferError(.unavailable, "cannot read the audit journal", underlying: "\(error)")
        }
    }

    /// The chain key per master key id: the chain's own (those of keys a
    /// rotation retired included), else derived once per reading from a
    /// key the keyring holds.
    final class MACCache: @unchecked Sendable {
        let chainKeys: AuditChainKeys?
        let keyring: Keyring
        let sealer: RecordSealer
        var macs: [String: MACKey] = [:]

        init(chainKeys: AuditChainKeys?, keyring: Keyring, sealer: RecordSealer) {
            self.chainKeys = chainKeys
            self.keyring = keyring
            self.sealer = sealer
        }

        func mac(_ keyID: String, _ data: [UInt8]) -> [UInt8]? {
            if let chained = chainKeys?.mac(forKeyID: keyID) { return try? chained(data) }
            if macs[keyID] == nil, let id = KeyID(hex: keyID), let key = try? keyring.key(for: id) {
                macs[keyID] = try? sealer.mac(with: key, for: .auditChain)
            }
            return try? macs[keyID]?(data)
        }
    }

    static func describe(_ report: AuditChainVerifier.Report) -> ResponseValue {
        .object([
            ("intact", .bool(report.isIntact)),
            ("checked", .integer(Int64(report.checked))),
            ("lanes", .array(report.lanes.map {
                .object([("lane", .integer(Int64($0.lane))), ("first_seq", .unsigned($0.first)),
                         ("last_seq", .unsigned($0.last)), ("missing_at_end", .unsigned($0.missingAtEnd)),
                         ("missing_at_end_reported_lost", .bool($0.missingAtEndReportedLost))])
            })),
            ("gaps", .array(report.gaps.map {
                .object([("lane", .integer(Int64($0.lane))), ("after_seq", .unsigned($0.after)),
                         ("missing", .unsigned($0.missing)), ("reported_lost", .bool($0.reportedLost))])
            })),
            ("edits", .array(report.edits.map(Self.mark))),
            ("restarts", .array(report.restarts.map(Self.mark))),
            // The lists stop at AuditChainVerifier.Report.listLimit each.
            ("gap_count", .integer(Int64(report.gapCount))),
            ("edit_count", .integer(Int64(report.editCount))),
            ("restart_count", .integer(Int64(report.restartCount))),
            ("malformed", .integer(Int64(report.malformed))),
            ("missing_at_end", .unsigned(report.missingAtEnd)),
        ])
    }

    static func mark(_ mark: AuditChainVerifier.Mark) -> ResponseValue {
        .object([("lane", .integer(Int64(mark.lane))), ("seq", .unsigned(mark.sequence))])
    }

    /// An event as the client sees it: the COFFER_ fields, lower-cased and
    /// without the prefix, plus the time and the message.
    static func event(_ entry: JournalReader.Entry, authentic: Bool) -> ResponseValue {
        var members: [(String, ResponseValue)] = [
            ("time_usec", .unsigned(entry.realtimeMicroseconds)), ("authentic", .bool(authentic)),
        ]
        if let message = entry["MESSAGE"] { members.append(("message", .string(message))) }
        for (key, value) in entry.fields where key.hasPrefix("COFFER_") {
            members.append((String(key.dropFirst("COFFER_".count)).lowercased(), .string(value)))
        }
        return .object(members)
    }
}

/// The `audit` filters; all given must hold.
struct AuditFilter {
    var secret: String?
    var peerUID: String?
    var unit: String?
    var event: String?
    var deniedOnly = false
    var sinceMicroseconds: UInt64?

    init(_ request: Request) throws(CofferError) {
        secret = try request.string("secret")
        peerUID = try request.unsigned("peer_uid").map(String.init)
        unit = try request.string("unit")
        event = try request.string("event")
        deniedOnly = try request.bool("denied") ?? false
        if let since = try request.unsigned("since") {
            let (micro, overflow) = since.multipliedReportingOverflow(by: 1_000_000)
            guard !overflow else { throw CofferError(.badRequest, "'since' is seconds since the epoch") }
            sinceMicroseconds = micro
        }
    }

    func admits(_ entry: JournalReader.Entry) -> Bool {
        if let secret, entry["COFFER_SECRET"] != secret { return false }
        if let peerUID, entry["COFFER_PEER_UID"] != peerUID { return false }
        if let unit, entry["COFFER_PEER_UNIT"] != unit { return false }
        if let event, entry["COFFER_EVENT"] != event { return false }
        if deniedOnly, entry["COFFER_RESULT"] != "denied" { return false }
        return true
    }
}
