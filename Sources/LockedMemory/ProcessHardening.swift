import CCofferShims
import Syscalls
#if canImport(Glibc)
import Glibc
#endif

/// The first thing cofferd does: no core dumps and no ptrace/proc access by
/// other processes of the same user.
///
/// PR_SET_DUMPABLE=0 (prctl(2)) makes /proc/PID/mem and ptrace root-only and
/// stops core dumps; RLIMIT_CORE=0 (setrlimit(2)) stops them even if something
/// later resets the dumpable flag (it is reset on setuid/execve).
public enum ProcessHardening {
    public static func apply() throws {
        var none = rlimit(rlim_cur: 0, rlim_max: 0)
        try syscall("setrlimit(RLIMIT_CORE)") { setrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &none) }
        try syscall("prctl(PR_SET_DUMPABLE)") { coffer_set_dumpable(0) }
    }

    public static var isDumpable: Bool { coffer_get_dumpable() != 0 }

    /// VmLck from /proc/self/status, in bytes: what the kernel says is locked.
    public static func lockedBytesReportedByKernel() -> Int? {
        guard let status = try? OwnedFileDescriptor.open("/proc/self/status", O_RDONLY).readAll(limit: 1 << 20),
              let text = String(validating: status, as: UTF8.self)
        else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmLck:") {
            let digits = line.dropFirst("VmLck:".count).filter(\.isNumber)
            return Int(digits).map { $0 * 1024 }
        }
        return nil
    }
}
