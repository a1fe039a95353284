import CofferTestSupport
import Foundation
import Testing

/// The operator's whole path on a host booted with systemd (BootedSystem),
/// from the Debian package, as docs/operations.md tells it: install, first
/// key, sockets and service, real units reading their secrets, reload,
/// restart, the watchdog, the audit, and removal.
@Suite(.serialized) struct BootedSystemTests {
    /// A client any unit can run: one request on coffer.sock, the answer on
    /// stdout (the unit's journal).
    static let client = """
        #!/usr/bin/python3
        import socket, sys
        s = socket.socket(socket.AF_UNIX)
        s.connect('/run/coffer/coffer.sock')
        s.sendall(b'{"id":1,"op":"get","name":"' + sys.argv[1].encode() + b'"}\\n')
        print(s.makefile('rb').readline().decode().strip(), flush=True)
        """

    /// Gets in a loop, a new connection each, for as long as /run/loop.go
    /// exists: counts answers and failures into /run/loop.out.
    static let loop = """
        #!/usr/bin/python3
        import json, os, socket
        ok = failed = 0
        why = []
        while os.path.exists('/run/loop.go'):
            try:
                s = socket.socket(socket.AF_UNIX)
                s.settimeout(30)
                s.connect('/run/coffer/coffer.sock')
                s.sendall(b'{"op":"get","name":"app/x"}\\n')
                line = s.makefile('rb').readline()
                if json.loads(line).get('ok'): ok += 1
                else: failed += 1; why.append(line.decode())
                s.close()
            except Exception as e:
                failed += 1; why.append(repr(e))
            open('/run/loop.progress', 'w').write(str(ok))
        open('/run/loop.out', 'w').write(json.dumps({'ok': ok, 'failed': failed, 'why': why[:5]}))
        """

    static func unit(_ name: String, _ service: String) -> (String, String) {
        ("/etc/systemd/system/\(name)", "[Unit]\nAfter=cofferd.service\n\n[Service]\nType=oneshot\n\(service)\n")
    }

    @Test func theOperatorsPathFromThePackageOnABootedSystem() throws {
        guard try requireRoot(), let package = try BootedSystem.package(), let system = try BootedSystem() else { return }
        let deb = "/root/" + (package as NSString).lastPathComponent
        try FileManager.default.copyItem(atPath: package, toPath: system.root + deb)

        // Install, as docs/operations.md shows first.
        let install = try system.run("apt-get install -y \(deb) 2>&1")
        try #require(install.status == 0, "\(install.stdoutText)")
        #expect(try system.run("stat -c '%U:%G %a' /etc/coffer /etc/coffer/cofferd.json /etc/coffer/policy").stdoutText
            == "root:coffer 750\nroot:coffer 640\nroot:coffer 640\n")
        #expect(try system.run("systemctl is-enabled cofferd.service").stdoutText.contains("disabled"), "nothing starts before a key")

        // The first key, then the sockets and the service.
        let initialize = try system.run("cofferctl init 2>&1")
        #expect(initialize.status == 0 && initialize.stdoutText.contains("cofferd.service loads it"), "\(initialize.stdoutText)")
        let enable = try system.run("systemctl enable --now cofferd.socket cofferd-admin.socket cofferd-credentials.socket cofferd.service 2>&1")
        let journal = try system.run("journalctl -u cofferd --no-pager | tail -20").stdoutText
        try #require(enable.status == 0, "\(enable.stdoutText)\n\(journal)")
        let status = try system.run("cofferctl status --json")
        try #require(status.status == 0, "\(status.stderr)")
        #expect(status.stdoutText.contains(#""mode":"production""#))
        #expect(status.stdoutText.contains(#""sink":"journal""#))

        // Secrets and a policy for real units.
        let credential = uniqueValue("credential"), served = uniqueValue("served")
        #expect(try system.run("printf %s '\(credential)' | cofferctl put web/db").status == 0)
        #expect(try system.run("printf %s '\(served)' | cofferctl put app/x").status == 0)
        let policy = """
            credential coffer-cred.service db web/db
            credential documented-client.service db-password web/db
            allow get on app/** to unit:coffer-dyn.service
            """
        try system.write(policy, to: "/etc/coffer/policy", mode: 0o640)
        #expect(try system.run("chgrp coffer /etc/coffer/policy && systemctl reload cofferd").status == 0)
        try system.write(Self.client, to: "/usr/local/bin/coffer-get", mode: 0o755)
        for (path, text) in [
            Self.unit("coffer-cred.service", "LoadCredential=db:/run/coffer/credentials.sock\nExecStart=/bin/sh -c 'cat \"$CREDENTIALS_DIRECTORY/db\" >/run/coffer-cred.out'"),
            Self.unit("coffer-dyn.service", "DynamicUser=yes\nExecStart=/usr/local/bin/coffer-get app/x"),
            Self.unit("coffer-other.service", "DynamicUser=yes\nExecStart=/usr/local/bin/coffer-get app/x"),
        ] { try system.write(text, to: path) }
        // docs/clients.md's unit, as the page shows it.
        let documented = try DocumentPage("docs/clients.md").section("systemd: LoadCredential=").codeBlocks
        try system.write(try #require(documented.first).joined(separator: "\n") + "\n", to: "/etc/systemd/system/documented-client.service")
        #expect(try system.run("systemctl daemon-reload").status == 0)

        // LoadCredential= from a real unit: the secret as a file.
        let cred = try system.run("systemctl start coffer-cred.service 2>&1 && cat /run/coffer-cred.out")
        #expect(cred.status == 0 && cred.stdoutText == credential, "\(cred.stdoutText)")
        let documentedStart = try system.run("systemctl start documented-client.service 2>&1")
        #expect(documentedStart.status == 0, "docs/clients.md's unit: \(documentedStart.stdoutText)")
        // A unit: rule serves a DynamicUser service, and denies another unit.
        #expect(try system.run("systemctl start coffer-dyn.service coffer-other.service").status == 0)
        let dyn = try system.run("journalctl -u coffer-dyn.service -o cat --no-pager").stdoutText
        #expect(dyn.contains(served), "\(dyn)")
        let other = try system.run("journalctl -u coffer-other.service -o cat --no-pager").stdoutText
        #expect(other.contains("DENIED") && !other.contains(served), "\(other)")
        // Both decisions in the journal with the unit, and the catalog's words.
        let granted = try system.run("journalctl -o json --no-pager COFFER_PEER_UNIT=coffer-dyn.service COFFER_EVENT=get").stdoutText
        #expect(granted.contains(#""COFFER_RESULT":"ok""#), "\(granted)")
        let denied = try system.run("journalctl -o json --no-pager COFFER_PEER_UNIT=coffer-other.service COFFER_EVENT=denied").stdoutText
        #expect(denied.contains(#""COFFER_REASON":"no_grant""#), "\(denied)")
        let explained = try system.run("journalctl -x --no-pager -t cofferd COFFER_EVENT=denied").stdoutText
        #expect(explained.contains("-- Subject:") || explained.contains("░░"), "journalctl -x shows the catalog: \(explained.suffix(600))")

        // A broken policy on reload: refused, the old one stays in force.
        try system.write("allow gett on app/** to unit:coffer-dyn.service\n", to: "/etc/coffer/policy", mode: 0o640)
        #expect(try system.run("chgrp coffer /etc/coffer/policy && systemctl reload cofferd").status == 0)
        let refused = try waitUntil("the refusal is in the journal") {
            try system.run("journalctl -o json --no-pager COFFER_EVENT=reload_failed").stdoutText.contains("line 1: unknown operation")
        }
        #expect(refused)
        #expect(try system.run("systemctl restart coffer-dyn.service && journalctl -u coffer-dyn.service -o cat --no-pager").stdoutText
            .components(separatedBy: served).count - 1 == 2, "still served under the old policy")
        // (A start would refuse the broken file: put the good one back.)
        try system.write(policy, to: "/etc/coffer/policy", mode: 0o640)
        #expect(try system.run("chgrp coffer /etc/coffer/policy && systemctl reload cofferd").status == 0)

        // A restart while a client loops: the sockets stay, no request lost.
        try system.write(Self.loop, to: "/usr/local/bin/coffer-loop", mode: 0o755)
        #expect(try system.run("touch /run/loop.go && (setsid /usr/local/bin/coffer-loop >/dev/null 2>&1 &)").status == 0)
        _ = try waitUntil("the loop is going") { try system.run("cat /run/loop.progress 2>/dev/null").stdoutText.count > 2 }
        let restart = try system.run("systemctl restart cofferd 2>&1")
        let afterRestart = try system.run("journalctl -u cofferd --no-pager | tail -30").stdoutText
        #expect(restart.status == 0, "\(restart.stdoutText)\n\(afterRestart)")
        _ = try waitUntil("the loop goes on after the restart") {
            (Int(try system.run("cat /run/loop.progress").stdoutText) ?? 0) > 200
        }
        #expect(try system.run("rm /run/loop.go").status == 0)
        var loop = ""
        _ = try waitUntil("the loop ends") { loop = try system.run("cat /run/loop.out 2>/dev/null").stdoutText; return !loop.isEmpty }
        #expect(loop.contains(#""failed": 0"#), "\(loop)")

        // A stopped cofferd is restarted by its watchdog.
        try system.write("[Service]\nWatchdogSec=2s\n", to: "/etc/systemd/system/cofferd.service.d/watchdog.conf")
        let again = try system.run("systemctl daemon-reload && systemctl restart cofferd 2>&1")
        let afterAgain = try system.run("journalctl -u cofferd --no-pager | tail -30").stdoutText
        #expect(again.status == 0, "\(again.stdoutText)\n\(afterAgain)")
        let stopped = try system.run("systemctl show -P MainPID cofferd").stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        // (A MainPID of 0 would make `kill -STOP 0` stop the test itself.)
        try #require(Int(stopped).map { $0 > 1 } == true, "no running cofferd to stop: \(stopped)")
        #expect(try system.run("kill -STOP \(stopped)").status == 0)
        let replaced = try waitUntil("the watchdog restarts cofferd", timeout: .seconds(30)) {
            let now = try system.run("systemctl show -P MainPID cofferd").stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
            let active = try system.run("systemctl is-active cofferd").stdoutText.hasPrefix("active")
            return now != stopped && now != "0" && active
        }
        #expect(replaced)
        #expect(try system.run("cofferctl get app/x").stdoutText == served)
        let verify = try system.run("cofferctl audit --verify")
        #expect(verify.status == 0, "\(verify.stdoutText)\(verify.stderr)")

        // Stop and purge: the configuration goes, the secrets and their key stay.
        #expect(try system.run("systemctl stop cofferd.service cofferd.socket cofferd-admin.socket cofferd-credentials.socket").status == 0)
        let purge = try system.run("apt-get purge -y coffer 2>&1")
        #expect(purge.status == 0, "\(purge.stdoutText)")
        #expect(try system.run("test ! -e /etc/coffer && test ! -e /usr/bin/cofferd && test -e /var/lib/coffer/store.json && test -e /etc/credstore.encrypted/coffer-master-key").status == 0)
    }

    /// The checkout this test runs from: the container sees it too (the
    /// overlay is of this machine's whole root).
    static let checkout = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    @Test func theInstallScriptGetsOwnershipRightOnAFreshHost() throws {
        guard try requireRoot(), let package = try BootedSystem.package(), let system = try BootedSystem() else { return }
        // The binaries scripts/package built (no build inside the container).
        let binaries = Self.checkout + "/.build-package/release"
        try #require(FileManager.default.fileExists(atPath: binaries + "/cofferd"), "no packaged build next to \(package)")
        #expect(try system.run("getent group coffer").status != 0, "a fresh host: no coffer group yet")
        // What scripts/install reads, copied in: the booted container mounts
        // a tmpfs on /tmp, which hides a checkout that lives there.
        let source = "/root/coffer-source"
        try FileManager.default.createDirectory(atPath: system.root + source + "/bin", withIntermediateDirectories: true)
        for part in ["scripts", "systemd", "etc", "docs"] {
            try FileManager.default.copyItem(atPath: Self.checkout + "/" + part, toPath: system.root + source + "/" + part)
        }
        for binary in ["cofferd", "cofferctl"] {
            try FileManager.default.copyItem(atPath: binaries + "/" + binary, toPath: system.root + source + "/bin/" + binary)
        }
        let install = try system.run("cd \(source) && BIN_DIR=\(source)/bin PREFIX=/usr scripts/install 2>&1")
        try #require(install.status == 0, "\(install.stdoutText)")
        #expect(try system.run("stat -c '%U:%G %a' /etc/coffer /etc/coffer/cofferd.json /etc/coffer/policy").stdoutText
            == "root:coffer 750\nroot:coffer 640\nroot:coffer 640\n")
        #expect(try system.run("cofferctl init >/dev/null && systemctl enable --now cofferd.socket cofferd-admin.socket cofferd-credentials.socket cofferd.service 2>&1").status == 0)
        let status = try system.run("cofferctl status --json")
        #expect(status.status == 0 && status.stdoutText.contains(#""mode":"production""#), "\(status.stdoutText)\(status.stderr)")
    }
}
