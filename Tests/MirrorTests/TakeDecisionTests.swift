import Model
import Testing

@testable import Mirror

/// Taking another host's change of one name, decided without a database
/// or a store (TakeDecision).
@Suite struct TakeDecisionTests {
    let name = try! SecretName("app/k")

    func secret(_ kind: String) -> Secret {
        Secret(name: name, kind: try! SecretKind(kind), protection: .sealed, versions: [])
    }

    @Test func theirsIsTakenUnlessOursWaitsToBePushed() {
        let ours = secret("mine"), theirs = secret("theirs")
        #expect(TakeDecision.decide(theirs: theirs, ours: ours, oursPending: false) == .take)
        #expect(TakeDecision.decide(theirs: nil, ours: ours, oursPending: false) == .take, "their deletion is taken too")
        #expect(TakeDecision.decide(theirs: theirs, ours: nil, oursPending: false) == .take)
        #expect(TakeDecision.decide(theirs: theirs, ours: theirs, oursPending: false) == .nothing)
        #expect(TakeDecision.decide(theirs: nil, ours: nil, oursPending: true) == .nothing)
    }

    @Test func twoWritesMergeAndADeletionOnEitherSideKeepsOurs() {
        let ours = secret("mine"), theirs = secret("theirs")
        #expect(TakeDecision.decide(theirs: theirs, ours: ours, oursPending: true) == .merge)
        #expect(TakeDecision.decide(theirs: nil, ours: ours, oursPending: true) == .keepOurs, "our write outlives their deletion")
        #expect(TakeDecision.decide(theirs: theirs, ours: nil, oursPending: true) == .keepOurs, "our deletion is pushed next")
    }
}
