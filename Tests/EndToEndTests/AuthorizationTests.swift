import CofferTestSupport
import Foundation
import Testing

/// Who may run which operation, on the live daemon, by real other uids on
/// the admin socket: a grant scoped to some names reaches those names and
/// never a whole-store operation (docs/policy.md, docs/security.md).
@Suite(.serialized) struct AuthorizationEndToEndTests {
    static let scoped: UInt32 = 65534, everyName: UInt32 = 65533, anOperator: UInt32 = 65532, another: UInt32 = 65531
    static let policy = """
        allow all on team-a/** to uid:\(scoped)
        allow all on ** to uid:\(everyName)
        operator uid:\(anOperator)
        """

    /// Every whole-store operation as a request the policy gets to decide
    /// (its members are valid).
    static let wholeStore = [
        #"{"id":"export","op":"export"}"#,
        #"{"id":"export-plaintext","op":"export","plaintext":true}"#,
        #"{"id":"status","op":"status"}"#,
        #"{"id":"audit","op":"audit","limit":5}"#,
        #"{"id":"reload","op":"reload"}"#,
        #"{"id":"restore","op":"restore","from":"postgres"}"#,
        #"{"id":"rotate-master-key","op":"rotate-master-key"}"#,
        #"{"id":"unseal","op":"unseal"}"#,
        #"{"id":"seal","op":"seal"}"#,
    ]

    func daemon() throws -> (DevDaemon, a: String, b: String) {
        let daemon = try DevDaemon.with(policy: Self.policy)
        // Reachable by everyone, so that the policy, not the file mode, is
        // what decides (as admin_socket_group makes it for a group).
        chmod(daemon.adminSocket, 0o666)
        let a = uniqueValue("team-a"), b = uniqueValue("team-b")
        #expect(try daemon.ctl(["put", "team-a/db"], stdin: a).status == 0)
        #expect(try daemon.ctl(["put", "team-b/db"], stdin: b).status == 0)
        return (daemon, a, b)
    }

    @Test func aScopedGrantReachesItsNamesAndNoWholeStoreOperation() throws {
        guard try requireRoot() else { return }
        let (daemon, a, b) = try daemon()
        let client = OtherUserClient(uid: Self.scoped, gid: Self.scoped)
        let named = try client.call(daemon.adminSocket, [
            #"{"id":1,"op":"get","name":"team-a/db"}"#,
            #"{"id":2,"op":"put","name":"team-a/new","value":"x"}"#,
            #"{"id":3,"op":"get","name":"team-b/db"}"#,
            #"{"id":4,"op":"history","name":"team-b/db"}"#,
            #"{"id":5,"op":"list"}"#,
        ])
        #expect(named[0]["value"] as? String == a)
        #expect(named[1]["ok"] as? Bool == true)
        #expect(errorCode(named[2]) == "DENIED")
        #expect(errorCode(named[3]) == "DENIED")
        #expect(listedNames(named[4]).allSatisfy { $0.hasPrefix("team-a/") })

        let answers = try client.call(daemon.adminSocket, Self.wholeStore)
        for (request, answer) in zip(Self.wholeStore, answers) {
            #expect(errorCode(answer) == "DENIED", "\(request) was not denied: \(answer)")
        }
        #expect(!String(describing: answers).contains(b))
        // Still in service for everyone: the seal above was refused.
        #expect(try daemon.ctl(["get", "team-b/db"]).stdoutText == b)
        #expect(daemon.output.contains("COFFER_OPERATION=seal"))
    }

    @Test func aGrantOnEveryNameAnOperatorAndRootHaveTheWholeStore() throws {
        guard try requireRoot() else { return }
        let (daemon, a, b) = try daemon()
        for uid in [Self.everyName, Self.anOperator, 0] {
            let answers = try OtherUserClient(uid: uid, gid: uid).call(daemon.adminSocket, [
                #"{"id":"status","op":"status"}"#,
                #"{"id":"export","op":"export","plaintext":true}"#,
                #"{"id":"seal","op":"seal"}"#,
                #"{"id":"unseal","op":"unseal"}"#,
            ])
            for answer in answers {
                #expect(answer["ok"] as? Bool == true, "uid \(uid): \(answer)")
            }
            let exported = (answers[1]["secrets"] as? [[String: Any]] ?? []).compactMap { $0["value"] as? String }
            #expect(Set(exported).isSuperset(of: [a, b]), "uid \(uid) exports the whole store")
        }
        // Anyone else is turned away at the door.
        let refused = try OtherUserClient(uid: Self.another, gid: Self.another).call(daemon.adminSocket, [#"{"id":1,"op":"status"}"#])
        #expect(errorCode(refused[0]) == "DENIED")
    }
}
