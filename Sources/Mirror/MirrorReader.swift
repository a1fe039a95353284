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

    /// The store ids that have rows, with how many.
    func storeIDs() throws(MirrorError) -> [(String, Int64)] {
        let result = try connection.execute("SELECT store_id, count(*) FROM coffer_secrets WHERE deleted_at IS NULL GROUP BY store_id ORDER BY 2 DESC")
        return (0..<result.rowCount).compactMap { row in
            guard let id = result.text(row, 0), let count = result.integer(row, 1) else { return nil }
            return (id, count)
        }
    }

    static let secretColumns = """
        SELECT name, kind, protection, current_version, previous_version, pending_version,
               CASE WHEN octet_length(metadata) <= 65536 THEN metadata END, deleted_at,
               origin, mac_key_id, mac, change_seq FROM coffer_secrets
        """

    /// Changes to `storeID` after `sequence`, oldest first, one page.
    func changes(storeID: String, after sequence: Int64) throws(MirrorError) -> Page {
        let secrets = try connection.execute(
            Self.secretColumns + " WHERE store_id = $1 AND change_seq > $2 ORDER BY change_seq LIMIT $3",
            [.text(storeID), .integer(sequence), .integer(Int64(Self.pageSize))])
        return try page(secrets, storeID: storeID, after: sequence)
    }

    /// The database's state of `names`, checked (a push that conflicted).
    func current(storeID: String, names: [SecretName]) throws(MirrorError) -> Page {
        let secrets = try connection.execute(
            Self.secretColumns + " WHERE store_id = $1 AND name = ANY($2::text[]) ORDER BY change_seq",
            [.text(storeID), PostgresArray.text(names.map(\.rawValue))])
        return try page(secrets, storeID: storeID, after: 0)
    }

    private func page(_ secrets: PostgresResult, storeID: String, after sequence: Int64) throws(MirrorError) -> Page {
        var page = Page(lastSequence: sequence)
        guard secrets.rowCount > 0 else { return page }
        var names: [String?] = []
        for row in 0..<secrets.rowCount { names.append(secrets.text(row, 0)) }
        let versions = try connection.execute("""
            SELECT name, version, stage, key_id, salt, nonce, ciphertext, encoding, hash, created_at, created_by, version_id
            FROM coffer_versions WHERE store_id = $1 AND name = ANY($2::text[])
              -- Nothing cofferd writes comes near these; a row that does is
              -- left out, so its secret fails its MAC and is refused.
              AND octet_length(ciphertext) <= 1048576 AND coalesce(octet_length(hash), 0) <= 4096
            ORDER BY name, version LIMIT 100000
            """, [.text(storeID), PostgresArray.text(names)])
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
        for row in 0..<secrets.rowCount {
            let sequence = secrets.integer(row, 11) ?? page.lastSequence
            page.lastSequence = max(page.lastSequence, sequence)
            guard let nameText = secrets.text(row, 0) else { continue }
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
