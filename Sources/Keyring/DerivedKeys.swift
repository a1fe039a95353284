import LockedMemory
import Synchronization

/// Record keys derived from one master key, by the record's salt, kept in
/// locked memory so that reading a record again does not derive its key
/// again (HKDF was an eighth of cofferd's CPU per get under perf,
/// docs/performance.md).
///
/// They live and die with their master key: `MasterKey.wipe` (seal) wipes
/// them too, and a retired key's go when the key is released. At most
/// `capacity` are kept (32 bytes of the secure heap each); past that, a
/// full stripe lets one go before taking another, so a store larger than
/// the cache costs a derivation per miss, as without it.
public final class DerivedKeys: Sendable {
    public static let capacity = 4096
    static let stripeCount = 8

    /// One lock per stripe, chosen by the salt's first byte (random), so
    /// that event loops reading different records rarely meet.
    private final class Stripe: Sendable {
        let keys = Mutex<[[UInt8]: LockedBytes]>([:])
    }

    private let stripes = (0..<DerivedKeys.stripeCount).map { _ in Stripe() }

    public init() {}

    /// The key for `salt`, derived by `derive` only when it is not kept.
    public func key(for salt: [UInt8], derive: () throws -> LockedBytes) throws -> LockedBytes {
        let stripe = stripes[Int(salt.first ?? 0) % Self.stripeCount]
        if let kept = stripe.keys.withLock({ $0[salt] }) { return kept }
        let key = try derive()
        stripe.keys.withLock { keys in
            if keys.count >= Self.capacity / Self.stripeCount, let any = keys.keys.first {
                // Released, and so wiped, once no reader holds it.
                keys[any] = nil
            }
            keys[salt] = key
        }
        return key
    }

    /// How many keys are kept (tests, status).
    public var count: Int { stripes.reduce(0) { $0 + $1.keys.withLock { $0.count } } }

    /// Wipes every kept key now, also one a reader still holds (seal).
    public func wipeAll() {
        for stripe in stripes {
            let taken = stripe.keys.withLock { keys in
                let all = Array(keys.values)
                keys.removeAll()
                return all
            }
            for key in taken { key.wipe() }
        }
    }
}
