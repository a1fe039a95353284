import CofferTestSupport
import Foundation
import Testing

/// The policy file on the live daemon: users, groups and units as the
/// kernel reports them, reload good and broken.
@Suite(.serialized) struct PolicyEndToEndTests {
    static let unit = "coffer-e2e-web.service"

    /// A dev instance whose policy file holds `policy` before it starts.
    func daemon(policy: String) throws -> DevDaemon {
        try DevDaemon.with(policy: policy)
    }

    @Test func nobodyIsDeniedAndLearnsNoNames() throws {
        guard try requireRoot() else { return }
        let daemon = try daemon(policy: "allow get,list on team/* to gid:4242\n")
        _ = try daemon.ctl(["put", "team/a"], stdin: uniqueValue("a"))
        let answers = try OtherUserClient().call(daemon.serviceSocket, [
            #"{"id":1,"op":"get","name":"team/a"}"#,
            #"{"id":2,"op":"get","name":"team/missing"}"#,
            #"{"id":3,"op":"describe","name":"team/a"}"#,
            #"{"id":4,"op":"list"}"#,
            #"{"id":5,"op":"watch","names":["team/*"]}"#,
        ])
        #expect(answers.map(errorCode) == ["DENIED", "DENIED", "DENIED", "DENIED", "DENIED"])
        #expect(!String(describing: answers).contains("team/a"))
    }

    @Test func groupRulesUseSupplementaryGroups() throws {
        guard try requireRoot() else { return }
        let daemon = try daemon(policy: "allow get,list on team/* to gid:4242\n")
        let value = uniqueValue("team")
        _ = try daemon.ctl(["put", "team/a"], stdin: value)
        _ = try daemon.ctl(["put", "other/b"], stdin: uniqueValue("b"))
        let member = OtherUserClient(groups: [4242])
        let answers = try member.call(daemon.serviceSocket, [
            #"{"id":1,"op":"get","name":"team/a"}"#,
            #"{"id":2,"op":"get","name":"other/b"}"#,
            #"{"id":3,"op":"list"}"#,
        ])
        #expect(answers[0]["value"] as? String == value)
        #expect(errorCode(answers[1]) == "DENIED")
        #expect(listedNames(answers[2]) == ["team/a"])
    }

    @Test func unitRulesFollowTheCallersCgroup() throws {
        guard try requireRoot(), let cgroup = try CgroupUnit(unit: Self.unit) else { return }
        let daemon = try daemon(policy: "allow get on web/* to unit:coffer-e2e-*.service\n")
        let value = uniqueValue("web")
        _ = try daemon.ctl(["put", "web/key"], stdin: value)
        let request = #"{"id":1,"op":"get","name":"web/key"}"#

        let inUnit = try OtherUserClient(cgroup: cgroup).call(daemon.serviceSocket, [request])
        #expect(inUnit[0]["value"] as? String == value)
        #expect(daemon.output.contains("COFFER_PEER_UNIT=\(Self.unit)"))

        let outside = try OtherUserClient().call(daemon.serviceSocket, [request])
        #expect(errorCode(outside[0]) == "DENIED")
    }

    @Test func reloadPutsAGoodPolicyInForceAndRefusesABrokenOne() throws {
        guard try requireRoot() else { return }
        let daemon = try daemon(policy: "# nothing granted yet\n")
        let policyPath = daemon.devPath + "/policy"
        let value = uniqueValue("shared")
        _ = try daemon.ctl(["put", "shared/motd"], stdin: value)
        let get = #"{"id":1,"op":"get","name":"shared/motd"}"#
        // An open connection survives every reload below.
        let kept = try LineClient(socketPath: daemon.serviceSocket)
        #expect(try kept.call(#"{"id":"k1","op":"ping"}"#)["ok"] as? Bool == true)

        #expect(errorCode(try OtherUserClient().call(daemon.serviceSocket, [get])[0]) == "DENIED")

        try "allow get on shared/* to uid:65534\n".write(toFile: policyPath, atomically: true, encoding: .utf8)
        let reload = try daemon.ctl(["reload"])
        #expect(reload.status == 0, "\(reload.stderr)")
        #expect(try OtherUserClient().call(daemon.serviceSocket, [get])[0]["value"] as? String == value)

        try "allow get on shared/* to uid:65534\nallow gett on x to uid:1\n".write(toFile: policyPath, atomically: true, encoding: .utf8)
        let broken = try daemon.ctl(["reload"])
        #expect(broken.status != 0)
        #expect(broken.stderr.contains("line 2"), "\(broken.stderr)")
        #expect(broken.stderr.contains("gett"))
        #expect(try OtherUserClient().call(daemon.serviceSocket, [get])[0]["value"] as? String == value)
        #expect(daemon.output.contains("COFFER_EVENT=reload_failed"))

        // SIGHUP does the same as reload: this file takes the grant away.
        try "# grant withdrawn\n".write(toFile: policyPath, atomically: true, encoding: .utf8)
        kill(daemon.pid, SIGHUP)
        let withdrawn = try waitUntil("the grant is withdrawn after SIGHUP") {
            errorCode(try OtherUserClient().call(daemon.serviceSocket, [get])[0]) == "DENIED"
        }
        #expect(withdrawn)
        #expect(try kept.call(#"{"id":"k2","op":"ping"}"#)["ok"] as? Bool == true)
    }

    @Test func theAdminSocketTurnsAwayNonOperators() throws {
        guard try requireRoot() else { return }
        let daemon = try daemon(policy: "allow get on a/* to uid:65534\n")
        // Make the socket reachable so that the daemon, not the file mode,
        // is what refuses.
        chmod(daemon.adminSocket, 0o666)
        let answers = try OtherUserClient().call(daemon.adminSocket, [#"{"id":1,"op":"status"}"#])
        #expect(errorCode(answers[0]) == "DENIED")
        #expect(daemon.output.contains("COFFER_REASON=not_an_operator"))
    }

    @Test func anOperatorGroupReachesTheAdminSocket() throws {
        guard try requireRoot() else { return }
        let daemon = try DevDaemon.with(policy: "operator gid:4243\n", config: #"{"admin_socket_group": "4243"}"#)
        let info = try FileManager.default.attributesOfItem(atPath: daemon.adminSocket)
        #expect(info[.posixPermissions] as? Int == 0o660)
        #expect((info[.groupOwnerAccountID] as? NSNumber)?.intValue == 4243)
        let answers = try OtherUserClient(gid: 4243).call(daemon.adminSocket, [#"{"id":1,"op":"status"}"#])
        #expect(answers[0]["ok"] as? Bool == true)
    }

    @Test func aRuleGrantingPutDoesNotLetItsHolderChooseReaders() throws {
        guard try requireRoot() else { return }
        let daemon = try daemon(policy: "allow put on app/* to uid:65534\n")
        chmod(daemon.adminSocket, 0o666)
        let answers = try OtherUserClient().call(daemon.adminSocket, [
            #"{"id":1,"op":"put","name":"app/x","value":"v"}"#,
            #"{"id":2,"op":"put","name":"app/x","value":"w","principals":["uid:65534"]}"#,
        ])
        #expect(answers[0]["ok"] as? Bool == true)
        #expect(errorCode(answers[1]) == "DENIED")
    }

    @Test func anOperatorMayAdminister() throws {
        guard try requireRoot() else { return }
        let daemon = try daemon(policy: "operator uid:65534\n")
        chmod(daemon.adminSocket, 0o666)
        let answers = try OtherUserClient().call(daemon.adminSocket, [
            #"{"id":1,"op":"put","name":"ops/x","value":"v"}"#,
            #"{"id":2,"op":"get","name":"ops/x"}"#,
        ])
        #expect(answers[0]["ok"] as? Bool == true)
        #expect(answers[1]["value"] as? String == "v")
    }
}

/// Polls `condition` until it holds or `timeout` passes; false on timeout.
func waitUntil(_ what: String, timeout: Duration = .seconds(20), _ condition: () throws -> Bool) throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        Thread.sleep(forTimeInterval: 0.05)
    }
    Issue.record("timed out waiting until \(what)")
    return false
}
