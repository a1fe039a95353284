@testable import FileStore
import Model
import Testing

/// Layered secrets must behave exactly as one dictionary of secrets would,
/// across many commits and the packings of a full layer.
@Suite struct LayeredSecretsTests {
    typealias Fixture = PackedSecretsTests

    func name(_ i: Int) throws -> SecretName { try SecretName("app/s\(String(i, radix: 10))") }

    func secret(_ i: Int, version: Int) throws -> Secret {
        try Fixture.plain("app/s\(i)", versions: version)
    }

    @Test func manyCommitsMatchADictionaryThroughEveryPacking() throws {
        var dictionary: [SecretName: Secret] = [:]
        for i in 0..<200 { dictionary[try name(i)] = try secret(i, version: 1) }
        var layered = LayeredSecrets(dictionary)
        var generator = SplitMix(seed: 42)
        var packings = 0
        for step in 0..<600 {
            var changes: [SecretName: Secret?] = [:]
            for _ in 0..<(1 + Int(generator.next() % 3)) {
                let i = Int(generator.next() % 260)
                if generator.next() % 4 == 0 {
                    changes[try name(i)] = .some(nil)
                    dictionary[try name(i)] = nil
                } else {
                    let s = try secret(i, version: 1 + Int(generator.next() % 3))
                    changes[s.name] = .some(s)
                    dictionary[s.name] = s
                }
            }
            let before = layered
            layered = layered.applying(changes)
            if !layered.base.isSameStorage(as: before.base) { packings += 1 }
            #expect(layered.layer.count <= LayeredSecrets.layerLimit(baseCount: layered.base.count))
            if step % 50 == 0 || step == 599 {
                #expect(layered.count == dictionary.count)
                #expect(layered.names == dictionary.keys.sorted())
                #expect(Array(layered) == dictionary.keys.sorted().map { dictionary[$0]! })
                for i in 0..<260 {
                    #expect(layered[try name(i)] == dictionary[try name(i)])
                    #expect(layered.contains(try name(i)) == (dictionary[try name(i)] != nil))
                }
                #expect(layered == LayeredSecrets(dictionary), "equal to the same secrets packed afresh")
                #expect(layered.packed().base == PackedSecrets(dictionary))
            }
        }
        #expect(packings > 2, "the layer was packed into a new base along the way (\(packings))")
    }

    @Test func aLayerHoldsOnlyWhatDiffersFromTheBase() throws {
        let one = try secret(1, version: 1)
        let base = LayeredSecrets([one.name: one])
        let changed = try secret(1, version: 2)
        let layered = base.applying([one.name: changed])
        #expect(layered.layer.count == 1)
        #expect(layered.applying([one.name: one]).layer.isEmpty, "set back to the base's")
        let added = try secret(2, version: 1)
        let withAdded = base.applying([added.name: added])
        #expect(withAdded.applying([added.name: nil]).layer.isEmpty, "added then removed")
        #expect(base.applying([try name(9): nil]).layer.isEmpty, "removing what was never there")
        #expect(base.applying([one.name: nil]).count == 0)
    }

    @Test func secretsNotHeldAreTheNewAndChangedOnesOnEitherSide() throws {
        var dictionary: [SecretName: Secret] = [:]
        for i in 0..<100 { dictionary[try name(i)] = try secret(i, version: 1) }
        let old = LayeredSecrets(dictionary).applying([try name(5): try secret(5, version: 2)])
        let changed = try secret(7, version: 3), added = try secret(300, version: 1)
        // Same base: only the layers are compared.
        let new = old.applying([changed.name: changed, added.name: added, try name(9): nil])
        #expect(new.base.isSameStorage(as: old.base))
        #expect(new.secretsNotHeld(in: old).map { $0.name } == [added.name, changed.name].sorted())
        #expect(old.secretsNotHeld(in: new).map { $0.name } == [try name(7), try name(9)])
        // Another base (packed), same answers.
        let repacked = new.packed()
        #expect(!repacked.base.isSameStorage(as: old.base))
        #expect(repacked.secretsNotHeld(in: old).map { $0.name } == [added.name, changed.name].sorted())
        #expect(old.secretsNotHeld(in: repacked).map { $0.name } == [try name(7), try name(9)])
        #expect(old.packed().secretsNotHeld(in: new).map { $0.name } == [try name(7), try name(9)])
        #expect(new.secretsNotHeld(in: repacked).isEmpty && repacked == new)
    }

    @Test func totalsCountTheLayer() throws {
        let secrets = try Fixture.variety()
        let layered = LayeredSecrets(Fixture.dictionary(secrets))
        let bigger = try Fixture.plain("a", versions: 4)
        let next = layered.applying([bigger.name: bigger, secrets[1].name: nil])
        #expect(next.totals.versions == layered.totals.versions + 3 - secrets[1].versions.count)
        #expect(next.totals.hashed == layered.totals.hashed - 1)
        #expect(next.totals == next.packed().totals)
    }
}

/// A small deterministic generator (SplitMix64), so a failure repeats.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
