import CofferTestSupport
import Keyring
import LockedMemory
import Model
import Seal
import Testing

/// Record keys kept with their master key (DerivedKeys): derived once per
/// record, never more than the capacity, wiped with the key.
@Suite struct RecordKeyCacheTests {
    struct NotKept: Error {}

    let sealer = RecordSealer()
    let identity = RecordIdentity(storeID: Vectors.storeID, name: "db/password", version: 1, protection: "sealed")

    @Test func aRecordOpenedAgainIsNotDerivedAgainAndOpensTheSame() throws {
        let key = try TestKeys.master(first: 3)
        let keyring = Keyring(current: key)
        let record = try Array("v".utf8).withUnsafeBytes { try sealer.seal($0, for: identity, with: key) }
        #expect(key.recordKeys.count == 0, "sealing keeps nothing: its salt is never seen again")
        for _ in 0..<3 {
            #expect(try sealer.open(record, for: identity, keyring: keyring).withUnsafeBytes { Array($0) } == Array("v".utf8))
        }
        #expect(key.recordKeys.count == 1)
        // The kept key is the one HKDF gives.
        let kept = try key.recordKeys.key(for: record.salt) { throw NotKept() }
        let fresh = try sealer.deriveRecordKey(master: key, salt: record.salt)
        #expect(kept.withUnsafeBytes { Array($0) } == fresh.withUnsafeBytes { Array($0) })
    }

    @Test func noMoreThanTheCapacityIsKept() throws {
        let keys = DerivedKeys()
        for i in 0..<(DerivedKeys.capacity + 500) {
            let salt = (0..<32).map { UInt8(truncatingIfNeeded: i >> ($0 % 4 * 8)) }
            _ = try keys.key(for: salt) { try LockedBytes(count: 32) }
        }
        #expect(keys.count <= DerivedKeys.capacity)
    }

    @Test func sealingWipesTheKeptKeysWithTheMasterKey() throws {
        let key = try TestKeys.master(first: 4)
        let keyring = Keyring(current: key)
        let record = try Array("v".utf8).withUnsafeBytes { try sealer.seal($0, for: identity, with: key) }
        _ = try sealer.open(record, for: identity, keyring: keyring)
        let held = try key.recordKeys.key(for: record.salt) { throw NotKept() }
        #expect(held.withUnsafeBytes { $0.contains { $0 != 0 } })
        keyring.seal()
        #expect(key.recordKeys.count == 0)
        #expect(held.withUnsafeBytes { $0.allSatisfy { $0 == 0 } }, "a key a reader still held is wiped too")
        #expect(key.bytes.withUnsafeBytes { $0.allSatisfy { $0 == 0 } })
    }
}
