import CofferTestSupport
import Foundation
import Testing

/// Audit events in a real journald (scripts/test's private one).
@Suite(.serialized) struct JournalAuditTests {
    static let catalog: String = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("systemd/coffer.catalog")
        return (try? String(contentsOf: url, encoding: .utf8)) ?? ""
    }()

    @Test func everyDecisionIsInTheJournalWithItsFieldsAndNeverAValue() throws {
        guard try Journal.require(), try requireRoot() else { return }
        let daemon = try DevDaemon(audit: "journal")
        let chain = try daemon.storeID()
        let value = uniqueValue("journal-value"), next = uniqueValue("journal-next"), candidate = uniqueValue("candidate")
        #expect(try daemon.ctl(["put", "app/key"], stdin: value).status == 0)
        #expect(try daemon.ctl(["get", "app/key"]).status == 0)
        #expect(try daemon.ctl(["verify", "app/key"], stdin: candidate).status == 1)
        #expect(try daemon.ctl(["rotate", "app/key"], stdin: next).status == 0)
        #expect(try daemon.ctl(["list"]).status == 0)
        #expect(try daemon.ctl(["describe", "app/key"]).status == 0)
        #expect(try daemon.ctl(["get", "app/missing"]).status == 3)
        let nobody = try OtherUserClient().call(daemon.serviceSocket, [#"{"id":"n1","op":"get","name":"app/key"}"#])
        #expect(errorCode(nobody[0]) == "DENIED")
        #expect(try daemon.ctl(["delete", "app/key"]).status == 0)
        #expect(try daemon.ctl(["status"]).status == 0)
        let watcher = try LineClient(socketPath: daemon.serviceSocket)
        #expect(try watcher.call(#"{"id":"w","op":"watch","names":["app/**"]}"#)["ok"] as? Bool == true)
        #expect(try daemon.ctl(["reload"]).status == 0)
        try "allow gett on x to uid:1\n".write(toFile: daemon.devPath + "/policy", atomically: true, encoding: .utf8)
        #expect(try daemon.ctl(["reload"]).status != 0)
        #expect(try daemon.ctl(["audit"]).status == 0)
        daemon.stop()

        // Every kind of event cofferd has, the audit review's included.
        let kinds = ["started", "put", "get", "verify", "rotate", "list", "describe", "denied", "delete", "status",
                     "watch", "reload", "reload_failed", "audit_review", "stopped"]
        let events = try Journal.waitFor(chain: chain, "every kind of event is in the journal") { events in
            Set(kinds).isSubset(of: Set(events.compactMap { $0["COFFER_EVENT"] }))
        }
        for event in events {
            let kind = event["COFFER_EVENT"] ?? "?"
            #expect(event["SYSLOG_IDENTIFIER"] == "cofferd")
            #expect(Self.catalog.contains("-- \(event["MESSAGE_ID"] ?? "none")\n"), "\(kind): MESSAGE_ID not in the catalog")
            for field in ["PRIORITY", "COFFER_RESULT", "COFFER_SEQ", "COFFER_CHAIN", "COFFER_CHAIN_KEY_ID"] {
                #expect(event[field] != nil, "\(kind) lacks \(field)")
            }
            if !["started", "stopped", "reload"].contains(kind) {
                for field in ["COFFER_PEER_UID", "COFFER_PEER_GID", "COFFER_PEER_PID", "COFFER_LISTENER"] {
                    #expect(event[field] != nil, "\(kind) lacks \(field)")
                }
            }
        }
        let denial = try #require(events.first { $0["COFFER_EVENT"] == "denied" })
        #expect(denial["COFFER_PEER_UID"] == "65534")
        #expect(denial["COFFER_SECRET"] == "app/key")
        #expect(denial["COFFER_REQUEST_ID"] == "n1")
        #expect(denial["PRIORITY"] == "4")
        #expect(events.first { $0["COFFER_EVENT"] == "get" && $0["COFFER_RESULT"] == "not_found" } != nil)
        #expect(events.first { $0["COFFER_EVENT"] == "rotate" }?["COFFER_VERSION"] == "2")

        let everything = try Journal.export()
        for secret in [value, next, candidate] {
            #expect(everything.range(of: Data(secret.utf8)) == nil, "a value reached the journal")
        }
    }

    /// A master-key rotation retires the old key: events stamped before it
    /// still check, with the chain key cofferd keeps, and events after it
    /// are stamped under the new key.
    @Test func theChainStillVerifiesAfterAMasterKeyRotation() throws {
        guard try Journal.require(), try requireRoot() else { return }
        let daemon = try DevDaemon(audit: "journal")
        let chain = try daemon.storeID()
        #expect(try daemon.ctl(["put", "k"], stdin: "v").status == 0)
        #expect(try daemon.ctl(["rotate-master-key"]).status == 0)
        #expect(try daemon.ctl(["get", "k"]).status == 0)
        let events = try Journal.waitFor(chain: chain, "the get after the rotation is in the journal") {
            $0.contains { $0["COFFER_EVENT"] == "get" }
        }
        let keys = Set(events.compactMap { $0["COFFER_CHAIN_KEY_ID"] })
        #expect(keys.count == 2, "the events before the rotation and after it are stamped under the old key and the new")
        let verified = try daemon.ctl(["audit", "--verify"])
        #expect(verified.status == 0, "\(verified.stdoutText) \(verified.stderr)")
        #expect(verified.stdoutText.contains("chain: intact"))
    }

    @Test func theChainVerifiesThenShowsTheGapAnOutageMadeAndRevealsFailClosed() throws {
        guard try Journal.require(), try requireRoot() else { return }
        // cofferd in a mount namespace of its own, so that this test can hide
        // the journal from it alone (nsenter + a tmpfs over the socket's
        // directory), as if journald were gone.
        let daemon = try DevDaemon(launcher: ["/usr/bin/unshare", "--mount", "--propagation", "private"], audit: "journal")
        let chain = try daemon.storeID()
        #expect(try daemon.ctl(["put", "k"], stdin: "v").status == 0)
        #expect(try daemon.ctl(["get", "k"]).status == 0)
        _ = try Journal.waitFor(chain: chain, "the get is in the journal") { $0.contains { $0["COFFER_EVENT"] == "get" } }
        let intact = try daemon.ctl(["audit", "--verify"])
        #expect(intact.status == 0, "\(intact.stdoutText) \(intact.stderr)")
        #expect(intact.stdoutText.contains("chain: intact"))

        let hide = try runProgram("/usr/bin/nsenter", ["-t", "\(daemon.pid)", "-m", "mount", "-t", "tmpfs", "tmpfs", "/run/systemd/journal"])
        try #require(hide.status == 0, "\(hide.stderr)")
        // Reveals fail closed; status says why; a write goes through but its
        // event is lost: that is the gap the chain must show.
        let refused = try daemon.ctl(["get", "k"])
        #expect(refused.status == 6)
        #expect(refused.stderr.contains("UNAVAILABLE"))
        // Every other reveal too: the whole store in plaintext, a new token,
        // a verify verdict; not one byte of a value leaves.
        for command in [["export", "--plaintext"], ["export"], ["token-create", "t"]] {
            let answer = try daemon.ctl(command)
            #expect(answer.status == 6, "\(command): \(answer.stdoutText)")
            #expect(answer.stdout.isEmpty, "\(command) printed something")
        }
        #expect(try daemon.ctl(["verify", "k"], stdin: "v").status == 6)
        let status = try JSONSerialization.jsonObject(with: try daemon.ctl(["status", "--json"]).stdout) as? [String: Any]
        #expect((status?["audit"] as? [String: Any])?["reachable"] as? Bool == false)
        #expect(try daemon.ctl(["put", "k2"], stdin: "w").status == 0)

        let show = try runProgram("/usr/bin/nsenter", ["-t", "\(daemon.pid)", "-m", "umount", "/run/systemd/journal"])
        try #require(show.status == 0, "\(show.stderr)")
        #expect(try daemon.ctl(["get", "k"]).status == 0)
        _ = try Journal.waitFor(chain: chain, "the get after the outage is in the journal") { events in
            events.filter { $0["COFFER_EVENT"] == "get" && $0["COFFER_RESULT"] == "ok" }.count >= 2
        }
        let broken = try daemon.ctl(["audit", "--verify"])
        #expect(broken.status == 1)
        // Each lane's lost numbers show (as a gap, or missing at the lane's
        // end when nothing followed in it), told apart as reported lost:
        // the first event through reports every lane's losses.
        #expect(broken.stdoutText.contains("cofferd reported them lost"), "\(broken.stdoutText)")
        #expect(!broken.stdoutText.contains("removed?"), "\(broken.stdoutText)")
    }

    /// The chain's state is a shared mapping of STATE/audit-chain: what a
    /// lane wrote is in the page cache the moment it is written, so a kill
    /// -9 loses none of it, and the next run carries every lane on from the
    /// file (not from the journal, which it would say in its log).
    @Test func everyLaneCarriesOnAfterKillDashNine() throws {
        guard try Journal.require(), try requireRoot() else { return }
        let first = try DevDaemon(audit: "journal")
        let chain = try first.storeID()
        #expect(try first.ctl(["put", "k"], stdin: "v").status == 0)
        // Each cofferctl is a connection of its own: they land on every
        // event loop, so several lanes have events.
        for _ in 0..<6 { #expect(try first.ctl(["get", "k"]).status == 0) }
        _ = try Journal.waitFor(chain: chain, "the gets are in the journal") { events in
            events.filter { $0["COFFER_EVENT"] == "get" }.count >= 6
        }
        let lanesBefore = try laneSequences(first)
        #expect(lanesBefore.filter { $0 > 0 }.count >= 2, "events in more than one lane: \(lanesBefore)")
        first.stop(SIGKILL)

        let second = try DevDaemon(directory: first.directory, audit: "journal")
        let resumed = try laneSequences(second)
        #expect(zip(resumed, lanesBefore).allSatisfy { $0 >= $1 }, "no lane went back: \(lanesBefore) → \(resumed)")
        for _ in 0..<6 { #expect(try second.ctl(["get", "k"]).status == 0) }
        _ = try Journal.waitFor(chain: chain, "the gets after the restart are in the journal") { events in
            events.filter { $0["COFFER_EVENT"] == "get" }.count >= 12
        }
        let verified = try second.ctl(["audit", "--verify"])
        #expect(verified.status == 0, "\(verified.stdoutText)")
        #expect(verified.stdoutText.contains("chain: intact"), "\(verified.stdoutText)")
        #expect(!second.output.contains("behind the journal"), "the state file, not the journal, carried the chain on")
    }

    func laneSequences(_ daemon: DevDaemon) throws -> [UInt64] {
        let status = try JSONSerialization.jsonObject(with: try daemon.ctl(["status", "--json"]).stdout) as? [String: Any]
        let lanes = (status?["audit"] as? [String: Any])?["lanes"] as? [NSNumber] ?? []
        return lanes.map(\.uint64Value)
    }

    @Test func repeatedReadsAreCoalescedButDenialsAreNot() throws {
        guard try Journal.require(), try requireRoot() else { return }
        let daemon = try DevDaemon(arguments: ["--audit-coalesce", "1"], audit: "journal")
        let chain = try daemon.storeID()
        #expect(try daemon.ctl(["put", "hot"], stdin: "v").status == 0)
        let client = try LineClient(socketPath: daemon.serviceSocket)
        for i in 0..<5 {
            #expect(try client.call(#"{"id":\#(i),"op":"get","name":"hot"}"#)["value"] as? String == "v")
        }
        let denied = try OtherUserClient().call(daemon.serviceSocket, Array(repeating: #"{"op":"get","name":"hot"}"#, count: 3))
        #expect(denied.allSatisfy { errorCode($0) == "DENIED" })
        let events = try Journal.waitFor(chain: chain, "the summary of the repeated gets") { events in
            events.contains { $0["COFFER_EVENT"] == "get" && $0["COFFER_COUNT"] != nil }
        }
        let gets = events.filter { $0["COFFER_EVENT"] == "get" && $0["COFFER_SECRET"] == "hot" }
        #expect(gets.count == 2, "the first get, then one summary")
        #expect(gets.last?["COFFER_COUNT"] == "4")
        #expect(events.filter { $0["COFFER_EVENT"] == "denied" }.count == 3)
    }

    @Test func auditReviewFiltersEvents() throws {
        guard try Journal.require(), try requireRoot() else { return }
        let daemon = try DevDaemon(audit: "journal")
        let chain = try daemon.storeID()
        #expect(try daemon.ctl(["put", "a"], stdin: "1").status == 0)
        #expect(try daemon.ctl(["put", "b"], stdin: "2").status == 0)
        #expect(try daemon.ctl(["get", "a"]).status == 0)
        _ = try OtherUserClient().call(daemon.serviceSocket, [#"{"op":"get","name":"b"}"#])
        _ = try Journal.waitFor(chain: chain, "the denial is in the journal") { $0.contains { $0["COFFER_EVENT"] == "denied" } }

        let onlyA = try daemon.ctl(["audit", "--secret", "a", "--event", "get", "--json"])
        try #require(onlyA.status == 0, "\(onlyA.stderr)")
        let events = (try JSONSerialization.jsonObject(with: onlyA.stdout) as? [String: Any])?["events"] as? [[String: Any]] ?? []
        #expect(events.count == 1)
        #expect(events.first?["secret"] as? String == "a")
        let denials = try daemon.ctl(["audit", "--denied"])
        #expect(denials.status == 0)
        #expect(denials.stdoutText.contains("65534"))
        #expect(!denials.stdoutText.contains("put"))
        let byUID = try daemon.ctl(["audit", "--peer-uid", "65534", "--since=-1h", "--json"])
        let uidEvents = (try JSONSerialization.jsonObject(with: byUID.stdout) as? [String: Any])?["events"] as? [[String: Any]] ?? []
        #expect(!uidEvents.isEmpty && uidEvents.allSatisfy { $0["peer_uid"] as? String == "65534" })
    }

    @Test func aStalledJournalRefusesRevealsInBoundedTimeAndTheRestGoesOn() throws {
        guard try Journal.require(), try requireRoot() else { return }
        let journal = try IsolatedJournal()
        // Its log goes where journald's stream would be under systemd: a
        // socket nobody reads once journald stops.
        let daemon = try DevDaemon.with(config: #"{"audit_send_timeout_ms": 200}"#, launcher: journal.launcher, audit: "journal",
                                        unreadOutput: true)
        #expect(try daemon.ctl(["put", "k"], stdin: "v").status == 0)
        let client = try LineClient(socketPath: daemon.serviceSocket)
        #expect(try client.call(#"{"op":"get","name":"k"}"#)["value"] as? String == "v")

        // journald stops reading: its queue fills, then a send waits its
        // timeout (twice, libsystemd tries a memfd after) and gives up. No
        // get waits longer than that, and the one that met it is refused.
        journal.stop()
        var refused = false
        for _ in 0..<500 where !refused {
            let start = ContinuousClock.now
            let answer = try client.call(#"{"op":"get","name":"k"}"#)
            #expect(ContinuousClock.now - start < .seconds(3), "a get waited \(ContinuousClock.now - start)")
            refused = errorCode(answer) == "UNAVAILABLE"
            #expect(refused || answer["value"] as? String == "v")
        }
        try #require(refused, "no get was refused while journald was stopped: \(daemon.output.suffix(2000))")

        // Stalled: reveals are refused at once, without another wait; what
        // reveals nothing is answered (its event counted lost).
        let start = ContinuousClock.now
        #expect(errorCode(try client.call(#"{"op":"get","name":"k"}"#)) == "UNAVAILABLE")
        #expect(errorCode(try client.call(#"{"op":"verify","name":"k","value":"v"}"#)) == "UNAVAILABLE")
        #expect(ContinuousClock.now - start < .milliseconds(400), "refusals waited \(ContinuousClock.now - start)")
        #expect(try client.call(#"{"op":"ping"}"#)["pong"] as? Bool == true)
        #expect(try client.call(#"{"op":"describe","name":"k"}"#)["name"] as? String == "k")
        // Thousands of refusals do not fill the unread log and stop cofferd:
        // the loss is logged once, not per event.
        let burst = ContinuousClock.now
        for i in 0..<3000 {
            let answer = try client.call(#"{"id":\#(i),"op":"get","name":"k"}"#)
            if errorCode(answer) != "UNAVAILABLE" { Issue.record("get \(i) while stalled: \(answer)"); break }
        }
        #expect(ContinuousClock.now - burst < .seconds(30), "3,000 refusals took \(ContinuousClock.now - burst)")
        #expect(try daemon.ctl(["put", "k2"], stdin: "w").status == 0)
        let status = try JSONSerialization.jsonObject(with: try daemon.ctl(["status", "--json"]).stdout) as? [String: Any]
        #expect((status?["audit"] as? [String: Any])?["stalled"] as? Bool == true)

        // journald reads again: so does cofferd, and the chain shows the
        // events it lost as reported lost.
        journal.resume()
        let back = try waitUntil("gets are served again after journald resumes", timeout: .seconds(15)) {
            try client.call(#"{"op":"get","name":"k"}"#)["value"] as? String == "v"
        }
        #expect(back)
        let verify = try daemon.ctl(["audit", "--verify"])
        #expect(verify.stdoutText.contains("gap:"), "\(verify.stdoutText)")
        #expect(!verify.stdoutText.contains("not reported by cofferd"), "\(verify.stdoutText)")
    }
}
