import CofferTestSupport
import Foundation
import Testing

/// A client that is someone else, as the kernel sees it: python3 run through
/// setpriv as another uid and groups, optionally moved first into a cgroup
/// laid out like a systemd unit's. Sends each request on one connection and
/// returns the answers (an empty object for a connection closed early).
struct OtherUserClient {
    var uid: UInt32 = 65534
    var gid: UInt32 = 65534
    var groups: [UInt32] = []
    /// A cgroup directory to join before dropping privileges.
    var cgroup: CgroupUnit?

    static let script = """
        import json, socket, sys
        s = socket.socket(socket.AF_UNIX)
        s.connect(sys.argv[1])
        s.settimeout(30)
        f = s.makefile('rb')
        out = []
        for request in sys.argv[2:]:
            try:
                s.sendall(request.encode() + b'\\n')
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused at accept: the answer is already waiting
            line = f.readline()
            out.append(json.loads(line) if line else {})
        print(json.dumps(out))
        """

    func call(_ socket: String, _ requests: [String]) throws -> [[String: Any]] {
        var privileges = ["--reuid=\(uid)", "--regid=\(gid)"]
        privileges += groups.isEmpty ? ["--clear-groups"] : ["--groups=" + groups.map(String.init).joined(separator: ",")]
        let client = ["/usr/bin/setpriv"] + privileges + ["/usr/bin/python3", "-c", Self.script, socket] + requests
        let result: ProgramResult
        if let cgroup {
            // $$ is the shell, which then becomes setpriv, then python: all
            // one process, so it connects from inside the unit's cgroup.
            let join = "echo $$ > '\(cgroup.path)/cgroup.procs' && exec \"$@\""
            result = try runProgram("/bin/sh", ["-c", join, "sh"] + client)
        } else {
            result = try runProgram(client[0], Array(client.dropFirst()))
        }
        try #require(result.status == 0, "client failed: \(result.stderr)")
        return try #require(JSONSerialization.jsonObject(with: result.stdout) as? [[String: Any]])
    }
}

/// A cgroup shaped like `system.slice/NAME.service` on the unified
/// hierarchy, for testing unit rules on the live path. Removed on deinit
/// (once its processes have exited).
final class CgroupUnit {
    let path: String
    let unit: String

    init?(unit: String) throws {
        let roots = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        guard let root = roots.first(where: { FileManager.default.fileExists(atPath: $0 + "/cgroup.procs") }) else {
            try #require(!requireAllPrerequisites, "no writable cgroup2 hierarchy for unit tests")
            return nil
        }
        self.unit = unit
        path = root + "/system.slice/" + unit
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { rmdir(path) }
}

func errorCode(_ answer: [String: Any]) -> String? {
    (answer["error"] as? [String: Any])?["code"] as? String
}

func listedNames(_ answer: [String: Any]) -> [String] {
    ((answer["secrets"] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String }
}
