import CofferTestSupport
import Foundation
import Syscalls
import Testing

@Suite struct SyscallsTests {
    @Test func retriesWhileInterrupted() throws {
        var calls = 0
        let result = try syscall("fake") { () -> Int32 in
            calls += 1
            if calls < 3 { errno = EINTR; return -1 }
            return 42
        }
        #expect(result == 42)
        #expect(calls == 3)
    }

    @Test func throwsTheFunctionNameAndErrno() {
        let error = #expect(throws: SyscallError.self) {
            try syscall("open") { open("/nonexistent/coffer", O_RDONLY) }
        }
        #expect(error?.function == "open")
        #expect(error?.errno == ENOENT)
        #expect(error?.description.contains("open failed") == true)
    }

    @Test func ownedDescriptorWritesReadsAndCloses() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("f")
        let writer = try OwnedFileDescriptor.open(path, O_WRONLY | O_CREAT | O_EXCL, mode: 0o600)
        try writer.writeAll(Array("hello".utf8))
        try writer.fsync()
        let raw = writer.rawValue
        try writer.close()
        // Closed exactly once: the number is no longer a valid descriptor.
        #expect(fcntl(raw, F_GETFD) == -1 && errno == EBADF)
        let reader = try OwnedFileDescriptor.open(path, O_RDONLY)
        #expect(try reader.readAll() == Array("hello".utf8))
    }

    /// A write larger than one call moves (1 MiB) and a read of it arrive
    /// whole and in order. (That each call moves at most 1 MiB is not seen
    /// from here: a regular file would take the whole write at once.)
    @Test func largeWritesAndReadsArriveWhole() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("f")
        let content = (0..<(3 << 20) + 12_345).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let writer = try OwnedFileDescriptor.open(path, O_WRONLY | O_CREAT | O_EXCL, mode: 0o600)
        try writer.writeAll(content)
        try writer.close()
        #expect(try OwnedFileDescriptor.open(path, O_RDONLY).readAll() == content)
        let error = #expect(throws: SyscallError.self) { try OwnedFileDescriptor.open(path, O_RDONLY).readAll(limit: 1 << 20) }
        #expect(error?.errno == EFBIG)
    }

    @Test func secretFilesMustBePrivateAndOurs() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("key")
        _ = FileManager.default.createFile(atPath: path, contents: Data([1]))
        chmod(path, 0o644)
        var info = try OwnedFileDescriptor.open(path, O_RDONLY).status()
        #expect(secretFileProblem(info) == .accessibleByOthers(mode: info.st_mode))
        #expect(secretFileProblem(info)?.description.contains("chmod 600") == true)
        chmod(path, 0o600)
        info = try OwnedFileDescriptor.open(path, O_RDONLY).status()
        #expect(secretFileProblem(info) == nil)
        #expect(secretFileProblem(info, owner: geteuid() + 1) == .wrongOwner(owner: geteuid(), expected: geteuid() + 1))
        let dirInfo = try OwnedFileDescriptor.open(dir.path, O_RDONLY | O_DIRECTORY).status()
        #expect(secretFileProblem(dirInfo) == .notRegularFile)
    }
}
