import CCofferShims
import CLibCrypto
import CLibPQ
import CLibSystemd
import Testing

/// The module maps link the Debian libraries this project is built on.
@Suite struct SystemLibrariesTests {
    @Test func libcryptoIsOpenSSL3() {
        #expect(OpenSSL_version_num() >= 0x3000_0000)
        #expect(EVP_CIPHER_fetch(nil, "AES-256-GCM", nil) != nil)
    }

    @Test func libpqIsVersion15OrLater() {
        #expect(PQlibVersion() >= 150000)
    }

    @Test func libsystemdAnswers() {
        // sd_booted() is 0 or 1 (or a negative errno), never anything else.
        #expect((-4095...1).contains(sd_booted()))
    }

    @Test func ucredMirrorHasTheKernelLayout() {
        #expect(MemoryLayout<coffer_ucred>.size == 12)
        #expect(coffer_so_peercred() == 17) // SO_PEERCRED on Linux (asm-generic/socket.h)
    }
}
