import Keyring
import LockedMemory
import Syscalls
#if canImport(Glibc)
import Glibc
#endif

/// `cofferd --dev DIR`: a self-contained instance for a newcomer.
///
///     DIR/            0755 (others must reach DIR/run to be told DENIED)
///     DIR/master.key  0600, generated on first start, reused after
///     DIR/state/      0700, the store
///     DIR/run/        0755, the three sockets
enum DevInstance {
    /// Creates what is missing. Returns whether a new key was generated.
    static func prepare(directory: String, keyFile: String) throws -> Bool {
        try ensureDirectory(directory, mode: 0o755)
        try ensureDirectory(directory + "/state", mode: 0o700)
        try ensureDirectory(directory + "/run", mode: 0o755)
        guard access(keyFile, F_OK) != 0 else { return false }
        let key = try MasterKey.generate()
        try MasterKeySource.createKeyFile(at: keyFile, key: key)
        return true
    }

    /// mkdir with `mode` when missing (an existing directory is left as it is).
    static func ensureDirectory(_ path: String, mode: mode_t) throws {
        if mkdir(path, mode) == 0 {
            // mkdir applies the umask (077); set the intended mode exactly.
            try syscall("chmod") { chmod(path, mode) }
            return
        }
        let code = errno
        guard code == EEXIST else {
            throw StartupRefusal("cannot create the directory \(path): \(SyscallError(function: "mkdir", errno: code))")
        }
    }

    static func announce(directory: String, sockets: [String]) {
        let ctl = "cofferctl --dev \(directory)"
        var text = "cofferd: development instance ready\n"
        for path in sockets { text += "  socket: \(path)\n" }
        text += "  try:    printf %s 'example-value' | \(ctl) put db/password && \(ctl) get db/password\n"
        text += "  or:     echo '{\"id\":1,\"op\":\"get\",\"name\":\"db/password\"}' | socat - UNIX-CONNECT:\(directory)/run/coffer.sock\n"
        FileHandleStderr.write(text)
    }
}
