import CofferTestSupport
import Foundation
import Testing

/// The README's first session with a development instance, against the
/// real binaries.
@Suite struct DevInstanceTests {
    @Test func aFirstSession() throws {
        let daemon = try DevDaemon()
        let value = uniqueValue("first")

        let put = try daemon.ctl(["put", "db/password"], stdin: value + "\n")
        #expect(put.status == 0, "\(put.stderr)")
        let get = try daemon.ctl(["get", "db/password"])
        #expect(get.status == 0)
        #expect(get.stdoutText == value, "exact bytes, trailing newline from stdin removed")

        #expect(try daemon.ctl(["verify", "db/password"], stdin: value).status == 0)
        let wrong = try daemon.ctl(["verify", "db/password"], stdin: value + "x")
        #expect(wrong.status == 1)
        #expect(wrong.stdoutText == "no match\n")

        let missing = try daemon.ctl(["get", "no/such"])
        #expect(missing.status == 3)
        #expect(missing.stderr.contains("NOT_FOUND"))
        let fallback = try daemon.ctl(["get", "no/such", "--default", "fallback"])
        #expect(fallback.status == 0 && fallback.stdoutText == "fallback")

        _ = try daemon.ctl(["put", "api/token", "--kind", "api-key"], stdin: uniqueValue("token"))
        let list = try daemon.ctl(["list"])
        #expect(list.status == 0)
        #expect(list.stdoutText.contains("db/password") && list.stdoutText.contains("api/token"))
        #expect(!list.stdoutText.contains(value))
        let json = try daemon.ctl(["list", "--json"])
        let object = try JSONSerialization.jsonObject(with: json.stdout) as? [String: Any]
        let names = (object?["secrets"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
        #expect(names == ["api/token", "db/password"])

        let deleted = try daemon.ctl(["delete", "api/token"])
        #expect(deleted.status == 0)
        #expect(try daemon.ctl(["get", "api/token"]).status == 3)
        #expect(try daemon.ctl(["ping"]).stdoutText == "pong\n")
    }

    @Test func anotherUserIsDenied() throws {
        guard try requireRoot() else { return }
        let daemon = try DevDaemon()
        _ = try daemon.ctl(["put", "db/password"], stdin: uniqueValue("denied"))
        let client = """
            import json, socket, sys
            s = socket.socket(socket.AF_UNIX)
            s.connect(sys.argv[1])
            s.sendall(b'{"id":1,"op":"get","name":"db/password"}\\n{"id":2,"op":"get","name":"not/there"}\\n{"id":3,"op":"list"}\\n')
            f = s.makefile()
            print(json.dumps([json.loads(f.readline()) for _ in range(3)]))
            """
        let asNobody = ["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", client]
        let result = try runProgram("/usr/bin/setpriv", asNobody + [daemon.serviceSocket])
        #expect(result.status == 0, "\(result.stderr)")
        let answers = try JSONSerialization.jsonObject(with: result.stdout) as? [[String: Any]] ?? []
        #expect(answers.count == 3)
        for answer in answers {
            #expect(answer["ok"] as? Bool == false)
            #expect((answer["error"] as? [String: Any])?["code"] as? String == "DENIED")
        }
        #expect(daemon.output.contains("COFFER_EVENT=denied"))
        #expect(daemon.output.contains("COFFER_PEER_UID=65534"))

        // The admin socket is 0600: nobody cannot even connect.
        let admin = try runProgram("/usr/bin/setpriv", asNobody + [daemon.adminSocket])
        #expect(admin.status != 0)
        #expect(admin.stderr.contains("PermissionError"))
    }

    @Test func memoryIsLockedFilesArePrivateAndNoPlaintextLeaks() throws {
        let daemon = try DevDaemon()
        let values = [uniqueValue("text"), uniqueValue("verify")]
        _ = try daemon.ctl(["put", "one"], stdin: values[0])
        _ = try daemon.ctl(["get", "one"])
        _ = try daemon.ctl(["put", "two", "--protection", "hashed"], stdin: values[1])
        _ = try daemon.ctl(["verify", "two"], stdin: values[1])

        let status = try String(contentsOfFile: "/proc/\(daemon.pid)/status", encoding: .utf8)
        let vmLck = status.split(separator: "\n").first { $0.hasPrefix("VmLck:") }
        let lockedKiB = Int(vmLck?.filter(\.isNumber) ?? "") ?? 0
        #expect(lockedKiB > 0, "VmLck: \(vmLck ?? "missing")")

        func mode(_ path: String) throws -> Int {
            try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as! Int
        }
        #expect(try mode(daemon.devPath + "/master.key") == 0o600)
        #expect(try mode(daemon.devPath + "/state/store.json") == 0o600)
        #expect(try mode(daemon.devPath + "/state") == 0o700)
        #expect(try mode(daemon.adminSocket) == 0o600)
        #expect(try mode(daemon.serviceSocket) == 0o666)

        #expect(daemon.stop() == 0)
        for value in values {
            for (file, contents) in allFileContents(under: daemon.directory.path) {
                #expect(contents.range(of: Data(value.utf8)) == nil, "plaintext found in \(file)")
            }
            #expect(!daemon.output.contains(value))
        }
    }

    @Test func theKeyIsGeneratedOnceAndReused() throws {
        let first = try DevDaemon()
        let value = uniqueValue("reuse")
        _ = try first.ctl(["put", "kept"], stdin: value)
        #expect(first.output.contains("WARNING: generated a new master key"))
        let keyID = try #require(try first.ctl(["status", "--json"]).stdoutText.firstMatch(of: /"current":"([0-9a-f]{16})"/)?.1)
        #expect(first.stop() == 0)

        let second = try DevDaemon(directory: first.directory)
        #expect(!second.output.contains("generated a new master key"))
        #expect(try second.ctl(["status", "--json"]).stdoutText.contains("\"current\":\"\(keyID)\""))
        #expect(try second.ctl(["get", "kept"]).stdoutText == value)
    }
}
