import CofferTestSupport
import Keyring
import LockedMemory
import Model
import Seal
import Testing

/// Every known-answer vector of docs/crypto.md, read out of the page: the
/// numbers a re-implementer copies are the numbers the code reproduces.
@Suite struct DocumentedVectorTests {
    let page: DocumentPage
    let sealer = RecordSealer()

    init() throws {
        page = try DocumentPage("docs/crypto.md").section("Known-answer vectors")
    }

    func bytes(_ name: String) throws -> [UInt8] {
        try #require(Hex.decode(try page.value(name)), "\(name) is not hex")
    }

    func masterKey() throws -> MasterKey {
        try TestKeys.prepareSecureHeap()
        var raw = try bytes("master_key")
        return try MasterKey(bytes: try LockedBytes(takingAndWiping: &raw))
    }

    func identity(_ name: String, _ version: UInt64) throws -> RecordIdentity {
        RecordIdentity(storeID: try page.value("store_id"), name: name, version: version, protection: try page.value("protection"))
    }

    @Test func theKeyIDAndRecordKeyAreTheDocumentedOnes() throws {
        let key = try masterKey()
        #expect(key.id.hex == (try page.value("key_id")))
        let recordKey = try sealer.deriveRecordKey(master: key, salt: try bytes("salt"))
        #expect(recordKey.withUnsafeBytes { Array($0) } == (try bytes("record_key")))
    }

    /// Each row of the table: sealing with the documented salt and nonce
    /// gives the documented bytes, and they open to the plaintext.
    @Test func everyRecordInTheTableSealsAndOpensAsDocumented() throws {
        let rows = page.tableRows
        #expect(rows.count == 3)
        let key = try masterKey()
        for row in rows {
            try #require(row.count == 4, "a vector row has name, version, plaintext and ciphertext")
            let id = try identity(row[0], try #require(UInt64(row[1])))
            let plaintext = try Self.plaintext(row[2])
            let expected = try #require(Hex.decode(row[3]))
            let record = try plaintext.withUnsafeBytes {
                try sealer.seal($0, for: id, with: key, salt: try bytes("salt"), nonce: try bytes("nonce"))
            }
            #expect(record.ciphertext == expected, "\(row[0])")
            #expect(record.keyID.hex == (try page.value("key_id")))
            let opened = try sealer.open(SealedRecord(keyID: record.keyID, salt: record.salt, nonce: record.nonce, ciphertext: expected),
                                         for: id, with: key)
            #expect(opened.withUnsafeBytes { Array($0) } == plaintext, "\(row[0])")
        }
    }

    /// The AAD block: the hex at the start of each line, joined.
    @Test func theFirstVectorsAADIsTheDocumentedOne() throws {
        let block = try #require(page.codeBlocks.first { $0.first?.hasPrefix("0010 ") ?? false }, "no AAD block")
        let documented = block.flatMap { line in
            line.split(separator: " ").prefix { Hex.decode(String($0)) != nil }.flatMap { Hex.decode(String($0))! }
        }
        let first = try #require(page.tableRows.first)
        let aad = try identity(first[0], try #require(UInt64(first[1]))).additionalData(keyID: try page.value("key_id"))
        #expect(aad == documented)
    }

    @Test func theHMACVersionMatchesItsValueOnly() throws {
        try TestKeys.prepareSecureHeap()
        var stored = try bytes("hmac_key") + bytes("hmac_digest")
        let record = try LockedBytes(takingAndWiping: &stored)
        let value = try page.value("hmac_value")
        #expect(try Array(value.utf8).withUnsafeBytes { try ValueHashing.matches($0, stored: record, .hmacSHA256) })
        #expect(try !Array((value + "x").utf8).withUnsafeBytes { try ValueHashing.matches($0, stored: record, .hmacSHA256) })
    }

    @Test func theScryptVersionIsTheDocumentedOutput() throws {
        try TestKeys.prepareSecureHeap()
        let parameters = HashParameters.scrypt(
            n: try #require(UInt64(try page.value("scrypt_n"))), r: try #require(UInt32(try page.value("scrypt_r"))),
            p: try #require(UInt32(try page.value("scrypt_p"))), salt: try bytes("scrypt_salt"))
        let derived = try Array(try page.value("scrypt_value").utf8).withUnsafeBytes { try ValueHashing.derive($0, parameters) }
        #expect(derived.withUnsafeBytes { Array($0) } == (try bytes("scrypt_output")))
    }

    /// `(empty)`, `bytes 00 01 02 ff`, or text.
    static func plaintext(_ cell: String) throws -> [UInt8] {
        if cell == "(empty)" { return [] }
        if cell.hasPrefix("bytes ") {
            let digits = cell.dropFirst(6).filter { $0 != "`" }
            return try digits.split(separator: " ").map { try #require(UInt8($0, radix: 16)) }
        }
        return Array(cell.utf8)
    }
}
