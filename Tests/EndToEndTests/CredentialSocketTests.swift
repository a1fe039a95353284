import CofferTestSupport
import Foundation
import Testing

/// credentials.sock as systemd's LoadCredential= uses it: the client binds
/// the abstract name `\0RANDOM/unit/UNIT/ID`, connects and reads to EOF,
/// from inside the unit's cgroup, as root (as systemd does).
@Suite(.serialized) struct CredentialSocketTests {
    static let web = "coffer-e2e-cred-web.service", mail = "coffer-e2e-cred-mail.service"

    static let script = """
        import os, socket, sys
        s = socket.socket(socket.AF_UNIX)
        s.bind(b'\\0' + os.urandom(8).hex().encode() + b'/unit/' + sys.argv[2].encode() + b'/' + sys.argv[3].encode())
        s.connect(sys.argv[1])
        data = b''
        while True:
            chunk = s.recv(65536)
            if not chunk: break
            data += chunk
        sys.stdout.buffer.write(data)
        """

    /// What a LoadCredential= for `unit` and `id` would receive; run as
    /// `uid` (systemd is root), from inside the cgroup of `runningIn`
    /// (the unit itself unless told otherwise; nil: no unit's cgroup).
    func load(_ daemon: DevDaemon, unit: String, id: String, uid: UInt32 = 0, runningIn: String?? = .none) throws -> Data {
        let python = ["/usr/bin/python3", "-c", Self.script, daemon.devPath + "/run/credentials.sock", unit, id]
        let command = uid == 0 ? python : ["/usr/bin/setpriv", "--reuid=\(uid)", "--regid=\(uid)", "--clear-groups"] + python
        let result: ProgramResult
        if let cgroupUnit = runningIn ?? unit {
            let cgroup = try #require(try CgroupUnit(unit: cgroupUnit))
            let join = "echo $$ > '\(cgroup.path)/cgroup.procs' && exec \"$@\""
            result = try runProgram("/bin/sh", ["-c", join, "sh"] + command)
        } else {
            result = try runProgram(command[0], Array(command.dropFirst()))
        }
        try #require(result.status == 0, "\(result.stderr)")
        return result.stdout
    }

    func daemon(policy: String) throws -> DevDaemon {
        try DevDaemon.with(policy: policy)
    }

    @Test func anAllowedUnitReceivesTheRawValue() throws {
        guard try requireRoot() else { return }
        let daemon = try daemon(policy: """
            credential \(Self.web) db-password app/db/password
            allow get on tls-key to unit:\(Self.web)
            """)
        let password = uniqueValue("db")
        let key = uniqueValue("tls")
        _ = try daemon.ctl(["put", "app/db/password"], stdin: password)
        _ = try daemon.ctl(["put", "tls-key"], stdin: key)

        #expect(String(decoding: try load(daemon, unit: Self.web, id: "db-password"), as: UTF8.self) == password)
        // No mapping: the id is the secret's name, granted by a rule.
        #expect(String(decoding: try load(daemon, unit: Self.web, id: "tls-key"), as: UTF8.self) == key)
        #expect(daemon.output.contains("COFFER_LISTENER=credentials"))
        #expect(daemon.output.contains("COFFER_PEER_UNIT=\(Self.web)"))
    }

    @Test func anotherUnitOrANonRootPeerGetsNothing() throws {
        guard try requireRoot() else { return }
        let daemon = try daemon(policy: "credential \(Self.web) db-password app/db/password\n")
        _ = try daemon.ctl(["put", "app/db/password"], stdin: uniqueValue("db"))

        #expect(try load(daemon, unit: Self.mail, id: "db-password").isEmpty)
        #expect(try load(daemon, unit: Self.web, id: "app").isEmpty)
        // Anyone can bind any abstract name: only root's is believed.
        #expect(try load(daemon, unit: Self.web, id: "db-password", uid: 65534).isEmpty)
        #expect(daemon.output.contains("COFFER_REASON=unit_not_trusted"))
        #expect(daemon.output.contains("COFFER_REASON=no_grant"))
    }

    @Test func aSecretScopedToCredentialsIsNotServedOnTheServiceSocket() throws {
        guard try requireRoot() else { return }
        let daemon = try daemon(policy: """
            credential \(Self.web) db-password app/db/password
            allow get on app/** to uid:65534
            """)
        let password = uniqueValue("scoped")
        _ = try daemon.ctl(["put", "app/db/password", "--socket-scope", "credentials"], stdin: password)
        #expect(String(decoding: try load(daemon, unit: Self.web, id: "db-password"), as: UTF8.self) == password)
        let answers = try OtherUserClient().call(daemon.serviceSocket, [#"{"id":1,"op":"get","name":"app/db/password"}"#])
        #expect(errorCode(answers[0]) == "DENIED")
        // Whoever asks: root on coffer.sock too (a container sharing the
        // host's uids asks as 0).
        let scopeDenials = { daemon.output.components(separatedBy: "COFFER_REASON=outside_secret_scope").count - 1 }
        let before = scopeDenials()
        let asRoot = try OtherUserClient(uid: 0, gid: 0).call(daemon.serviceSocket, [#"{"id":1,"op":"get","name":"app/db/password"}"#])
        #expect(errorCode(asRoot[0]) == "DENIED")
        #expect(scopeDenials() == before + 1, "denied for the secret's scope")
    }

    @Test func aRootProcessOutsideTheUnitGetsNothing() throws {
        guard try requireRoot() else { return }
        let daemon = try daemon(policy: "credential \(Self.web) db-password app/db/password\n")
        let password = uniqueValue("db")
        _ = try daemon.ctl(["put", "app/db/password"], stdin: password)
        #expect(String(decoding: try load(daemon, unit: Self.web, id: "db-password"), as: UTF8.self) == password)

        // Root, naming web.service, but not running in it: in no unit, or
        // in another unit's cgroup.
        #expect(try load(daemon, unit: Self.web, id: "db-password", runningIn: .some(nil)).isEmpty)
        #expect(try load(daemon, unit: Self.web, id: "db-password", runningIn: Self.mail).isEmpty)
        let refusals = daemon.output.split(separator: "\n").filter { $0.contains("COFFER_REASON=peer_outside_unit") }
        #expect(refusals.count == 2)
        #expect(refusals.allSatisfy { $0.contains("COFFER_SECRET=app/db/password") })
        #expect(refusals.contains { $0.contains("COFFER_PEER_UNIT=\(Self.mail)") })
    }
}
