import Foundation

/// The mirror's tables, created and migrated by cofferd on first connect
/// (docs/mirror.md has them, and the least-privilege role). Each migration
/// runs once, in a transaction, under an advisory lock so that two hosts
/// starting together do not both run it.
enum MirrorSchema {
    /// pg_advisory_xact_lock key: "coffer" as ASCII in a bigint.
    static let lockKey: Int64 = 0x636f_6666_6572

    static let migrations: [String] = [
        // 1: secrets (metadata, stages, a MAC per secret) and their versions
        // (ciphertext only). change_seq orders changes for the other hosts.
        """
        CREATE SEQUENCE coffer_change_seq;
        CREATE TABLE coffer_secrets (
            store_id         text    NOT NULL,
            name             text    NOT NULL,
            kind             text,
            protection       text,
            current_version  bigint,
            previous_version bigint,
            pending_version  bigint,
            metadata         text,
            deleted_at       bigint,
            generation       bigint  NOT NULL,
            origin           text    NOT NULL,
            mac_key_id       text    NOT NULL,
            mac              bytea   NOT NULL,
            change_seq       bigint  NOT NULL DEFAULT nextval('coffer_change_seq'),
            PRIMARY KEY (store_id, name)
        );
        CREATE INDEX coffer_secrets_changes ON coffer_secrets (store_id, change_seq);
        CREATE TABLE coffer_versions (
            store_id    text    NOT NULL,
            name        text    NOT NULL,
            version     bigint  NOT NULL,
            stage       text,
            key_id      text    NOT NULL,
            salt        bytea   NOT NULL,
            nonce       bytea   NOT NULL,
            ciphertext  bytea   NOT NULL,
            encoding    text    NOT NULL,
            hash        text,
            created_at  bigint  NOT NULL,
            created_by  text    NOT NULL,
            generation  bigint  NOT NULL,
            origin      text    NOT NULL,
            PRIMARY KEY (store_id, name, version)
        );
        """,
        // 2: each version's random id, so that two hosts' versions with the
        // same number are told apart ('' for versions made before ids).
        """
        ALTER TABLE coffer_versions ADD COLUMN version_id text NOT NULL DEFAULT ''
        """,
    ]

    /// Brings the database to the newest schema; returns its version.
    @discardableResult
    static func migrate(_ connection: PostgresConnection) throws(MirrorError) -> Int {
        // A least-privilege role (docs/mirror.md) may not CREATE anything,
        // not even with IF NOT EXISTS: look before creating, and when the
        // schema is current, do nothing but read.
        if try applied(connection) == Int64(migrations.count) { return migrations.count }
        return try connection.transaction { () throws(MirrorError) -> Int in
            try connection.execute("SELECT pg_advisory_xact_lock($1)", [.integer(lockKey)])
            if try connection.execute("SELECT to_regclass('coffer_schema_migrations') IS NULL").text(0, 0) == "t" {
                try connection.execute("CREATE TABLE coffer_schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
            }
            let applied = try applied(connection)
            guard applied <= Int64(migrations.count) else {
                throw MirrorError(.schema, "the database has mirror schema version \(applied), newer than this cofferd's \(migrations.count)")
            }
            for index in Int(applied)..<migrations.count {
                for statement in migrations[index].split(separator: ";").map({ $0.trimmingCharacters(in: .whitespacesAndNewlines) }) where !statement.isEmpty {
                    try connection.execute(statement)
                }
                try connection.execute("INSERT INTO coffer_schema_migrations (version) VALUES ($1)", [.integer(Int64(index + 1))])
            }
            return migrations.count
        }
    }

    /// The newest migration the database has, 0 for none.
    private static func applied(_ connection: PostgresConnection) throws(MirrorError) -> Int64 {
        guard try connection.execute("SELECT to_regclass('coffer_schema_migrations') IS NOT NULL").text(0, 0) == "t" else { return 0 }
        return try connection.execute("SELECT coalesce(max(version), 0) FROM coffer_schema_migrations").integer(0, 0) ?? 0
    }
}
