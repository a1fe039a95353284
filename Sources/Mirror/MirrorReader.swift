import FileStore
import Model

/// Reads secrets back from PostgreSQL (the other hosts' changes, a
/// restore) and takes only rows that prove themselves: the row MAC checks
/// under a key this host holds, the rows parse as a store file's entry
/// would, and every record opens for this store (its AAD binds name,
/// version and store id). Anything else is reported, never served.
struct MirrorReader {
    let connection: PostgresConnection
    let rows: RowAuthenticator

    /// One secret's state in the database, checked.
    struct Change {
        let name: SecretName
        /// nil: deleted.
        let secret: Secret?
        let origin: String
        let sequence: Int64
    }

    struct Page {
        var changes: [Change] = []
        /// Names whose rows failed their checks (audited as tamper).
        var refused: [String] = []
        /// The highest change_seq read, refused rows included.
        var lastSequence: Int64
    }

    static let pageSize = 1000

    /// What a row may hold, checked in the SQL itself: libpq reads a whole
    /// result into memory before cofferd sees a byte of it, so a limit in
    /// Swift would come too late. Nothing cofferd writes comes near them; a
    /// row past one is refused (audited as tamper), never read whole.
    enum Limits {
        static let nameBytes = 255
        static let shortText = 64
        static let metadataBytes = 65_536
        /// A value (48 KiB) sealed, with room to spare; a hash's output is
        /// far smaller.
        static let ciphertextBytes = 65_536
        static let hashBytes = 4096
        static let textBytes = 1024
        /// retain_versions is at most 1000, plus the staged ones.
        static let versionsPerSecret = 1003
        /// One secret's versions together, raw (PostgreSQL sends them as
        /// hex, twice this).
        static let bytesPerSecret = versionsPerSecret * 50 * 1024
        /// One page's versions together: a page stops before the secret
        /// that would pass it (that secret starts the next page).
        static let bytesPerPage = 32 << 20
        static let storeIDs = 16
    }

    /// The store ids that have rows, with how many.
    func storeIDs() throws(MirrorError) -> [(String, Int64)] {
        let result = try connection.execute("""
            SELECT store_id, count(*) FROM coffer_secrets WHERE deleted_at IS NULL AND octet_length(store_id) <= 64
            GROUP BY store_id ORDER BY 2 DESC LIMIT \(Limits.storeIDs)
            """)
        return (0..<result.rowCount).compactMap { row in
            guard let id = result.text(row, 0), let count = result.integer(row, 1) else { return nil }
            return (id, count)
        }
    }

    /// Every text column is NULL when it is longer than a row of cofferd's
    /// can be: such a row fails its checks and is refused.
    static let secretColumns = """
        SELECT CASE WHEN octet_length(name) <= \(Limits.nameBytes) THEN name END,
               CASE WHEN octet_length(kind) <= \(Limits.shortText) THEN kind END,
               CASE WHEN octet_length(protection) <= \(Limits.shortText) THEN protection END,
               current_version, previous_version, pending_version,
               CASE WHEN octet_length(metadata) <= \(Limits.metadataBytes) THEN metadata END, deleted_at,
               CASE WHEN octet_length(origin) <= \(Limits.shortText) THEN origin END,
               CASE WHEN octet_length(mac_key_id) <= \(Limits.shortText) THEN mac_key_id END,
               CASE WHEN octet_length(mac) <= \(Limits.shortText) THEN mac END, change_seq FROM coffer_secrets
        """

    /// Changes to `storeID` after `sequence`, oldest first, one page.
    func changes(storeID: String, after sequence: Int64) throws(MirrorError) -> Page {
        try connection.snapshot { () throws(MirrorError) -> Page in
            let secrets = try connection.execute(
                Self.secretColumns + " WHERE store_id = $1 AND change_seq > $2 ORDER BY change_seq LIMIT $3",
                [.text(storeID), .integer(sequence), .integer(Int64(Self.pageSize))])
            return try page(secrets, storeID: storeID, after: sequence)
        }
    }

    /// The database's state of `names`, checked (a push that conflicted).
    func current(storeID: String, names: [SecretName]) throws(MirrorError) -> Page {
        try connection.snapshot { () throws(MirrorError) -> Page in
            let secrets = try connection.execute(
                Self.secretColumns + " WHERE store_id = $1 AND name = ANY($2::text[]) ORDER BY change_seq",
                [.text(storeID), PostgresArray.text(names.map(\.rawValue))])
            return try page(secrets, storeID: storeID, after: 0)
        }
    }

    /// The rows of a page and their versions, in the caller's snapshot
    /// (changes, current): what the sizes query measures is what the
    /// versions query then reads, whatever is written meanwhile.
    private func page(_ secrets: PostgresResult, storeID: String, after sequence: Int64) throws(MirrorError) -> Page {
        var page = Page(lastSequence: sequence)
        guard secrets.rowCount > 0 else { return page }
        // How much each secret's versions hold, before reading any: a
        // secret past the per-secret limits is refused unread, and the page
        // ends before the secret that would take it past its budget.
        var names: [String?] = []
        for row in 0..<secrets.rowCount { names.append(secrets.text(row, 0)) }
        let sizes = try connection.execute("""
            SELECT name, count(*), sum(octet_length(ciphertext) + coalesce(octet_length(hash), 0))
            FROM coffer_versions WHERE store_id = $1 AND name = ANY($2::text[]) GROUP BY name
            """, [.text(storeID), PostgresArray.text(names.compactMap { $0 })])
        var size: [String: (count: Int64, bytes: Int64)] = [:]
        for row in 0..<sizes.rowCount {
            guard let name = sizes.text(row, 0) else { continue }
            size[name] = (sizes.integer(row, 1) ?? .max, sizes.integer(row, 2) ?? .max)
        }
        var rows = 0
        var oversized = Set<String>()
        var budget = Int64(Limits.bytesPerPage)
        for row in 0..<secrets.rowCount {
            let name = names[row] ?? ""
            let (count, bytes) = size[name] ?? (0, 0)
            if count > Limits.versionsPerSecret || bytes > Limits.bytesPerSecret {
                oversized.insert(name)
            } else if bytes > budget, rows > 0 {
                break
            } else {
                budget -= bytes
            }
            rows += 1
        }
        let wanted = (0..<rows).compactMap { names[$0] }.filter { !oversized.contains($0) }
        let versions = try connection.execute("""
            SELECT name, version, stage, key_id, salt, nonce, ciphertext, encoding, hash, created_at, created_by, version_id
            FROM coffer_versions WHERE store_id = $1 AND name = ANY($2::text[])
              -- Nothing cofferd writes comes near these; a row that does is
              -- left out, so its secret fails its MAC and is refused.
              AND octet_length(ciphertext) <= \(Limits.ciphertextBytes) AND coalesce(octet_length(hash), 0) <= \(Limits.hashBytes)
              AND octet_length(salt) <= \(Limits.shortText) AND octet_length(nonce) <= \(Limits.shortText)
              AND octet_length(key_id) <= \(Limits.shortText) AND octet_length(encoding) <= \(Limits.shortText)
              AND coalesce(octet_length(stage), 0) <= \(Limits.shortText)
              AND octet_length(created_by) <= \(Limits.textBytes) AND coalesce(octet_length(version_id), 0) <= \(Limits.textBytes)
            ORDER BY name, version LIMIT \(Limits.versionsPerSecret * Self.pageSize)
            """, [.text(storeID), PostgresArray.text(wanted)])
        var byName: [String: [VersionRow]] = [:]
        for row in 0..<versions.rowCount {
            guard let name = versions.text(row, 0), let number = versions.integer(row, 1).flatMap(UInt64.init(exactly:)),
                  let keyID = versions.text(row, 3), let salt = versions.bytes(row, 4), let nonce = versions.bytes(row, 5),
                  let ciphertext = versions.bytes(row, 6), let encoding = versions.text(row, 7),
                  let createdAt = versions.integer(row, 9), let createdBy = versions.text(row, 10)
            else { continue }
            byName[name, default: []].append(VersionRow(
                version: number, stage: versions.text(row, 2), keyID: keyID, salt: salt, nonce: nonce, ciphertext: ciphertext,
                encoding: encoding, hash: versions.text(row, 8), createdAt: createdAt, createdBy: createdBy,
                id: versions.text(row, 11) ?? ""))
        }
        for row in 0..<rows {
            let sequence = secrets.integer(row, 11) ?? page.lastSequence
            page.lastSequence = max(page.lastSequence, sequence)
            // A name too long to be one (left NULL by the query) is refused
            // under a stand-in: the row is never repeated whole.
            guard let nameText = secrets.text(row, 0), !oversized.contains(nameText) else {
                page.refused.append(secrets.text(row, 0).map { String($0.prefix(SecretName.maxBytes)) } ?? "(a row without a readable name)")
                continue
            }
            if let change = check(secrets, row, name: nameText, versions: byName[nameText] ?? [], storeID: storeID, sequence: sequence) {
                page.changes.append(change)
            } else {
                page.refused.append(nameText)
            }
        }
        return page
    }

    private func check(
        _ result: PostgresResult, _ row: Int, name nameText: String, versions: [VersionRow], storeID: String, sequence: Int64
    ) -> Change? {
        guard let name = try? SecretName(nameText), let origin = result.text(row, 8), let macKeyID = result.text(row, 9),
              let mac = result.bytes(row, 10)
        else { return nil }
        let deletedAt = result.integer(row, 7)
        var secret: Secret?
        if deletedAt == nil {
            guard let kind = result.text(row, 1), let protection = result.text(row, 2),
                  let current = result.integer(row, 3).flatMap(UInt64.init(exactly:)), let metadata = result.text(row, 6)
            else { return nil }
            let secretRow = SecretRow(
                name: nameText, kind: kind, protection: protection, current: current,
                previous: result.integer(row, 4).flatMap(UInt64.init(exactly:)),
                pending: result.integer(row, 5).flatMap(UInt64.init(exactly:)), metadata: metadata, versions: versions)
            guard let parsed = try? secretRow.secret() else { return nil }
            secret = parsed
        }
        guard rows.check(storeID: storeID, name: nameText, deletedAt: deletedAt, secret: secret, sequence: sequence,
                         keyID: macKeyID, mac: mac) else {
            return nil
        }
        return Change(name: name, secret: secret, origin: origin, sequence: sequence)
    }
}
