import CofferTestSupport
import Foundation
import Testing

/// Bad input and the connection limits over the real sockets.
@Suite struct LimitsTests {
    /// A dev instance with `limits` in its config file.
    func daemon(limits: [String: Int]) throws -> DevDaemon {
        let body = limits.map { "\"\($0.key)\": \($0.value)" }.joined(separator: ", ")
        return try DevDaemon.with(config: "{\"limits\": {\(body)}}")
    }

    @Test(arguments: [
        ("{not json", "BAD_REQUEST"),
        ("[1,2]", "BAD_REQUEST"),
        ("\"op\"", "BAD_REQUEST"),
        (#"{"id":1}"#, "BAD_REQUEST"),
        (#"{"id":1,"op":7}"#, "BAD_REQUEST"),
        (#"{"id":1,"op":"get"}"#, "BAD_REQUEST"),
        (#"{"id":1,"op":"get","name":42}"#, "BAD_REQUEST"),
        (#"{"id":1,"op":"get","name":"a/../b"}"#, "BAD_REQUEST"),
        (#"{"id":1,"op":"get","name":"a\u0000b"}"#, "BAD_REQUEST"),
        (#"{"id":1,"op":"get","name":"/abs"}"#, "BAD_REQUEST"),
        (#"{"id":1,"op":"get","name":"x","version":"one"}"#, "BAD_REQUEST"),
        (#"{"id":1,"op":"get","name":"x","colour":"red"}"#, "BAD_REQUEST"),
        (#"{"id":1,"op":"watch","names":"x"}"#, "BAD_REQUEST"),
        (#"{"id":1,"op":"watch","names":["a/*/*/*/*/*"]}"#, "BAD_REQUEST"),
        (#"{"id":1,"op":"put","name":"x","value":"v","principals":["root"]}"#, "BAD_REQUEST"),
        (#"{"id":1,"op":"put","name":"x","value":"v","scope":{"sockets":["admin"]}}"#, "BAD_REQUEST"),
        (#"{"id":1,"op":"teleport"}"#, "UNKNOWN_OP"),
    ])
    func everyBadInputGetsItsCodeAndChangesNothing(line: String, code: String) throws {
        let daemon = try DevDaemon()
        let client = try LineClient(socketPath: daemon.adminSocket)
        let answer = try client.call(line)
        #expect(answer["ok"] as? Bool == false)
        #expect(errorCode(answer) == code, "\(line) → \(answer)")
        #expect(listedNames(try client.call(#"{"id":2,"op":"list"}"#)) == [])
    }

    @Test func fourHundredConcurrentConnectionsAreServed() throws {
        let daemon = try DevDaemon()
        _ = try daemon.ctl(["put", "shared"], stdin: "v")
        let clients = try (0..<400).map { _ in try LineClient(socketPath: daemon.serviceSocket) }
        // Every connection is open at once; each sends, then each reads.
        for (i, client) in clients.enumerated() {
            try client.send(#"{"id":\#(i),"op":"get","name":"shared"}"# + "\n")
        }
        var served = 0
        for (i, client) in clients.enumerated() {
            let line = try #require(try client.readLine())
            let answer = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            if answer?["id"] as? Int == i, answer?["value"] as? String == "v" { served += 1 }
        }
        #expect(served == 400)
    }

    @Test func pastMaxConnectionsAClientIsRefusedCleanly() throws {
        let daemon = try daemon(limits: ["max_connections": 3])
        let open = try (0..<3).map { _ in try LineClient(socketPath: daemon.serviceSocket) }
        for client in open { #expect(try client.call(#"{"op":"ping"}"#)["ok"] as? Bool == true) }
        let refused = try LineClient(socketPath: daemon.serviceSocket)
        let line = try #require(try refused.readLine())
        #expect(line.contains("\"UNAVAILABLE\""))
        #expect(try refused.readLine() == nil)
        // Room again once one closes.
        _ = consume open
        let ok = try waitUntil("a slot frees up") {
            (try? LineClient(socketPath: daemon.serviceSocket).call(#"{"op":"ping"}"#)["ok"] as? Bool) == true
        }
        #expect(ok)
    }

    @Test func oneUserCannotTakeEverySlot() throws {
        guard try requireRoot() else { return }
        let daemon = try daemon(limits: ["max_connections_per_user": 2])
        // nobody holds two connections open and tries a third.
        let script = """
            import socket, sys
            held = []
            for _ in range(2):
                s = socket.socket(socket.AF_UNIX); s.settimeout(30); s.connect(sys.argv[1])
                s.sendall(b'{"op":"ping"}\\n'); s.makefile().readline(); held.append(s)
            third = socket.socket(socket.AF_UNIX); third.settimeout(30); third.connect(sys.argv[1])
            print(third.makefile().readline().strip())
            """
        let result = try runProgram("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups",
                                                         "/usr/bin/python3", "-c", script, daemon.serviceSocket])
        #expect(result.stdoutText.contains("\"UNAVAILABLE\""), "\(result.stdoutText) \(result.stderr)")
        // Root (a superuser) is not held to it.
        let rootClients = try (0..<3).map { _ in try LineClient(socketPath: daemon.serviceSocket) }
        for client in rootClients { #expect(try client.call(#"{"op":"ping"}"#)["ok"] as? Bool == true) }
    }

    @Test func aStalledClientDelaysNobodyAndIsCutOff() throws {
        let daemon = try daemon(limits: ["request_timeout_ms": 500, "idle_timeout_ms": 60000])
        _ = try daemon.ctl(["put", "s"], stdin: "v")
        // Half a request, never finished (slowloris).
        let stalled = try LineClient(socketPath: daemon.serviceSocket)
        try stalled.send(#"{"id":1,"op":"get","na"#)
        // Many requests, answers never read.
        let deaf = try LineClient(socketPath: daemon.serviceSocket)
        try deaf.send(String(repeating: #"{"op":"get","name":"s"}"# + "\n", count: 2000))

        let other = try LineClient(socketPath: daemon.serviceSocket)
        for i in 0..<50 {
            #expect(try other.call(#"{"id":\#(i),"op":"get","name":"s"}"#)["value"] as? String == "v")
        }
        #expect(try stalled.readLine() == nil, "the unfinished request is cut off after request_timeout")
    }

    @Test func anIdleConnectionIsClosed() throws {
        let daemon = try daemon(limits: ["idle_timeout_ms": 300])
        let idle = try LineClient(socketPath: daemon.serviceSocket)
        #expect(try idle.call(#"{"op":"ping"}"#)["ok"] as? Bool == true)
        #expect(try idle.readLine() == nil, "closed after idle_timeout")
    }
}
