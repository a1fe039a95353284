import CofferTestSupport
import Dispatch
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
    static let storeMessage = "3cad73839882200d475c915e457bad9204a9227d16ce868462d24c58194ed819"
    static let storeLong = "ca4c790cfff2de7663fd8b45122a6b77b6f832178c9ec20858418993c920870d"
    static let chainMessage = "6a555d509e2b292e859c6ea2e98b165385d20916da8d12919faf3ef7fbb24470"
    static let chainLong = "69b02b71148db817e0e640bae03d614bd60dd3e4a030d2ea231474e40d31bfa7"

    @Test func knownAnswers() throws {
        let key = try TestKeys.master()
        let store = try sealer.mac(with: key, for: .storeFile)
        let chain = try sealer.mac(with: key, for: .auditChain)
        #expect(Hex.encode(try store(Self.message)) == Self.storeMessage)
        #expect(Hex.encode(try chain(Self.message)) == Self.chainMessage)
        #expect(Hex.encode(try store(Self.long)) == Self.storeLong)
        #expect(Hex.encode(try chain(Self.long)) == Self.chainLong)
    }

    /// Fed in pieces of any size (empty ones too), the MAC is the MAC of
    /// the whole; and a context used before starts clean.
    @Test(arguments: [1, 63, 64, 65, 4096, 65_536])
    func piecesMakeTheSameMAC(piece: Int) throws {
        let key = try sealer.mac(with: TestKeys.master(), for: .storeFile)
        let pieced = try key.authenticate { update in
            var start = 0
            while start < Self.long.count {
                let end = min(start + piece, Self.long.count)
                Self.long[start..<end].withUnsafeBytes(update)
                [UInt8]().withUnsafeBytes(update)
                start = end
            }
        }
        #expect(Hex.encode(pieced) == Self.storeLong)
        #expect(Hex.encode(try key(Self.long)) == Self.storeLong)
    }

    /// Two keys used from several threads at once, on long inputs: each
    /// use gets a context of its own, keyed with its own key.
    @Test func concurrentUsesOfTwoKeysAgree() throws {
        let store = try sealer.mac(with: TestKeys.master(), for: .storeFile)
        let chain = try sealer.mac(with: TestKeys.master(), for: .auditChain)
        let results = Results()
        DispatchQueue.concurrentPerform(iterations: 16) { i in
            for _ in 0..<4 {
                let digest = i % 2 == 0 ? try? store(Self.long) : try? chain(Self.long)
                results.add(i % 2, digest.map(Hex.encode) ?? "failed")
            }
        }
        #expect(results.seen(0) == [Self.storeLong])
        #expect(results.seen(1) == [Self.chainLong])
    }

    /// A key outlives the sealer that made it (the daemon keeps the audit
    /// chain's key for its whole life), and still computes the right MAC.
    @Test func aKeyOutlivesItsSealer() throws {
        weak var gone: RecordSealer?
        let key = try {
            let sealer = RecordSealer()
            gone = sealer
            return try sealer.mac(with: TestKeys.master(), for: .storeFile)
        }()
        #expect(gone == nil)
        #expect(Hex.encode(try key(Self.message)) == Self.storeMessage)
    }
}

/// Digests seen per key, from many threads.
private final class Results: @unchecked Sendable {
    private let lock = DispatchQueue(label: "results")
    private var byKey: [Int: Set<String>] = [:]
    func add(_ key: Int, _ digest: String) { lock.sync { _ = byKey[key, default: []].insert(digest) } }
    func seen(_ key: Int) -> Set<String> { lock.sync { byKey[key] ?? [] } }
}
