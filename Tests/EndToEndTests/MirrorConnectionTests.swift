import CofferTestSupport
import Foundation
import Testing

/// What the mirror will connect with: no secret in the conninfo, and a
/// server over TCP must prove itself (docs/mirror.md, docs/security.md).
@Suite struct MirrorConnectionTests {
    @Test(arguments: [
        "host=/nonexistent dbname=x sslpassword=HUNTER2-SSL",
        "host=/nonexistent dbname=x password=HUNTER2-PW",
        "postgresql:///x?host=/nonexistent&sslpassword=HUNTER2-URI",
        "postgresql://u:HUNTER2-URIPW@/x?host=/nonexistent",
    ])
    func aConninfoHoldingASecretIsAStartupRefusal(conninfo: String) throws {
        let directory = try TemporaryDirectory("conninfo")
        let result = try runCofferdExpectingRefusal(["--dev", directory.path + "/dev", "--audit", "stderr", "--postgres", conninfo])
        #expect(result.status != 0)
        #expect(result.stderr.contains("password"), "\(result.stderr)")
        #expect(!result.stderr.contains("HUNTER2") && !result.stdoutText.contains("HUNTER2"), "the secret was repeated")
    }

    @Test func overTCPAServerWithoutTLSIsRefusedUnlessTheOperatorSaysOtherwise() throws {
        guard let (server, port) = try PrivatePostgres.onAFreePort() else { return }
        withExtendedLifetime(server) {}
        let tcp = "host=127.0.0.1 port=\(port) user=postgres dbname=postgres"

        // No sslmode: verify-full, which a server without TLS cannot meet;
        // writes wait in the outbox, nothing went over the wire in clear.
        let strict = try DevDaemon(arguments: ["--postgres", tcp])
        #expect(try strict.ctl(["put", "k"], stdin: "v").status == 0)
        let refused = try waitUntil("the mirror says why it cannot connect") { strict.output.contains("SSL") }
        #expect(refused, "\(strict.output.suffix(2000))")
        let status = try LineClient(socketPath: strict.adminSocket).call(#"{"op":"status"}"#)["mirror"] as? [String: Any]
        #expect(status?["connected"] as? Bool == false)

        // The operator's own choice stands.
        let lax = try DevDaemon(arguments: ["--postgres", tcp + " sslmode=disable"])
        #expect(try lax.ctl(["put", "k"], stdin: "v").status == 0)
        let connected = try waitUntil("the mirror connects when sslmode is given") {
            try LineClient(socketPath: lax.adminSocket).call(#"{"op":"status"}"#)["mirror"].flatMap { $0 as? [String: Any] }?["connected"] as? Bool == true
        }
        #expect(connected)
        withExtendedLifetime(server) {}
    }
}
