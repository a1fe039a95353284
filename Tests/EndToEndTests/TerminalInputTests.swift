import CofferTestSupport
import Foundation
import Testing

/// A value typed at a terminal (a real pty): never echoed, and typed twice
/// to be stored (docs/operator-guide.md, "cofferctl").
@Suite struct TerminalInputTests {
    /// Runs cofferctl on a pty, answering each prompt with the next of
    /// `lines` (written in one go, newline added); returns its exit status
    /// and everything the terminal showed.
    static let typist = """
        import json, os, pty, select, sys
        lines = sys.argv[1].split('\\x1e')
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(sys.argv[2], sys.argv[2:])
        shown = b''
        def more(wait=5):
            global shown
            r, _, _ = select.select([fd], [], [], wait)
            if not r: return False
            try: chunk = os.read(fd, 4096)
            except OSError: return False
            shown += chunk
            return bool(chunk)
        for line in lines:
            prompts = shown.count(b': ')
            while shown.count(b': ') == prompts:
                if not more(): break
            os.write(fd, line.encode() + b'\\n')
        while more(): pass
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"status": os.waitstatus_to_exitcode(status), "shown": shown.decode(errors='replace')}))
        """

    func type(_ lines: [String], into arguments: [String]) throws -> (status: Int, shown: String) {
        let result = try runProgram("/usr/bin/python3", ["-c", Self.typist, lines.joined(separator: "\u{1e}"), binaryPath("cofferctl")] + arguments)
        try #require(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        return (object["status"] as? Int ?? -1, object["shown"] as? String ?? "")
    }

    @Test func aValueTypedTwiceIsStoredAndNeverShown() throws {
        let daemon = try DevDaemon()
        let value = uniqueValue("typed")
        let put = try type([value, value], into: ["put", "--dev", daemon.devPath, "app/typed"])
        #expect(put.status == 0, "\(put.shown)")
        #expect(put.shown.contains("Value for app/typed:") && put.shown.contains("Retype it:"))
        #expect(!put.shown.contains(value), "the value was echoed: \(put.shown)")
        #expect(try daemon.ctl(["get", "app/typed"]).stdoutText == value)

        let verify = try type([value], into: ["verify", "--dev", daemon.devPath, "app/typed"])
        #expect(verify.status == 0 && verify.shown.contains("match") && !verify.shown.contains("Retype"))
        #expect(!verify.shown.contains(value))
    }

    @Test func twoValuesThatDifferStoreNothing() throws {
        let daemon = try DevDaemon()
        let put = try type([uniqueValue("one"), uniqueValue("two")], into: ["put", "--dev", daemon.devPath, "app/typo"])
        #expect(put.status != 0)
        #expect(put.shown.contains("do not match"))
        #expect(try daemon.ctl(["get", "app/typo"]).status == 3, "nothing was stored")
    }

    @Test func aPastedMultiLineValueIsRefusedNotCut() throws {
        let daemon = try DevDaemon()
        // Two lines in one go, as a paste of a PEM key arrives.
        let put = try type(["-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC"], into: ["put", "--dev", daemon.devPath, "app/pem"])
        #expect(put.status != 0)
        #expect(put.shown.contains("--from-file"), "\(put.shown)")
        #expect(try daemon.ctl(["get", "app/pem"]).status == 3, "no piece of it was stored")
    }
}
