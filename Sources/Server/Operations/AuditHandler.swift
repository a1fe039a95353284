import Audit
import Keyring
import Model

/// `audit`: cofferd's audit events from the journal, filtered, and with
/// `verify` the chain check (gaps, edits, restarts). cofferd does it, not
/// cofferctl, because the chain key is derived from the master key.
struct AuditHandler: OperationHandler {
    let operation = Operation.audit
    let members: Set<String> = ["secret", "peer_uid", "unit", "event", "denied", "since", "limit", "verify"]
    static let maxLimit = 10_000

    func handle(_ request: Request, context: RequestContext, services: CofferServices) async throws -> HandlerOutcome {
        let filter = try AuditFilter(request)
        let limit = Int(try request.unsigned("limit") ?? 200)
        guard (1...Self.maxLimit).contains(limit) else {
            throw CofferError(.badRequest, "'limit' must be 1 to \(Self.maxLimit)")
        }
        let verify = try request.bool("verify") ?? false
        let chainID = services.store.snapshot.storeID
        let entries: [JournalReader.Entry]
        do {
            entries = try await services.blockingPool.runIfActive {
                try JournalReader.events(chainID: chainID, since: filter.sinceMicroseconds)
            }
        } catch {
            throw CofferError(.unavailable, "cannot read the audit journal", underlying: "\(error)")
        }
        var fields: [(String, ResponseValue)] = []
        if verify {
            fields.append(("verify", Self.verification(of: entries, services: services)))
        }
        let shown = entries.filter(filter.admits).suffix(limit)
        fields.append(("events", .array(shown.map(Self.event))))
        return HandlerOutcome(fields)
    }

    static func verification(of entries: [JournalReader.Entry], services: CofferServices) -> ResponseValue {
        let keyring = services.keyring
        let sealer = services.sealer
        var macs: [String: @Sendable ([UInt8]) -> [UInt8]] = [:]
        let verifier = AuditChainVerifier { keyID, data in
            if macs[keyID] == nil, let id = KeyID(hex: keyID), let key = try? keyring.key(for: id) {
                macs[keyID] = try? sealer.mac(with: key, for: .auditChain)
            }
            return macs[keyID]?(data)
        }
        let report = verifier.verify(entries.map(\.fields))
        return .object([
            ("intact", .bool(report.isIntact)),
            ("checked", .integer(Int64(report.checked))),
            ("first_seq", report.first.map { .unsigned($0) } ?? .null),
            ("last_seq", report.last.map { .unsigned($0) } ?? .null),
            ("gaps", .array(report.gaps.map { .object([("after_seq", .unsigned($0.after)), ("missing", .unsigned($0.missing))]) })),
            ("edits", .array(report.edits.map { .unsigned($0) })),
            ("restarts", .array(report.restarts.map { .unsigned($0) })),
            ("malformed", .integer(Int64(report.malformed))),
        ])
    }

    /// An event as the client sees it: the COFFER_ fields, lower-cased and
    /// without the prefix, plus the time and the message.
    static func event(_ entry: JournalReader.Entry) -> ResponseValue {
        var members: [(String, ResponseValue)] = [("time_usec", .unsigned(entry.realtimeMicroseconds))]
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
        sinceMicroseconds = try request.unsigned("since").map { $0 * 1_000_000 }
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
