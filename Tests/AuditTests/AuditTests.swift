@testable import Audit
import Model
import Testing

@Suite struct AuditEventTests {
    let peer = PeerIdentity(uid: 1000, gid: 100, pid: 4242)

    @Test func carriesTheDesignsFields() {
        let event = AuditEvent(kind: .get, result: .ok, operation: .get, secret: "db/password", version: 3,
                               peer: peer, listener: .service, requestID: "r-1")
        let fields = Dictionary(event.fields, uniquingKeysWith: { a, _ in a })
        #expect(fields["SYSLOG_IDENTIFIER"] == "cofferd")
        #expect(fields["MESSAGE_ID"] == AuditEventKind.get.messageID)
        #expect(fields["COFFER_EVENT"] == "get")
        #expect(fields["COFFER_SECRET"] == "db/password")
        #expect(fields["COFFER_VERSION"] == "3")
        #expect(fields["COFFER_RESULT"] == "ok")
        #expect(fields["COFFER_PEER_UID"] == "1000")
        #expect(fields["COFFER_PEER_GID"] == "100")
        #expect(fields["COFFER_PEER_PID"] == "4242")
        #expect(fields["COFFER_REQUEST_ID"] == "r-1")
        #expect(fields["PRIORITY"] == "6")
    }

    @Test func priorityFollowsTheOutcome() {
        #expect(AuditEvent(kind: .denied, result: .denied).priority == 4)
        #expect(AuditEvent(kind: .get, result: .error).priority == 3)
        #expect(AuditEvent(kind: .get, result: .notFound).priority == 6)
    }

    @Test func messageIDsAreDistinct128BitHex() {
        let ids = AuditEventKind.allCases.map(\.messageID)
        #expect(Set(ids).count == ids.count)
        #expect(ids.allSatisfy { $0.count == 32 && $0.allSatisfy(\.isHexDigit) })
    }

    @Test func journalReachabilityIsCheckedNotAssumed() {
        #expect(!JournalAuditSink.isReachable(socketPath: "/nonexistent/journal/socket"))
    }

    @Test func stderrQuotingKeepsOneEventPerLine() {
        #expect(StderrAuditSink.quoted("plain") == "plain")
        #expect(StderrAuditSink.quoted("two words") == "\"two words\"")
        #expect(!StderrAuditSink.quoted("a\nb").contains("\n"))
    }
}
