import LockedMemory
import Model
import Syscalls
#if canImport(Glibc)
import Glibc
#endif

/// Where the master key comes from, in the order cofferd tries them.
///
/// - `credential`: `$CREDENTIALS_DIRECTORY/master-key`, placed by systemd's
///   LoadCredential=/SetCredentialEncrypted= (systemd.exec(5), "Credentials").
///   systemd owns its permissions and keeps it on a non-swappable ramfs.
/// - `keyFile`: a file that must be a regular file, mode 0600 and owned by the
///   daemon's user; anything else is refused with the reason.
///
/// Either holds the key as 64 hex digits (an optional trailing newline is
/// allowed: `openssl rand -hex 32 > master.key`) or as 32 raw bytes.
public enum MasterKeySource: Equatable, Sendable, CustomStringConvertible {
    case credential(directory: String)
    case keyFile(path: String)

    public var path: String {
        switch self {
        case .credential(let directory): return directory + "/master-key"
        case .keyFile(let path): return path
        }
    }

    public var description: String {
        switch self {
        case .credential: return "systemd credential \(path)"
        case .keyFile: return "key file \(path)"
        }
    }

    /// The systemd credential when `$CREDENTIALS_DIRECTORY/master-key` exists,
    /// else `keyFile`.
    public static func resolve(
        credentialsDirectory: String?,
        keyFile: String
    ) -> MasterKeySource {
        if let dir = credentialsDirectory, !dir.isEmpty, access(dir + "/master-key", F_OK) == 0 {
            return .credential(directory: dir)
        }
        return .keyFile(path: keyFile)
    }

    public func load() throws -> MasterKey {
        let fd: OwnedFileDescriptor
        do {
            fd = try .open(path, O_RDONLY | O_NOFOLLOW)
        } catch let error as SyscallError {
            throw KeyringError(.keyFileUnreadable, "cannot open the master key (\(self)): \(error)")
        }
        if case .keyFile = self, let problem = secretFileProblem(try fd.status()) {
            throw KeyringError(.keyFilePermissions, "refusing the master key file \(path): it \(problem)")
        }
        var contents = try fd.readSecret(limit: 4096)
        defer { contents.wipe() }
        return try MasterKey(bytes: Self.decode(&contents, from: self))
    }

    /// Creates a new key file (dev mode): O_EXCL, 0600, fsync'd. Fails if the
    /// file exists, so an existing key is never overwritten.
    public static func createKeyFile(at path: String, key: MasterKey) throws {
        let fd = try OwnedFileDescriptor.open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600)
        var text = [UInt8]()
        text.reserveCapacity(65)
        key.bytes.withUnsafeBytes { Hex.append($0, to: &text) }
        text.append(UInt8(ascii: "\n"))
        defer { text.wipe() }
        try fd.writeAll(text)
        try fd.fsync()
        try fd.close()
    }


    private static func decode(_ contents: inout [UInt8], from source: MasterKeySource) throws -> LockedBytes {
        if contents.count == MasterKey.byteCount {
            return try LockedBytes(takingAndWiping: &contents)
        }
        var end = contents.count
        while end > 0, contents[end - 1] == UInt8(ascii: "\n") || contents[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        guard end == MasterKey.byteCount * 2 else {
            throw KeyringError(
                .malformedKey,
                "the master key (\(source)) must be 64 hex digits or 32 raw bytes; generate one with `openssl rand -hex 32`"
            )
        }
        return try LockedBytes(count: MasterKey.byteCount) { out in
            for i in 0..<MasterKey.byteCount {
                guard let high = Hex.value(ofDigit: contents[2 * i]), let low = Hex.value(ofDigit: contents[2 * i + 1]) else {
                    throw KeyringError(.malformedKey, "the master key (\(source)) holds a character that is not a hex digit")
                }
                out[i] = high << 4 | low
            }
        }
    }

}
