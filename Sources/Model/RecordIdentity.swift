/// What a sealed record is bound to. These fields, with the record's key id,
/// form the AES-GCM additional authenticated data: a record moved to another
/// name, version, store or protection fails to open. (docs/crypto.md)
public struct RecordIdentity: Sendable, Equatable {
    public var storeID: String
    public var name: String
    public var version: UInt64
    public var protection: String

    public init(storeID: String, name: String, version: UInt64, protection: String) {
        self.storeID = storeID
        self.name = name
        self.version = version
        self.protection = protection
    }

    static let label = "coffer.record.v1"

    /// label, store id, name, version (u64 big-endian), key id, protection;
    /// every text field as a u16 big-endian length then its UTF-8 bytes.
    package func additionalData(keyID: String) -> [UInt8] {
        var aad = [UInt8]()
        aad.reserveCapacity(2 * 5 + 8 + Self.label.utf8.count + storeID.utf8.count + name.utf8.count
                            + keyID.utf8.count + protection.utf8.count)
        // Each string's bytes copied in place (withUTF8): every get builds
        // one of these.
        func field(_ s: String) {
            var s = s
            s.withUTF8 { bytes in
                precondition(bytes.count <= Int(UInt16.max))
                aad.append(UInt8(bytes.count >> 8)); aad.append(UInt8(bytes.count & 0xff))
                aad.append(contentsOf: bytes)
            }
        }
        field(Self.label)
        field(storeID)
        field(name)
        for shift in stride(from: 56, through: 0, by: -8) { aad.append(UInt8(truncatingIfNeeded: version >> UInt64(shift))) }
        field(keyID)
        field(protection)
        return aad
    }
}
