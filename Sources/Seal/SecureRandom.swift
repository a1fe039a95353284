import CLibCrypto
import Model

/// Random bytes from OpenSSL's DRBG, for salts, nonces and ids.
public enum SecureRandom {
    public static func bytes(_ count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        guard count == 0 || RAND_bytes(&bytes, Int32(count)) == 1 else {
            throw SealError(.cryptoFailure, "RAND_bytes failed")
        }
        return bytes
    }

    /// Random bytes for values and keys, from the private DRBG
    /// (RAND_priv_bytes(3)), kept apart from the one that makes public
    /// salts and nonces.
    public static func privateBytes(_ count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        guard count == 0 || RAND_priv_bytes(&bytes, Int32(count)) == 1 else {
            throw SealError(.cryptoFailure, "RAND_priv_bytes failed")
        }
        return bytes
    }

    /// `count` random bytes as lowercase hex (ids such as the store id).
    public static func hex(_ count: Int) throws -> String {
        Hex.encode(try bytes(count))
    }
}
