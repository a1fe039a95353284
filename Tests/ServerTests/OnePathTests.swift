import Audit
import CofferTestSupport
import FileStore
import Foundation
import LockedMemory
import Model
import Testing

@testable import Server

/// A request takes one path: the dispatcher resolves the snapshot once, the
/// policy and the handler read that same snapshot, authorization happens
/// in the dispatcher only, and credentials.sock goes through the same
/// decision, lookup and audit as a get on coffer.sock.
@Suite struct OnePathTests {
    func transient(_ text: String) -> TransientBytes {
        Array(text.utf8).withUnsafeBytes { TransientBytes(copying: $0) }
    }

    /// A commit that lands between the decision and the answer does not
    /// change what the request is answered from.
    @Test func theHandlerAnswersFromTheSnapshotThePolicyDecidedOn() async throws {
        let h = try Harness()
        #expect(try await h.call(#"{"id":1,"op":"put","name":"db/pw","value":"one"}"#)["ok"] as? Bool == true)
        let step = h.dispatcher.begin(line: transient(#"{"id":2,"op":"verify","name":"db/pw","value":"one"}"#),
                                      peer: Harness.owner, listener: .admin)
        guard case .awaiting(let work) = step else {
            Issue.record("verify waits for its answer")
            return
        }
        #expect(try await h.call(#"{"id":3,"op":"rotate","name":"db/pw","value":"two"}"#)["ok"] as? Bool == true)
        let answer = await h.dispatcher.complete(work)
        let text = String(decoding: answer.encoded().bytes, as: UTF8.self)
        #expect(text.contains(#""match":true"#), "answered from the decided snapshot: \(text)")
        // A request begun now sees the rotation.
        let now = try await h.call(#"{"id":4,"op":"verify","name":"db/pw","value":"one"}"#)
        #expect(now["match"] as? Bool == false)
    }

    /// Setting a secret's principals is decided before the handler runs:
    /// audited as a denial, and nothing is written.
    @Test func onlyOperatorsSetAccessAndTheDispatcherSaysSo() async throws {
        let writer = PeerIdentity(uid: 1002, gid: 1002, pid: 12)
        let policy = AccessPolicy(superusers: [Harness.owner.uid], rules: [
            .init(operations: [.put], names: [NamePattern("app/**")], principals: [.uid(writer.uid)]),
        ])
        let h = try Harness(policy: policy)
        let generation = h.services.store.snapshot.generation
        #expect(try await h.errorCode(#"{"id":1,"op":"put","name":"app/x","value":"v","principals":["uid:1002"]}"#,
                                      as: writer, on: .admin) == "DENIED")
        #expect(h.services.store.snapshot.generation == generation)
        let denial = try #require(h.audit.all.last)
        #expect(denial.kind == .denied && denial.reason == DenialReason.notAnOperator.rawValue && denial.secret == "app/x")
        // The same put without principals is the writer's to make.
        #expect(try await h.call(#"{"id":2,"op":"put","name":"app/x","value":"v"}"#, as: writer, on: .admin)["ok"] as? Bool == true)
    }

    /// credentials.sock and coffer.sock refuse a verify-only or missing
    /// secret with the same reasons, and reveal only with a receipt.
    @Test func credentialsShareTheGetPathAndItsVocabulary() async throws {
        let unit = PeerIdentity(uid: 0, gid: 0, pid: 20, groups: [4], unit: "web.service")
        let policy = AccessPolicy(superusers: [Harness.owner.uid], credentials: [
            .init(unit: NamePattern("web.service"), id: "db", name: try SecretName("app/db")),
            .init(unit: NamePattern("web.service"), id: "token", name: try SecretName("app/token")),
            .init(unit: NamePattern("web.service"), id: "gone", name: try SecretName("app/gone")),
        ])
        let h = try Harness(policy: policy)
        #expect(try await h.call(#"{"id":1,"op":"put","name":"app/db","value":"s3cret"}"#)["ok"] as? Bool == true)
        #expect(try await h.call(#"{"id":2,"op":"put","name":"app/token","value":"t0ken","protection":"hashed","hash":"hmac-sha256"}"#)["ok"] as? Bool == true)

        let served = h.dispatcher.credential(peer: unit, address: ("web.service", "db"))
        let value = try #require(served.revealedValue())
        #expect(value.withUnsafeBytes { Array($0) } == Array("s3cret".utf8))
        let event = try #require(h.audit.all.last)
        #expect(event.kind == .get && event.result == .ok && event.secret == "app/db" && event.listener == .credentials)
        #expect(event.peer?.groups.isEmpty == true, "the grant is the unit's, not root's groups'")

        for (id, code) in [("token", "CONFLICT"), ("gone", "NOT_FOUND")] {
            let refused = h.dispatcher.credential(peer: unit, address: ("web.service", id))
            #expect(refused.revealedValue() == nil)
            #expect(refused.error?.code.wireName == code)
            #expect(h.audit.all.last?.reason == code, "credentials.sock says \(code) as coffer.sock does")
            let name = "app/\(id)"
            #expect(try await h.errorCode(#"{"id":3,"op":"get","name":"\#(name)"}"#) == code)
            #expect(h.audit.all.last?.reason == code)
        }

        // The journal unreachable: nothing is revealed.
        h.audit.failing.withLock { $0 = true }
        #expect(h.dispatcher.credential(peer: unit, address: ("web.service", "db")).revealedValue() == nil)
    }
}
