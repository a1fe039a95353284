import Testing

@testable import Server

@Suite struct CredentialAddressTests {
    func sunPath(_ name: String) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 108)
        bytes.replaceSubrange(1..<(1 + name.utf8.count), with: name.utf8)
        return bytes
    }

    @Test func readsUnitAndIDFromSystemdsAbstractName() throws {
        let parsed = try #require(CredentialAddress.parse(abstractName: sunPath("4f0a9c1e2b3d4a5f/unit/web.service/db-password")))
        #expect(parsed.unit == "web.service")
        #expect(parsed.id == "db-password")
    }

    @Test(arguments: [
        "4f0a/unit/web.service", "4f0a/units/web.service/id", "/unit/web.service/id", "4f0a/unit/web/id",
        "4f0a/unit/web.service/..", "4f0a/unit/web.service/", "4f0a/unit/web.service/a/b",
    ])
    func refusesAnythingElse(name: String) {
        #expect(CredentialAddress.parse(abstractName: sunPath(name)) == nil)
    }

    @Test func aPathnameSocketIsNotACredentialRequest() {
        var bytes = Array("/tmp/x.sock".utf8)
        bytes += [UInt8](repeating: 0, count: 108 - bytes.count)
        #expect(CredentialAddress.parse(abstractName: bytes) == nil)
    }
}
