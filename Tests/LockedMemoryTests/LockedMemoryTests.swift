import CLibCrypto
import CofferTestSupport
import LockedMemory
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct LockedMemoryTests {
    init() throws { try TestKeys.prepareSecureHeap() }

    @Test func bytesLiveInTheSecureHeap() throws {
        let bytes = try LockedBytes(count: 32)
        bytes.withUnsafeBytes { #expect(CRYPTO_secure_allocated($0.baseAddress) == 1) }
        #expect(SecureHeap.usedBytes >= 32)
    }

    @Test func theKernelReportsLockedMemory() {
        // VmLck counts the secure heap's mlock'd arena.
        #expect((ProcessHardening.lockedBytesReportedByKernel() ?? 0) >= SecureHeap.size)
    }

    @Test func wipeZeroesTheContents() throws {
        let bytes = try TestKeys.locked("sensitive")
        bytes.wipe()
        bytes.withUnsafeBytes { #expect($0.allSatisfy { $0 == 0 }) }
    }

    @Test func descriptionNeverShowsTheContents() throws {
        let bytes = try TestKeys.locked("hunter2-in-description")
        #expect(!"\(bytes)".contains("hunter2"))
        #expect("\(bytes)" == "LockedBytes(22 bytes)")
    }

    @Test func takingWipesTheSource() throws {
        var source = Array("copy-me".utf8)
        let bytes = try LockedBytes(takingAndWiping: &source)
        #expect(source.isEmpty)
        #expect(bytes.withUnsafeBytes { Array($0) } == Array("copy-me".utf8))
    }

    @Test func constantTimeEquality() throws {
        let bytes = try TestKeys.locked("abc")
        #expect(Array("abc".utf8).withUnsafeBytes { bytes.constantTimeEquals($0) })
        #expect(!Array("abd".utf8).withUnsafeBytes { bytes.constantTimeEquals($0) })
        #expect(!Array("abcd".utf8).withUnsafeBytes { bytes.constantTimeEquals($0) })
    }

    @Test func hardeningMakesTheProcessUndumpable() throws {
        try ProcessHardening.apply()
        #expect(!ProcessHardening.isDumpable)
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &limit)
        #expect(limit.rlim_cur == 0 && limit.rlim_max == 0)
    }

    @Test func transientBytesKeepTheirContentUntilReleased() {
        let source = Array("line".utf8)
        let transient = source.withUnsafeBytes { TransientBytes(copying: $0) }
        #expect(transient.count == 4)
        #expect(transient.withUnsafeBytes { Array($0) } == source)
    }
}
