import CofferTestSupport
import Foundation
import Synchronization
import Testing

/// The PostgreSQL mirror against real servers: what the tables hold, an
/// outage, a second host, a tampered row, a restore (docs/mirror.md).
@Suite struct MirrorTests {
    /// A dev instance mirroring to `conninfo`; `keyFrom` shares another
    /// instance's master key (a second host of the same fleet).
    func host(_ conninfo: String, keyFrom other: DevDaemon? = nil, directory: TemporaryDirectory? = nil) throws -> DevDaemon {
        let directory = try directory ?? TemporaryDirectory("host")
        if let other {
            try FileManager.default.createDirectory(atPath: directory.path + "/dev", withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: other.devPath + "/master.key", toPath: directory.path + "/dev/master.key")
        }
        return try DevDaemon(directory: directory, arguments: ["--postgres", conninfo])
    }

    func value(_ daemon: DevDaemon, _ name: String) throws -> String? {
        let result = try daemon.ctl(["get", name])
        return result.status == 0 ? result.stdoutText : nil
    }

    func mirror(_ daemon: DevDaemon) throws -> [String: Any] {
        try LineClient(socketPath: daemon.adminSocket).call(#"{"op":"status"}"#)["mirror"] as? [String: Any] ?? [:]
    }

    @Test func theTablesHoldNoPlaintext() throws {
        guard let db = try PostgresDatabase(label: "plain") else { return }
        let daemon = try host(db.conninfo)
        let sealed = uniqueValue("sealed"), password = uniqueValue("password")
        #expect(try daemon.ctl(["put", "db/pw"], stdin: sealed).status == 0)
        #expect(try daemon.ctl(["put", "login", "--protection", "hashed"], stdin: password).status == 0)
        let token = try daemon.ctl(["token-create", "tokens/ci"]).stdoutText.trimmingCharacters(in: .newlines)
        #expect(try daemon.ctl(["rotate", "db/pw", "--generate"]).status == 0)
        let generated = try #require(try value(daemon, "db/pw"))
        #expect(try waitUntil("the mirror has every write") { try mirror(daemon)["queue_depth"] as? Int == 0 })
        #expect(try db.sql("SELECT count(*) FROM coffer_versions") == "4\n")
        let dump = try runProgram(PostgresDatabase.bin + "/pg_dump", ["--data-only", db.conninfo])
        try #require(dump.status == 0, "\(dump.stderr)")
        let text = dump.stdoutText
        for secret in [sealed, password, token, generated, String(token.dropFirst(7))] {
            #expect(!text.contains(secret), "the database holds a value in clear")
            #expect(!text.contains(Data(secret.utf8).map { String(format: "%02x", $0) }.joined()), "the database holds a value in hex")
        }
        #expect(text.contains("db/pw"), "names and metadata are there")
    }

    func generation(_ daemon: DevDaemon) throws -> Int? {
        (try LineClient(socketPath: daemon.adminSocket).call(#"{"op":"status"}"#)["store"] as? [String: Any])?["generation"] as? Int
    }

    /// A confirmed push moves the mirror's watermark (STATE/mirror-pushed):
    /// the store file is not written again for it, and after a restart
    /// nothing confirmed is pending.
    @Test func aConfirmedPushMovesAWatermarkAndLeavesTheStoreFileAlone() throws {
        guard let db = try PostgresDatabase(label: "settled") else { return }
        let daemon = try host(db.conninfo)
        #expect(try daemon.ctl(["put", "a"], stdin: "1").status == 0)
        let written = try #require(try generation(daemon))
        #expect(try waitUntil("mirrored") { try mirror(daemon)["queue_depth"] as? Int == 0 })
        #expect(try generation(daemon) == written, "no commit of the store for the acknowledgement")
        let pushed = try String(contentsOfFile: daemon.devPath + "/state/mirror-pushed", encoding: .utf8)
        #expect(pushed.hasSuffix(" \(written)\n"))
        daemon.stop()
        let again = try DevDaemon(directory: daemon.directory, arguments: ["--postgres", db.conninfo])
        #expect(try mirror(again)["queue_depth"] as? Int == 0)
        #expect(try db.sql("SELECT count(*) FROM coffer_versions") == "1\n")
    }

    @Test func writesWhileThePostgresServerIsStoppedArriveAfterItStarts() throws {
        guard let server = try PrivatePostgres() else { return }
        let daemon = try host(server.conninfo)
        #expect(try daemon.ctl(["put", "before"], stdin: "1").status == 0)
        #expect(try waitUntil("the first write is mirrored") { try mirror(daemon)["queue_depth"] as? Int == 0 })
        try server.stop()
        var written: [String] = []
        for n in 0..<5 {
            #expect(try daemon.ctl(["put", "during/\(n)"], stdin: "v\(n)").status == 0, "writes are acknowledged without PostgreSQL")
            written.append("during/\(n)")
        }
        #expect(try waitUntil("the mirror notices") { try mirror(daemon)["connected"] as? Bool == false })
        #expect(try mirror(daemon)["queue_depth"] as? Int == 5)
        // The queue is in the store file: a restart keeps it.
        daemon.stop()
        let again = try DevDaemon(directory: daemon.directory, arguments: ["--postgres", server.conninfo])
        #expect(try mirror(again)["queue_depth"] as? Int == 5)
        try server.start()
        #expect(try waitUntil("the queue drains after PostgreSQL starts", timeout: .seconds(60)) {
            try mirror(again)["queue_depth"] as? Int == 0
        })
        let names = try PostgresDatabase.psql(server.conninfo, "SELECT name FROM coffer_secrets ORDER BY name")
        #expect(names == (["before"] + written).joined(separator: "\n") + "\n")
        #expect(again.output.contains("COFFER_EVENT=mirror_error") || daemon.output.contains("COFFER_EVENT=mirror_error"))
        #expect(again.output.contains("COFFER_EVENT=mirror_recovered"))
    }

    @Test func aSecondHostConvergesAndRefusesASwappedRow() throws {
        guard let db = try PostgresDatabase(label: "fleet") else { return }
        let first = try host(db.conninfo)
        #expect(try first.ctl(["put", "app/one"], stdin: "one").status == 0)
        #expect(try first.ctl(["put", "app/two"], stdin: "two").status == 0)
        #expect(try waitUntil("mirrored") { try mirror(first)["queue_depth"] as? Int == 0 })

        // A new host with the key and an empty state directory restores.
        let second = try host(db.conninfo, keyFrom: first)
        #expect(try value(second, "app/one") == "one")
        // Changes on either side reach the other within seconds.
        #expect(try first.ctl(["rotate", "app/one"], stdin: "one-b").status == 0)
        #expect(try waitUntil("the second host sees the rotation") { try value(second, "app/one") == "one-b" })
        #expect(try second.ctl(["put", "app/three"], stdin: "three").status == 0)
        #expect(try waitUntil("the first host sees the new secret") { try value(first, "app/three") == "three" })
        #expect(try first.ctl(["delete", "app/three"]).status == 0)
        #expect(try waitUntil("the second host sees the delete") { try second.ctl(["get", "app/three"]).status == 3 })

        // Someone swaps two ciphertexts in the database and makes the rows
        // look new: the second host refuses them and keeps what it had.
        try db.sql("""
            UPDATE coffer_versions v SET ciphertext = o.ciphertext, nonce = o.nonce, salt = o.salt
            FROM coffer_versions o WHERE v.name = 'app/two' AND v.version = 1 AND o.name = 'app/one' AND o.version = 2;
            UPDATE coffer_secrets SET change_seq = nextval('coffer_change_seq') WHERE name = 'app/two';
            NOTIFY coffer_changes;
            """)
        #expect(try waitUntil("the refusal is audited") { second.output.contains("COFFER_REASON=mirror_row_refused") })
        #expect(second.output.contains("COFFER_EVENT=tamper"))
        #expect(try value(second, "app/two") == "two", "the swapped row is never served")

        // A third host restores the rest and skips the swapped row.
        let third = try host(db.conninfo, keyFrom: first)
        #expect(try value(third, "app/one") == "one-b")
        #expect(try third.ctl(["get", "app/two"]).status == 3)
        #expect(third.output.contains("COFFER_REASON=mirror_row_refused"))
    }

    @Test func afterAnOutageTheQueueArrivesWithinTwoSecondsAndTheOtherHostWithinOne() throws {
        guard let server = try PrivatePostgres() else { return }
        let first = try host(server.conninfo)
        #expect(try first.ctl(["put", "steady"], stdin: "0").status == 0)
        #expect(try waitUntil("mirrored") { try mirror(first)["queue_depth"] as? Int == 0 })
        let second = try host(server.conninfo, keyFrom: first)
        #expect(try value(second, "steady") == "0")

        // Steady state: the other host hears of a change at once (NOTIFY).
        var start = ContinuousClock.now
        #expect(try first.ctl(["rotate", "steady"], stdin: "1").status == 0)
        #expect(try waitUntil("the second host sees the rotation") { try value(second, "steady") == "1" })
        #expect(ContinuousClock.now - start < .seconds(1), "a change took \(ContinuousClock.now - start) to reach the other host")

        // An outage with writes spread over it: each wakes the mirror, and
        // none of those wake-ups may push its retry further away.
        try server.stop()
        #expect(try waitUntil("the mirror notices") { try mirror(first)["connected"] as? Bool == false })
        for n in 0..<8 {
            #expect(try first.ctl(["put", "outage/\(n)"], stdin: "v\(n)").status == 0)
            Thread.sleep(forTimeInterval: 0.3)  // pacing: writes spread over the outage, not one burst
        }
        try server.start()
        start = ContinuousClock.now
        let arrived = try waitUntil("the outage's writes are in PostgreSQL") {
            try PostgresDatabase.psql(server.conninfo, "SELECT count(*) FROM coffer_secrets WHERE name LIKE 'outage/%'") == "8\n"
        }
        let toDatabase = ContinuousClock.now - start
        #expect(arrived && toDatabase < .seconds(2), "the writes reached PostgreSQL \(toDatabase) after it came back")
        let seen = try waitUntil("the second host has them") { try value(second, "outage/7") == "v7" }
        let toOtherHost = ContinuousClock.now - start - toDatabase
        #expect(seen && toOtherHost < .seconds(1), "the other host took \(toOtherHost) more")
    }

    @Test func threeHostsRotatingOneNameAtOnceEndWithOneHistoryWithinRetention() throws {
        guard let db = try PostgresDatabase(label: "retain") else { return }
        let first = try host(db.conninfo)
        #expect(try first.ctl(["put", "shared"], stdin: "base").status == 0)
        #expect(try waitUntil("mirrored") { try mirror(first)["queue_depth"] as? Int == 0 })
        let hosts = [first, try host(db.conninfo, keyFrom: first), try host(db.conninfo, keyFrom: first)]
        let failures = Mutex<[String]>([])
        let sockets = hosts.map(\.adminSocket)
        DispatchQueue.concurrentPerform(iterations: 3) { h in
            do {
                let client = try LineClient(socketPath: sockets[h])
                for n in 0..<15 {
                    let answer = try client.call(#"{"op":"rotate","name":"shared","value":"host\#(h)-\#(n)"}"#)
                    if answer["ok"] as? Bool != true { failures.withLock { $0.append("\(answer)") } }
                }
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 })")
        func history(_ daemon: DevDaemon) throws -> [Int] {
            let object = try JSONSerialization.jsonObject(with: try daemon.ctl(["history", "shared", "--json"]).stdout) as? [String: Any]
            return (object?["versions"] as? [[String: Any]] ?? []).compactMap { $0["version"] as? Int }
        }
        var histories: [[Int]] = []
        let converged = try waitUntil("the three hosts hold one history", timeout: .seconds(60)) {
            guard try hosts.allSatisfy({ try mirror($0)["queue_depth"] as? Int == 0 }) else { return false }
            histories = try hosts.map(history)
            let values = try hosts.map { try value($0, "shared") }
            return Set(histories.map { $0.description }).count == 1 && Set(values).count == 1
        }
        #expect(converged, "\(histories)")
        #expect(histories.allSatisfy { $0.count <= 10 }, "retain_versions is 10: \(histories)")
        #expect(histories.first?.count == 10, "and 46 writes leave ten")
    }

    @Test func twoHostsRotatingOneNameAtOnceLoseNeitherWrite() throws {
        guard let server = try PrivatePostgres() else { return }
        let first = try host(server.conninfo)
        #expect(try first.ctl(["put", "shared"], stdin: "base").status == 0)
        #expect(try waitUntil("mirrored") { try mirror(first)["queue_depth"] as? Int == 0 })
        let second = try host(server.conninfo, keyFrom: first)
        #expect(try value(second, "shared") == "base")
        // Both rotate while the database is away: each makes its version 2.
        try server.stop()
        #expect(try first.ctl(["rotate", "shared"], stdin: "from-first").status == 0)
        #expect(try second.ctl(["rotate", "shared"], stdin: "from-second").status == 0)
        try server.start()
        func versions(_ daemon: DevDaemon) throws -> [String] {
            try (1...3).map { n in try daemon.ctl(["get", "shared", "--version", "\(n)"]).stdoutText }
        }
        let converged = try waitUntil("both hosts hold both writes", timeout: .seconds(60)) {
            let a = try versions(first), b = try versions(second)
            let currentA = try value(first, "shared"), currentB = try value(second, "shared")
            return a == b && Set(a) == ["base", "from-first", "from-second"] && currentA == currentB
        }
        #expect(converged)
        let rows = try PostgresDatabase.psql(server.conninfo, "SELECT count(*) FROM coffer_versions WHERE name = 'shared'")
        #expect(rows == "3\n")
    }

    @Test func aStageChangeOnOneHostDoesNotWipeANewVersionFromAnother() throws {
        guard let server = try PrivatePostgres() else { return }
        let first = try host(server.conninfo)
        #expect(try first.ctl(["put", "x"], stdin: "v1").status == 0)
        #expect(try first.ctl(["rotate", "x"], stdin: "v2").status == 0)
        #expect(try waitUntil("mirrored") { try mirror(first)["queue_depth"] as? Int == 0 })
        let second = try host(server.conninfo, keyFrom: first)
        #expect(try value(second, "x") == "v2")
        try server.stop()
        #expect(try first.ctl(["rotate", "x"], stdin: "v3").status == 0)
        #expect(try second.ctl(["rollback", "x"]).status == 0)
        try server.start()
        let converged = try waitUntil("both hosts keep the new version", timeout: .seconds(60)) {
            let a = try first.ctl(["get", "x", "--version", "3"]).stdoutText
            let b = try second.ctl(["get", "x", "--version", "3"]).stdoutText
            let currentA = try value(first, "x"), currentB = try value(second, "x")
            return a == "v3" && b == "v3" && currentA == currentB
        }
        #expect(converged)
    }

    @Test func anOlderRowPutBackIsRefusedByTheOtherHosts() throws {
        guard let db = try PostgresDatabase(label: "replay") else { return }
        let first = try host(db.conninfo)
        #expect(try first.ctl(["put", "k"], stdin: "old").status == 0)
        #expect(try waitUntil("mirrored") { try mirror(first)["queue_depth"] as? Int == 0 })
        try db.sql("CREATE TABLE saved AS SELECT * FROM coffer_secrets WHERE name = 'k'")
        let second = try host(db.conninfo, keyFrom: first)
        #expect(try first.ctl(["rotate", "k"], stdin: "new").status == 0)
        #expect(try waitUntil("the second host has the rotation") { try value(second, "k") == "new" })
        // Put the old, authentic row back as if it were a new change.
        try db.sql("""
            UPDATE coffer_secrets c SET current_version = s.current_version, previous_version = s.previous_version,
                   metadata = s.metadata, mac = s.mac, change_seq = nextval('coffer_change_seq')
            FROM saved s WHERE c.name = 'k';
            NOTIFY coffer_changes;
            """)
        #expect(try waitUntil("the replay is refused") { second.output.contains("COFFER_REASON=mirror_row_refused") })
        #expect(try value(second, "k") == "new", "an older row is not taken back")
    }

    @Test func anOlderAuthenticRowSetPutBackIsNotTakenByARunningHost() throws {
        guard let db = try PostgresDatabase(label: "replayset") else { return }
        let first = try host(db.conninfo)
        #expect(try first.ctl(["put", "k"], stdin: "old").status == 0)
        #expect(try waitUntil("mirrored") { try mirror(first)["queue_depth"] as? Int == 0 })
        try db.sql("""
            CREATE TABLE saved_s AS SELECT * FROM coffer_secrets WHERE name = 'k';
            CREATE TABLE saved_v AS SELECT * FROM coffer_versions WHERE name = 'k';
            """)
        let second = try host(db.conninfo, keyFrom: first)
        #expect(try first.ctl(["rotate", "k"], stdin: "new").status == 0)
        #expect(try waitUntil("the second host has the rotation") { try value(second, "k") == "new" })
        // The whole old row set back, authentic: its own MAC and change_seq.
        try db.sql("""
            DELETE FROM coffer_versions WHERE name = 'k';
            INSERT INTO coffer_versions SELECT * FROM saved_v;
            UPDATE coffer_secrets c SET current_version = s.current_version, previous_version = s.previous_version,
                   metadata = s.metadata, mac = s.mac, change_seq = s.change_seq, origin = 'elsewhere'
            FROM saved_s s WHERE c.name = 'k';
            NOTIFY coffer_changes;
            """)
        // A write on the second host makes it push, and meet the row.
        #expect(try second.ctl(["put", "other"], stdin: "x").status == 0)
        #expect(try second.ctl(["rotate", "k"], stdin: "from-second").status == 0)
        #expect(try waitUntil("the second host's write is mirrored") { try mirror(second)["queue_depth"] as? Int == 0 })
        #expect(try value(second, "k") == "from-second", "the old row was neither taken nor merged")
        let history = try JSONSerialization.jsonObject(with: try second.ctl(["history", "k", "--json"]).stdout) as? [String: Any]
        let versions = (history?["versions"] as? [[String: Any]] ?? []).compactMap { $0["version"] as? Int }
        #expect(versions == [1, 2, 3], "old, new, from-second: nothing doubled by a merge of the old set")
        #expect(try waitUntil("the first host takes the newer write") { try value(first, "k") == "from-second" })
    }

    @Test func oversizedRowsAreRefusedAndAuditedNeverReadWhole() throws {
        guard let db = try PostgresDatabase(label: "oversized") else { return }
        let first = try host(db.conninfo)
        #expect(try first.ctl(["put", "app/one"], stdin: "v1").status == 0)
        #expect(try first.ctl(["put", "app/two"], stdin: "v2").status == 0)
        #expect(try waitUntil("mirrored") { try mirror(first)["queue_depth"] as? Int == 0 })
        let second = try host(db.conninfo, keyFrom: first)
        #expect(try value(second, "app/one") == "v1")
        // 2,000 versions of 100 KB for app/one (200 MB, 400 MB as hex), and
        // a row with a 2 KB name and a 10 MB kind, each a new change.
        try db.sql("""
            INSERT INTO coffer_versions (store_id, name, version, stage, key_id, salt, nonce, ciphertext, encoding, hash,
                                         created_at, created_by, generation, origin, version_id)
            SELECT store_id, name, 100 + g, NULL, key_id, salt, nonce, decode(repeat('ab', 100000), 'hex'), encoding, hash,
                   created_at, created_by, generation, origin, version_id || g
            FROM coffer_versions, generate_series(1, 2000) g WHERE name = 'app/one' AND version = 1;
            UPDATE coffer_secrets SET change_seq = nextval('coffer_change_seq') WHERE name = 'app/one';
            INSERT INTO coffer_secrets (store_id, name, kind, protection, current_version, metadata, generation, origin, mac_key_id, mac)
            SELECT store_id, repeat('n', 2000), repeat('k', 10000000), protection, current_version, metadata, generation, origin,
                   mac_key_id, mac
            FROM coffer_secrets WHERE name = 'app/two';
            NOTIFY coffer_changes;
            """)
        let audited = try waitUntil("both rows are refused") {
            second.output.components(separatedBy: "COFFER_REASON=mirror_row_refused").count - 1 >= 2
        }
        #expect(audited, "\(second.output.suffix(3000))")
        #expect(try value(second, "app/one") == "v1", "the refused row changed nothing")
        #expect(try value(second, "app/two") == "v2")
        // Never read whole: the second host's peak memory stayed far below
        // what the rows hold.
        let status = try String(contentsOfFile: "/proc/\(second.pid)/status", encoding: .utf8)
        let peak = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") }?
            .split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.flatMap { Int($0) } ?? .max
        #expect(peak < 150 * 1024, "peak RSS \(peak) KiB")
    }

    @Test func theLeastPrivilegeRoleOfTheDocsIsEnough() throws {
        guard let db = try PostgresDatabase(label: "role") else { return }
        // The owner's first start creates the tables.
        let owner = try host(db.conninfo)
        #expect(try owner.ctl(["put", "a"], stdin: "1").status == 0)
        #expect(try waitUntil("mirrored") { try mirror(owner)["queue_depth"] as? Int == 0 })
        let role = "coffer_mirror_" + db.name.suffix(8)
        try db.sql("""
            CREATE ROLE \(role) LOGIN;
            REVOKE ALL ON SCHEMA public FROM PUBLIC;
            GRANT USAGE ON SCHEMA public TO \(role);
            GRANT SELECT, INSERT, UPDATE, DELETE ON coffer_secrets, coffer_versions TO \(role);
            GRANT SELECT ON coffer_schema_migrations TO \(role);
            GRANT USAGE ON SEQUENCE coffer_change_seq TO \(role);
            """)
        let limited = try host(db.conninfo.replacingOccurrences(of: "user=postgres", with: "user=\(role)"), keyFrom: owner)
        #expect(try value(limited, "a") == "1", "restored through the limited role")
        #expect(try limited.ctl(["put", "b"], stdin: "2").status == 0)
        #expect(try waitUntil("the limited role mirrors writes") { try mirror(limited)["queue_depth"] as? Int == 0 })
        #expect(try mirror(limited)["last_error"] is NSNull)
        #expect(try waitUntil("the owner's host sees it") { try value(owner, "b") == "2" })
    }

    @Test func restoreFromPostgresThroughCofferctl() throws {
        guard let db = try PostgresDatabase(label: "restore") else { return }
        let first = try host(db.conninfo)
        for n in 0..<20 { #expect(try first.ctl(["put", "r/\(n)"], stdin: "v\(n)").status == 0) }
        #expect(try waitUntil("mirrored") { try mirror(first)["queue_depth"] as? Int == 0 })
        // A host that started without the mirror's rows (PostgreSQL was
        // elsewhere): an explicit restore.
        let directory = try TemporaryDirectory("restore")
        try FileManager.default.createDirectory(atPath: directory.path + "/dev", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: first.devPath + "/master.key", toPath: directory.path + "/dev/master.key")
        let empty = try DevDaemon(directory: directory, arguments: ["--postgres", "host=/nonexistent dbname=none"])
        #expect(try empty.ctl(["restore", "--from-postgres"]).status == 6, "no reachable database: UNAVAILABLE")
        empty.stop()
        let restored = try DevDaemon(directory: directory, arguments: ["--postgres", db.conninfo])
        #expect(try value(restored, "r/7") == "v7")
        let again = try restored.ctl(["restore", "--from-postgres"])
        #expect(again.status == 6 && again.stderr.contains("CONFLICT"), "a store that holds secrets is never replaced")
    }
}
