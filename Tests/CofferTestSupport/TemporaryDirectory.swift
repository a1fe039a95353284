import Foundation

/// A fresh directory for one test, removed when the value is released.
/// Under scripts/test it lives in $COFFER_TEST_DIR (0755, so other users can
/// reach dev instances inside it); elsewhere under /tmp.
public final class TemporaryDirectory: @unchecked Sendable {
    public let path: String

    public init(_ label: String = "t", mode: mode_t = 0o755) throws {
        let base = ProcessInfo.processInfo.environment["COFFER_TEST_DIR"] ?? NSTemporaryDirectory()
        let template = (base as NSString).appendingPathComponent("\(label).XXXXXX")
        var bytes = Array(template.utf8CString)
        guard let made = mkdtemp(&bytes) else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        path = String(cString: made)
        chmod(path, mode)
    }

    public func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Whether the run is under scripts/test, where a missing prerequisite is a
/// failure rather than a reason to skip.
public var requireAllPrerequisites: Bool {
    ProcessInfo.processInfo.environment["COFFER_TEST_REQUIRE_ALL"] == "1"
}

public var runningAsRoot: Bool { geteuid() == 0 }
