import ArgumentParser
import Foundation

/// `cofferctl audit`: who read what, when, from cofferd's journal events;
/// `--verify` checks the tamper-evident chain (exit 1 when it is broken).
struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Review audit events from the journal, or verify their chain (--verify).",
        discussion: "Exit status with --verify: 0 when the chain is intact, 1 when it shows gaps, edits or restarts."
    )

    @ParentCommand var root: CofferCtl
    var connection: ConnectionOptions { root.connection }
    @Option(help: "Only events about this secret.") var secret: String?
    @Option(name: .customLong("peer-uid"), help: "Only events of this caller uid.") var peerUID: UInt32?
    @Option(help: "Only events of callers in this systemd unit.") var unit: String?
    @Option(help: "Only this event type (get, verify, put, denied, …).") var event: String?
    @Flag(help: "Only denials.") var denied = false
    @Option(help: "Only events since this time: seconds since the epoch, or relative as --since=-1h (also -30m, -2d, -90s).") var since: String?
    @Option(help: "At most this many events (the newest).") var limit: Int?
    @Flag(help: "Check the chain: sequence gaps, edited events, restarts.") var verify = false

    func run() throws {
        try cofferctl.run { () throws(ClientFailure) in
            var request: [String: Any] = ["op": "audit"]
            if let secret { request["secret"] = secret }
            if let peerUID { request["peer_uid"] = peerUID }
            if let unit { request["unit"] = unit }
            if let event { request["event"] = event }
            if denied { request["denied"] = true }
            if let since { request["since"] = try Self.epochSeconds(since) }
            if let limit { request["limit"] = limit }
            if verify { request["verify"] = true }
            let answer = try connection.perform(request)
            if !connection.json {
                if verify, let report = answer["verify"] {
                    Self.printReport(report)
                } else {
                    let rows = (answer["events"]?.array ?? []).map { e in
                        [Self.time(e["time_usec"]), text(e["event"]), text(e["result"]), text(e["secret"]),
                         text(e["peer_uid"]), text(e["peer_unit"]), text(e["count"]), text(e["seq"]),
                         e["authentic"]?.bool == true ? "yes" : "NO"]
                    }
                    printTable(["TIME", "EVENT", "RESULT", "SECRET", "UID", "UNIT", "COUNT", "SEQ", "MAC OK"], rows)
                }
            }
            if verify, answer["verify"]?["intact"]?.bool != true {
                throw ClientFailure(.noMatch, "the audit chain is not intact")
            }
        }
    }

    static func printReport(_ report: JSONAnswer) {
        let intact = report["intact"]?.bool == true
        let lanes = report["lanes"]?.array ?? []
        print("chain: \(intact ? "intact" : "BROKEN"), \(text(report["checked"])) events in \(lanes.count) lane(s)")
        for lane in lanes {
            print("lane \(text(lane["lane"])): seq \(text(lane["first_seq"]))…\(text(lane["last_seq"]))")
        }
        func why(_ reported: Bool) -> String {
            reported ? " (cofferd reported them lost: the journal was unreachable)" : " (not reported by cofferd: removed?)"
        }
        for gap in report["gaps"]?.array ?? [] {
            print("gap: \(text(gap["missing"])) event(s) missing in lane \(text(gap["lane"])) after seq \(text(gap["after_seq"]))"
                + why(gap["reported_lost"]?.bool == true))
        }
        for lane in lanes {
            if let missing = lane["missing_at_end"]?.integer, missing > 0 {
                print("missing at the end of lane \(text(lane["lane"])): \(missing) event(s) cofferd sent are not in the journal"
                    + why(lane["missing_at_end_reported_lost"]?.bool == true))
            }
        }
        for mark in report["edits"]?.array ?? [] {
            print("edited or forged: lane \(text(mark["lane"])) seq \(text(mark["seq"]))")
        }
        for mark in report["restarts"]?.array ?? [] {
            print("chain restarted: lane \(text(mark["lane"])) at seq \(text(mark["seq"])) (state lost)")
        }
        for (list, count) in [("gaps", "gap_count"), ("edits", "edit_count"), ("restarts", "restart_count")] {
            let listed = report[list]?.array.count ?? 0
            if let all = report[count]?.integer, all > listed { print("\(list): \(all - Int64(listed)) more not listed") }
        }
        if let malformed = report["malformed"]?.integer, malformed > 0 { print("events without chain fields: \(malformed)") }
    }

    static func time(_ value: JSONAnswer?) -> String {
        guard let text = value?.description, let usec = Double(text) else { return "" }
        return ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: usec / 1_000_000))
    }

    /// `1700000000`, or relative: `-90s`, `-30m`, `-2h`, `-1d`.
    static func epochSeconds(_ text: String) throws(ClientFailure) -> UInt64 {
        if let absolute = UInt64(text) { return absolute }
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        guard text.hasPrefix("-"), let unit = text.last.flatMap({ units[$0] }),
              let amount = Double(text.dropFirst().dropLast()), amount >= 0
        else { throw ClientFailure(.usage, "--since takes seconds since the epoch or -N[s|m|h|d]") }
        return UInt64(max(0, Date().timeIntervalSince1970 - amount * unit))
    }
}
