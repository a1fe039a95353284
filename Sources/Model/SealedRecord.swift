/// One secret version as it is stored: never plaintext. `ciphertext` is the
/// AES-256-GCM output followed by its 16-byte tag.
public struct SealedRecord: Sendable, Equatable, Codable {
    public static let saltCount = 32
    public static let nonceCount = 12
    public static let tagCount = 16

    public var keyID: KeyID
    public var salt: [UInt8]
    public var nonce: [UInt8]
    public var ciphertext: [UInt8]

    public init(keyID: KeyID, salt: [UInt8], nonce: [UInt8], ciphertext: [UInt8]) {
        self.keyID = keyID
        self.salt = salt
        self.nonce = nonce
        self.ciphertext = ciphertext
    }

    enum CodingKeys: String, CodingKey {
        case keyID = "key_id", salt, nonce, ciphertext
    }

    // Byte fields are base64 in JSON (Foundation's default for Data; spelled out
    // here so the format does not depend on [UInt8]'s array-of-numbers default).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        keyID = try c.decode(KeyID.self, forKey: .keyID)
        salt = try Base64.decode(c.decode(String.self, forKey: .salt), key: CodingKeys.salt, in: c)
        nonce = try Base64.decode(c.decode(String.self, forKey: .nonce), key: CodingKeys.nonce, in: c)
        ciphertext = try Base64.decode(c.decode(String.self, forKey: .ciphertext), key: CodingKeys.ciphertext, in: c)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(keyID, forKey: .keyID)
        try c.encode(Base64.encode(salt), forKey: .salt)
        try c.encode(Base64.encode(nonce), forKey: .nonce)
        try c.encode(Base64.encode(ciphertext), forKey: .ciphertext)
    }
}
