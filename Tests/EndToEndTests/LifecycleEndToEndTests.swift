import CofferTestSupport
import Foundation
import Testing

/// The lifecycle through cofferctl against a real daemon: the commands an
/// operator types, and what never shows up in cofferd's output.
@Suite struct LifecycleEndToEndTests {
    @Test func rotatePendingPromoteRollbackAndHistory() throws {
        let daemon = try DevDaemon()
        let one = uniqueValue("one"), two = uniqueValue("two"), three = uniqueValue("three")
        #expect(try daemon.ctl(["put", "db/pw"], stdin: one).status == 0)
        #expect(try daemon.ctl(["rotate", "db/pw", "--grace", "1h"], stdin: two).status == 0)
        #expect(try daemon.ctl(["get", "db/pw"]).stdoutText == two)
        #expect(try daemon.ctl(["verify", "db/pw"], stdin: one).status == 0, "previous, within the grace period")
        let staged = try daemon.ctl(["rotate", "db/pw", "--pending"], stdin: three)
        #expect(staged.status == 0 && staged.stderr.contains("pending"))
        #expect(try daemon.ctl(["get", "db/pw"]).stdoutText == two)
        #expect(try daemon.ctl(["get", "db/pw", "--stage", "pending"]).stdoutText == three)
        #expect(try daemon.ctl(["promote", "db/pw"]).status == 0)
        #expect(try daemon.ctl(["get", "db/pw"]).stdoutText == three)
        #expect(try daemon.ctl(["rollback", "db/pw"]).status == 0)
        #expect(try daemon.ctl(["get", "db/pw"]).stdoutText == two)
        let history = try daemon.ctl(["history", "db/pw"])
        #expect(history.status == 0)
        #expect(history.stdoutText.contains("current") && history.stdoutText.contains("previous"))
        for value in [one, two, three] {
            #expect(!history.stdoutText.contains(value))
            #expect(!daemon.output.contains(value), "cofferd's log and audit never hold a value")
        }
    }

    @Test func aTokenIsPrintedOnceAndOnlyVerifiedAfter() throws {
        let daemon = try DevDaemon()
        let created = try daemon.ctl(["token-create", "tokens/ci", "--prefix", "ci", "--operation", "deploy", "--expires", "+1d"])
        #expect(created.status == 0, "\(created.stderr)")
        let token = created.stdoutText.trimmingCharacters(in: .newlines)
        #expect(token.wholeMatch(of: /ci_[0-9a-f]{64}/) != nil, "\(token)")
        let get = try daemon.ctl(["get", "tokens/ci"])
        #expect(get.status == 6 && get.stderr.contains("CONFLICT") && !get.stdoutText.contains(token))
        #expect(try daemon.ctl(["verify", "tokens/ci", "--operation", "deploy"], stdin: token).status == 0)
        #expect(try daemon.ctl(["verify", "tokens/ci", "--operation", "admin"], stdin: token).status == 1)
        #expect(!daemon.output.contains(String(token.dropFirst(3))))
        let files = allFileContents(under: daemon.devPath)
        #expect(!files.contains { $0.1.range(of: Data(token.utf8)) != nil }, "no file holds the token")
    }

    @Test func anExpiredSecretAnswersExpired() throws {
        let daemon = try DevDaemon()
        #expect(try daemon.ctl(["put", "short", "--expires", String(Int(Date().timeIntervalSince1970) - 5)], stdin: "v").status == 0)
        let refused = try daemon.ctl(["get", "short"])
        #expect(refused.status == 6 && refused.stderr.contains("EXPIRED"))
        #expect(daemon.output.contains("COFFER_REASON=EXPIRED"))
        #expect(try daemon.ctl(["rotate", "short", "--expires", "never"], stdin: "w").status == 0)
        #expect(try daemon.ctl(["get", "short"]).stdoutText == "w")
    }
}
