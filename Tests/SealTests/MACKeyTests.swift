import CofferTestSupport
import Model
import Seal
import Testing

/// HMAC-SHA256 under HKDF-derived keys (RecordSealer.mac). The expected
/// values were computed independently with Python's hmac and hashlib
/// (HKDF-SHA256 with an empty salt, RFC 5869) over the test master key.
@Suite struct MACKeyTests {
    let sealer = RecordSealer()
    static let message = Array("what do ya want for nothing?".utf8)
    static let long = (0..<200_000).map { UInt8($0 % 251) }

    @Test func knownAnswers() throws {
        let key = try TestKeys.master()
        let store = try sealer.mac(with: key, for: .storeFile)
        let chain = try sealer.mac(with: key, for: .auditChain)
        #expect(Hex.encode(store(Self.message)) == "3cad73839882200d475c915e457bad9204a9227d16ce868462d24c58194ed819")
        #expect(Hex.encode(chain(Self.message)) == "6a555d509e2b292e859c6ea2e98b165385d20916da8d12919faf3ef7fbb24470")
        #expect(Hex.encode(store(Self.long)) == "ca4c790cfff2de7663fd8b45122a6b77b6f832178c9ec20858418993c920870d")
    }

    /// Fed in pieces of any size (empty ones too), the MAC is the MAC of
    /// the whole; and a context reused after a use starts clean.
    @Test(arguments: [1, 63, 64, 65, 4096, 65_536])
    func piecesMakeTheSameMAC(piece: Int) throws {
        let key = try sealer.mac(with: TestKeys.master(), for: .storeFile)
        let whole = key(Self.long)
        let pieced = key.authenticate { input in
            var start = 0
            while start < Self.long.count {
                let end = min(start + piece, Self.long.count)
                input.update(Array(Self.long[start..<end]))
                input.update([])
                start = end
            }
        }
        #expect(pieced == whole)
        #expect(Hex.encode(key(Self.long)) == "ca4c790cfff2de7663fd8b45122a6b77b6f832178c9ec20858418993c920870d")
    }

    /// Keys used from many threads at once each get their own context.
    @Test func concurrentUsesAgree() async throws {
        let key = try sealer.mac(with: TestKeys.master(), for: .auditChain)
        let results = await withTaskGroup(of: [UInt8].self) { group in
            for _ in 0..<32 { group.addTask { key(Self.message) } }
            return await group.reduce(into: [[UInt8]]()) { $0.append($1) }
        }
        #expect(results.count == 32)
        #expect(Set(results.map(Hex.encode)) == ["6a555d509e2b292e859c6ea2e98b165385d20916da8d12919faf3ef7fbb24470"])
    }

    /// A key outlives the sealer that made it (the daemon keeps the audit
    /// chain's key for its whole life).
    @Test func aKeyOutlivesItsSealer() throws {
        let key = try RecordSealer().mac(with: TestKeys.master(), for: .storeFile)
        #expect(Hex.encode(key(Self.message)) == "3cad73839882200d475c915e457bad9204a9227d16ce868462d24c58194ed819")
    }
}
