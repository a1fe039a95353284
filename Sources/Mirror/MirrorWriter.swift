import FileStore
import Model

/// Pushes outbox entries to PostgreSQL: per batch one transaction of three
/// unnest() statements (secrets, versions, versions no longer kept) and a
/// NOTIFY for the other hosts. Upserts keyed by (store id, name[, version])
/// make a replay after a crash or an outage harmless.
struct MirrorWriter {

    let connection: PostgresConnection
    let rows: RowAuthenticator
    /// This host (STATE/host-id): the other hosts skip what it wrote.
    let origin: String

    struct Item {
        let name: SecretName
        /// nil: deleted.
        let secret: Secret?
        let generation: UInt64
    }

    /// The outbox as items, oldest change first, without `done` and what
    /// PostgreSQL already confirmed (`settled`).
    static func queue(
        from snapshot: StoreSnapshot, excluding done: Set<SecretName> = [], settled: SettledChanges = SettledChanges(watermark: 0)
    ) -> [Item] {
        settled.pending(in: snapshot.outbox).filter { !done.contains($0.key) }
            .sorted { ($0.value.generation, $0.key) < ($1.value.generation, $1.key) }.map {
            Item(name: $0.key, secret: snapshot.secrets[$0.key], generation: $0.value.generation)
        }
    }

    /// What a push did: the names that collided, or the change_seq each
    /// name was written at.
    enum Outcome {
        /// Collided with another host's (same version number, other id,
        /// or a change not taken yet): nothing of the batch was written;
        /// the caller merges those names and pushes again.
        case conflicted(Set<SecretName>)
        case written([SecretName: Int64])
    }

    /// Pushes `items`. `watermark`: the highest change_seq this host has
    /// taken from the database; a secret row changed after it by another
    /// host is a conflict too (it must be merged, not overwritten).
    func push(_ items: [Item], storeID: String, now: Int64, watermark: Int64) throws -> Outcome {
        var names: [String?] = [], kinds: [String?] = [], protections: [String?] = []
        var currents: [Int64?] = [], previouses: [Int64?] = [], pendings: [Int64?] = []
        var metadata: [String?] = [], deletedAt: [Int64?] = [], generations: [Int64?] = []
        var vName: [String?] = [], vNumber: [Int64?] = [], vStage: [String?] = [], vKey: [String?] = []
        var vSalt: [[UInt8]] = [], vNonce: [[UInt8]] = [], vCipher: [[UInt8]] = [], vEncoding: [String?] = []
        var vHash: [String?] = [], vCreatedAt: [Int64?] = [], vCreatedBy: [String?] = [], vGeneration: [Int64?] = []
        var vID: [String?] = []
        let sign = try rows.signer()
        for item in items {
            let deleted: Int64? = item.secret == nil ? now : nil
            names.append(item.name.rawValue)
            deletedAt.append(deleted)
            generations.append(Int64(item.generation))
            guard let secret = item.secret else {
                kinds.append(nil); protections.append(nil); currents.append(nil); previouses.append(nil); pendings.append(nil)
                metadata.append(nil)
                continue
            }
            let row = SecretRow(secret)
            kinds.append(row.kind); protections.append(row.protection)
            currents.append(Int64(row.current)); previouses.append(row.previous.map(Int64.init)); pendings.append(row.pending.map(Int64.init))
            metadata.append(row.metadata)
            for v in row.versions {
                vName.append(row.name); vNumber.append(Int64(v.version)); vStage.append(v.stage); vKey.append(v.keyID)
                vSalt.append(v.salt); vNonce.append(v.nonce); vCipher.append(v.ciphertext); vEncoding.append(v.encoding)
                vHash.append(v.hash); vCreatedAt.append(v.createdAt); vCreatedBy.append(v.createdBy)
                vGeneration.append(Int64(item.generation))
                vID.append(v.id)
            }
        }
        return try connection.transaction { () throws(MirrorError) -> Outcome in
            // One pusher at a time across the fleet: change_seq values are
            // then committed in order, so a reader that has seen N has seen
            // everything below N.
            try connection.execute("SELECT pg_advisory_xact_lock($1)", [.integer(MirrorSchema.lockKey + 1)])
            // Each row's change_seq is taken first and signed with it.
            let numbers = try connection.execute("SELECT nextval('coffer_change_seq') FROM generate_series(1, $1)",
                                                 [.integer(Int64(items.count))])
            var sequences: [Int64?] = []
            var macKeys: [String?] = [], macs: [[UInt8]] = []
            for (index, item) in items.enumerated() {
                guard let sequence = numbers.integer(index, 0) else { throw MirrorError(.query, "PostgreSQL gave no change_seq") }
                let keyID: String, mac: [UInt8]
                do { (keyID, mac) = try sign(storeID, item.name.rawValue, deletedAt[index], item.secret, sequence) } catch {
                    throw MirrorError(.state, "a row's MAC could not be computed; the batch waits for the next push", detail: "\(error)")
                }
                sequences.append(sequence)
                macKeys.append(keyID)
                macs.append(mac)
            }
            // Versions first: a row of the same number is updated only when
            // it is the same version (same id: a re-seal, a stage change).
            // Those not returned collided with another host's.
            var written = Set<String>()
            try connection.execute("SAVEPOINT versions")
            if !vName.isEmpty {
                let result = try connection.execute("""
                    INSERT INTO coffer_versions (store_id, name, version, stage, key_id, salt, nonce, ciphertext, encoding, hash,
                                                 created_at, created_by, generation, origin, version_id)
                    SELECT $1::text, u.n, u.v, u.s, u.k, u.salt, u.nonce, u.c, u.e, u.h, u.ca, u.cb, u.g, $2::text, u.id
                    FROM unnest($3::text[], $4::bigint[], $5::text[], $6::text[], $7::bytea[], $8::bytea[], $9::bytea[],
                                $10::text[], $11::text[], $12::bigint[], $13::text[], $14::bigint[], $15::text[])
                         AS u(n, v, s, k, salt, nonce, c, e, h, ca, cb, g, id)
                    ON CONFLICT (store_id, name, version) DO UPDATE SET
                        stage = EXCLUDED.stage, key_id = EXCLUDED.key_id, salt = EXCLUDED.salt, nonce = EXCLUDED.nonce,
                        ciphertext = EXCLUDED.ciphertext, encoding = EXCLUDED.encoding, hash = EXCLUDED.hash,
                        generation = EXCLUDED.generation, origin = EXCLUDED.origin
                    WHERE coffer_versions.version_id = EXCLUDED.version_id
                    RETURNING name, version
                    """, [.text(storeID), .text(origin), PostgresArray.text(vName), PostgresArray.integers(vNumber),
                          PostgresArray.text(vStage), PostgresArray.text(vKey), PostgresArray.bytes(vSalt),
                          PostgresArray.bytes(vNonce), PostgresArray.bytes(vCipher), PostgresArray.text(vEncoding),
                          PostgresArray.text(vHash), PostgresArray.integers(vCreatedAt), PostgresArray.text(vCreatedBy),
                          PostgresArray.integers(vGeneration), PostgresArray.text(vID)])
                for row in 0..<result.rowCount {
                    if let name = result.text(row, 0), let version = result.text(row, 1) { written.insert(name + "@" + version) }
                }
            }
            var conflicted = Set<String>()
            for (i, name) in vName.enumerated() where !written.contains(name! + "@" + String(vNumber[i]!)) {
                conflicted.insert(name!)
            }
            let upserted = try connection.execute("""
                INSERT INTO coffer_secrets (store_id, name, kind, protection, current_version, previous_version, pending_version,
                                            metadata, deleted_at, generation, origin, mac_key_id, mac, change_seq)
                SELECT $1::text, u.n, u.k, u.p, u.c, u.pr, u.pe, u.m, u.d, u.g, $2::text, u.mk, u.mac, u.seq
                FROM unnest($3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[], $9::text[],
                            $10::bigint[], $11::bigint[], $12::text[], $13::bytea[], $15::bigint[])
                     AS u(n, k, p, c, pr, pe, m, d, g, mk, mac, seq)
                ON CONFLICT (store_id, name) DO UPDATE SET
                    kind = EXCLUDED.kind, protection = EXCLUDED.protection, current_version = EXCLUDED.current_version,
                    previous_version = EXCLUDED.previous_version, pending_version = EXCLUDED.pending_version,
                    metadata = EXCLUDED.metadata, deleted_at = EXCLUDED.deleted_at, generation = EXCLUDED.generation,
                    origin = EXCLUDED.origin, mac_key_id = EXCLUDED.mac_key_id, mac = EXCLUDED.mac,
                    change_seq = EXCLUDED.change_seq
                WHERE coffer_secrets.change_seq <= $14 OR coffer_secrets.origin = $2
                RETURNING name
                """, [.text(storeID), .text(origin), PostgresArray.text(names), PostgresArray.text(kinds), PostgresArray.text(protections),
                      PostgresArray.integers(currents), PostgresArray.integers(previouses), PostgresArray.integers(pendings),
                      PostgresArray.text(metadata), PostgresArray.integers(deletedAt), PostgresArray.integers(generations),
                      PostgresArray.text(macKeys), PostgresArray.bytes(macs), .integer(watermark),
                      PostgresArray.integers(sequences)])
            let accepted = Set((0..<upserted.rowCount).compactMap { upserted.text($0, 0) })
            for case let name? in names where !accepted.contains(name) { conflicted.insert(name) }
            if !conflicted.isEmpty {
                // Another host got there first (the same version number, or
                // a change we have not taken yet): undo this batch; the
                // caller merges those names and pushes again.
                try connection.execute("ROLLBACK TO SAVEPOINT versions")
                return .conflicted(Set(conflicted.compactMap { try? SecretName($0) }))
            }
            // Versions the batch's secrets no longer keep (retention,
            // deletion) leave the database with them.
            try connection.execute("""
                DELETE FROM coffer_versions v
                WHERE v.store_id = $1 AND v.name = ANY($2::text[])
                  AND NOT EXISTS (SELECT 1 FROM unnest($3::text[], $4::bigint[]) AS k(n, ver) WHERE k.n = v.name AND k.ver = v.version)
                """, [.text(storeID), PostgresArray.text(names), PostgresArray.text(vName), PostgresArray.integers(vNumber)])
            try connection.execute("SELECT pg_notify('coffer_changes', $1)", [.text(storeID)])
            var at: [SecretName: Int64] = [:]
            for (item, sequence) in zip(items, sequences) { at[item.name] = sequence }
            return .written(at)
        }
    }
}
