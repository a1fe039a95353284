import CofferTestSupport
import Foundation
import Testing

/// The wire protocol over the real sockets.
@Suite struct ProtocolTests {
    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        let daemon = try DevDaemon()
        let client = try LineClient(socketPath: daemon.adminSocket)
        _ = try client.call(#"{"id":0,"op":"put","name":"p","value":"v"}"#)
        let count = 200
        try client.send((1...count).map { #"{"id":\#($0),"op":"get","name":"p"}"# + "\n" }.joined())
        for expected in 1...count {
            let line = try #require(try client.readLine())
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["id"] as? Int == expected)
            #expect(object?["value"] as? String == "v")
        }
    }

    /// Pings and gets are answered on the event loop, a burst in turns of
    /// 16 (ConnectionHandler.processNext): every answer, in order.
    @Test func burstsOfThousandsOfPipelinedRequestsAreAnsweredInOrder() throws {
        let daemon = try DevDaemon()
        let client = try LineClient(socketPath: daemon.serviceSocket)
        let burst = 2000
        for round in 0..<10 {
            let first = round * burst
            try client.send((first..<first + burst).map { #"{"id":\#($0),"op":"ping"}"# + "\n" }.joined())
            for expected in first..<first + burst {
                let line = try #require(try client.readLine(), "answer \(expected) missing")
                try #require(line.hasPrefix(#"{"id":\#(expected),"ok":true"#), "answer \(expected) out of order: \(line)")
            }
        }
        #expect(try LineClient(socketPath: daemon.serviceSocket).call(#"{"id":1,"op":"ping"}"#)["pong"] as? Bool == true)
    }

    @Test func aClientThatHalfClosesStillGetsEveryAnswer() throws {
        // As `echo '{…}' | socat - UNIX-CONNECT:…` does.
        let daemon = try DevDaemon()
        let client = try LineClient(socketPath: daemon.serviceSocket)
        try client.send(#"{"id":1,"op":"ping"}"# + "\n" + #"{"id":2,"op":"ping"}"# + "\n")
        client.shutdownWrite()
        #expect(try client.readLine()?.contains(#""id":1"#) == true)
        #expect(try client.readLine()?.contains(#""id":2"#) == true)
        #expect(try client.readLine() == nil)
    }

    @Test func badLinesAreAnsweredAndTheConnectionStaysUsable() throws {
        let daemon = try DevDaemon()
        let client = try LineClient(socketPath: daemon.serviceSocket)
        let bad = try client.call("this is not json")
        #expect((bad["error"] as? [String: Any])?["code"] as? String == "BAD_REQUEST")
        let unknown = try client.call(#"{"id":"u","op":"frobnicate"}"#)
        #expect((unknown["error"] as? [String: Any])?["code"] as? String == "UNKNOWN_OP")
        #expect(unknown["id"] as? String == "u")
        #expect(try client.call(#"{"id":2,"op":"ping"}"#)["pong"] as? Bool == true)
    }

    @Test func anOversizedLineIsRefusedThenClosed() throws {
        let daemon = try DevDaemon()
        let client = try LineClient(socketPath: daemon.serviceSocket)
        try client.send(#"{"id":1,"op":"ping","pad":""# + String(repeating: "x", count: 70 * 1024) + "\"}\n")
        let line = try #require(try client.readLine())
        #expect(line.contains("\"FRAME_TOO_LARGE\""))
        #expect(try client.readLine() == nil, "closed after FRAME_TOO_LARGE")
        // Other clients are unaffected.
        #expect(try LineClient(socketPath: daemon.serviceSocket).call(#"{"op":"ping"}"#)["ok"] as? Bool == true)
    }

    @Test func anAcknowledgedWriteSurvivesKill9AndStaleSocketsAreReplaced() throws {
        let first = try DevDaemon()
        let value = uniqueValue("durable")
        #expect(try first.ctl(["put", "durable"], stdin: value).status == 0)
        first.stop(SIGKILL)
        #expect(FileManager.default.fileExists(atPath: first.adminSocket), "kill -9 leaves the socket file")

        let second = try DevDaemon(directory: first.directory)
        #expect(try second.ctl(["get", "durable"]).stdoutText == value)
    }

    @Test func gracefulShutdownRemovesTheSockets() throws {
        let daemon = try DevDaemon()
        let client = try LineClient(socketPath: daemon.adminSocket)
        #expect(try client.call(#"{"op":"ping"}"#)["ok"] as? Bool == true)
        #expect(daemon.stop(SIGTERM) == 0)
        #expect(try client.readLine() == nil, "open connections are closed after draining")
        #expect(!FileManager.default.fileExists(atPath: daemon.adminSocket))
        #expect(!FileManager.default.fileExists(atPath: daemon.serviceSocket))
        #expect(daemon.output.contains("COFFER_EVENT=stopped"))
    }

    @Test func cofferctlExplainsAnAbsentDaemon() throws {
        let dir = try TemporaryDirectory("absent")
        let result = try runProgram(binaryPath("cofferctl"), ["ping", "--dev", dir.path])
        #expect(result.status == 5)
        #expect(result.stderr.contains("cofferd is not running"))
    }
}
