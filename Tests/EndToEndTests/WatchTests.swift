import CofferTestSupport
import Foundation
import Testing

/// watch: change lines after put, rotate and delete; never a value.
@Suite struct WatchTests {
    func next(_ client: LineClient) throws -> [String: Any] {
        let line = try #require(try client.readLine(), "the watcher was disconnected")
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    @Test func changesArriveAfterPutRotateAndDelete() throws {
        let daemon = try DevDaemon()
        let watcher = try LineClient(socketPath: daemon.serviceSocket)
        let ack = try watcher.call(#"{"id":"w","op":"watch","names":["app/**"]}"#)
        #expect(ack["watching"] as? [String] == ["app/**"])

        let first = uniqueValue("first"), second = uniqueValue("second")
        #expect(try daemon.ctl(["put", "app/db/password"], stdin: first).status == 0)
        #expect(try daemon.ctl(["put", "elsewhere"], stdin: "x").status == 0)
        #expect(try daemon.ctl(["rotate", "app/db/password"], stdin: second).status == 0)
        #expect(try daemon.ctl(["delete", "app/db/password"]).status == 0)

        let put = try next(watcher)
        #expect(put["id"] as? String == "w")
        #expect(put["event"] as? String == "put")
        #expect(put["name"] as? String == "app/db/password")
        #expect(put["version"] as? Int == 1)
        #expect(put["stage"] as? String == "current")
        let rotate = try next(watcher)
        #expect(rotate["event"] as? String == "rotate")
        #expect(rotate["version"] as? Int == 2)
        let delete = try next(watcher)
        #expect(delete["event"] as? String == "delete")
        #expect(delete["name"] as? String == "app/db/password")
        for event in [put, rotate, delete] {
            #expect(!String(describing: event).contains(first) && !String(describing: event).contains(second))
        }
        // A policy reload tells watchers to re-list (no name, no version).
        #expect(try daemon.ctl(["reload"]).status == 0)
        let reload = try next(watcher)
        #expect(reload["event"] as? String == "reload")
        #expect(reload["name"] == nil)

        // Still answering requests between events; one watch per connection.
        #expect(try watcher.call(#"{"id":"p","op":"ping"}"#)["pong"] as? Bool == true)
        #expect(errorCode(try watcher.call(#"{"id":"w2","op":"watch","names":["x"]}"#)) == "CONFLICT")
    }

    @Test func aWatcherHearsOnlyOfNamesItMayRead() throws {
        guard try requireRoot() else { return }
        let daemon = try DevDaemon.with(policy: "allow watch on team/* to uid:65534\n")
        // python as nobody: watch everything, print the first event line.
        let script = """
            import socket, sys
            s = socket.socket(socket.AF_UNIX); s.settimeout(30); s.connect(sys.argv[1]); f = s.makefile('rwb')
            f.write(b'{"id":1,"op":"watch","names":["**"]}\\n'); f.flush()
            print(f.readline().decode().strip(), flush=True)
            print(f.readline().decode().strip(), flush=True)
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", script, daemon.serviceSocket]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        let reader = output.fileHandleForReading
        let ack = try #require(readLine(reader))
        #expect(ack.contains("\"ok\":true"))
        _ = try daemon.ctl(["put", "secret/hidden"], stdin: "x")
        _ = try daemon.ctl(["put", "team/visible"], stdin: "y")
        let event = try #require(readLine(reader))
        #expect(event.contains("team/visible"))
        #expect(!event.contains("secret/hidden"))
    }

    private func readLine(_ handle: FileHandle) -> String? {
        var bytes: [UInt8] = []
        while true {
            let byte = handle.readData(ofLength: 1)
            guard let b = byte.first else { return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self) }
            if b == 10 { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(b)
        }
    }
}
