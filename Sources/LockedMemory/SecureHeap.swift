import CCofferShims
import CLibCrypto
import Synchronization

/// OpenSSL's secure heap: one mmap'd arena, mlock'd, excluded from core dumps
/// (MADV_DONTDUMP) and surrounded by guard pages. Every `LockedBytes` lives in it.
///
/// CRYPTO_secure_malloc_init(3): returns 1 on success, 2 when the arena exists
/// but mlock or madvise failed ("only partly protected"), 0 on failure. We treat
/// anything but 1 as failure: a key that can be swapped out is not protected.
public enum SecureHeap {
    public static let defaultSize = 2 << 20
    private static let state = Mutex<Int?>(nil)

    public struct InitializationError: Error, CustomStringConvertible {
        public let size: Int
        public let partlyProtected: Bool

        public var description: String {
            let what = partlyProtected
                ? "could not lock \(size) bytes of memory (mlock failed)"
                : "could not create a \(size)-byte secure heap"
            return "\(what): cofferd keeps its master key only in locked memory and refuses to start without it. "
                + "Raise the locked-memory limit (LimitMEMLOCK= in the unit, `ulimit -l`, "
                + "or grant CAP_IPC_LOCK) to at least \(size / 1024) KiB."
        }
    }

    /// Creates the arena once per process; `size` must be a power of two.
    public static func initialize(size: Int = defaultSize) throws(InitializationError) {
        try state.withLock { (current: inout Int?) throws(InitializationError) in
            if current != nil { return }
            precondition(size > 0 && size & (size - 1) == 0, "secure heap size must be a power of two")
            let rc = CRYPTO_secure_malloc_init(size, 32)
            guard rc == 1 else {
                // Partial protection: tear it down so nothing is ever allocated there.
                if rc == 2 { _ = CRYPTO_secure_malloc_done() }
                throw InitializationError(size: size, partlyProtected: rc == 2)
            }
            current = size
        }
    }

    public static var isInitialized: Bool { state.withLock { $0 != nil } }
    public static var size: Int { state.withLock { $0 ?? 0 } }

    /// Bytes currently handed out from the arena.
    public static var usedBytes: Int { Int(CRYPTO_secure_used()) }
}
