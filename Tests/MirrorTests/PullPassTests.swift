import Model
import Testing

@testable import Mirror

/// A pull pass decided without a database: what is taken, what is
/// reported, and when the read position moves.
@Suite struct PullPassTests {
    let a = try! SecretName("app/a"), b = try! SecretName("app/b"), c = try! SecretName("app/c")

    func change(_ name: SecretName, by origin: String, at sequence: Int64) -> MirrorReader.Change {
        MirrorReader.Change(name: name, secret: nil, origin: origin, sequence: sequence)
    }

    @Test func otherHostsNewerChangesAreTakenAndOurOwnAreNot() throws {
        let pass = PullPass(origin: "me", after: 10)
        var marks = ChangeMarks(floor: 10)
        marks.note(c, at: 30)
        let page = MirrorReader.Page(
            changes: [change(a, by: "other", at: 11), change(b, by: "me", at: 12), change(c, by: "other", at: 13)],
            refused: ["app/broken"], lastSequence: 14)
        let step = try #require(pass.received(page, marks: marks))
        #expect(step.take.map(\.name) == [a], "b is our own write; c is older than the change of it we hold")
        #expect(step.tampered == ["app/broken", "app/c"])
        #expect(step.through == 14)
    }

    @Test func thePositionMovesOnlyOnceAPageIsApplied() throws {
        var pass = PullPass(origin: "me", after: 10)
        var marks = ChangeMarks(floor: 10)
        let page = MirrorReader.Page(changes: [change(a, by: "other", at: 12)], lastSequence: 12)
        let step = try #require(pass.received(page, marks: marks))
        #expect(pass.sequence == 10, "a commit that fails leaves the page to be read again")
        #expect(marks.judge(a, at: 12, checkingFloor: false) == .newer, "not held before it is in the store")
        pass.applied(step, marks: &marks)
        #expect(pass.sequence == 12)
        #expect(marks.floor == 12)
        #expect(marks.judge(a, at: 12, checkingFloor: false) == .held)
        #expect(pass.received(MirrorReader.Page(changes: [], lastSequence: 12), marks: marks) == nil, "nothing past the position: done")
    }

    @Test func thePassEndsOnAPageWithNothingNew() {
        let pass = PullPass(origin: "me", after: 50)
        #expect(pass.received(MirrorReader.Page(changes: [], lastSequence: 0), marks: ChangeMarks(floor: 50)) == nil)
    }
}
