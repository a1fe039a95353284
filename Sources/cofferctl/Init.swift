import ArgumentParser
import Foundation
import LockedMemory
import Model

/// `cofferctl init`: a new master key, written only as an encrypted systemd
/// credential (systemd-creds(1): TPM2 when the machine has one, else the
/// host key), where the shipped unit's LoadCredentialEncrypted= loads it.
/// The key never touches argv, a plain file, or the terminal.
struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate a master key as an encrypted systemd credential, where cofferd.service loads it.")

    /// Where the shipped unit's LoadCredentialEncrypted= looks.
    static let shippedPath = "/etc/credstore.encrypted/coffer-master-key"

    @Option(help: "Where to write the credential (it must not exist yet).")
    var output = Init.shippedPath

    @Option(name: .customLong("with-key"), help: "systemd-creds --with-key: auto (TPM2 when present, else the host key), host, tpm2, host+tpm2.")
    var withKey = "auto"

    func run() throws {
        try cofferctl.run { () throws(ClientFailure) in
            guard !FileManager.default.fileExists(atPath: output) else {
                throw ClientFailure(.usage, "\(output) exists; refusing to replace a master key (move it away first)")
            }
            try? FileManager.default.createDirectory(
                atPath: (output as NSString).deletingLastPathComponent, withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700])
            var key = Self.newKeyText()
            defer { key.resetBytes(in: 0..<key.count) }
            // The credential file is created 0600 whatever systemd-creds'
            // own default (it follows the umask).
            let previous = umask(0o077)
            defer { umask(previous) }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-creds")
            process.arguments = ["encrypt", "--name=master-key", "--with-key=\(withKey)", "-", output]
            let input = Pipe(), errors = Pipe()
            process.standardInput = input
            process.standardError = errors
            do { try process.run() } catch {
                throw ClientFailure(.failed, "cannot run systemd-creds: \(error.localizedDescription)")
            }
            input.fileHandleForWriting.write(key)
            try? input.fileHandleForWriting.close()
            process.waitUntilExit()
            let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            guard process.terminationStatus == 0 else {
                unlink(output)
                throw ClientFailure(.failed, "systemd-creds could not encrypt the key: \(message)")
            }
            chmod(output, 0o600)
            let shipped = output == Self.shippedPath
            print("""
                wrote the master key as an encrypted credential: \(output)
                \(shipped
                    ? "cofferd.service loads it from there (LoadCredentialEncrypted=master-key:\(output)): start it with\n  systemctl enable --now cofferd.socket cofferd-admin.socket cofferd-credentials.socket cofferd.service"
                    : "cofferd.service loads \(Self.shippedPath); point it at this file instead (systemctl edit cofferd):\n\n[Service]\nLoadCredentialEncrypted=master-key:\(output)")

                Keep a backup of this file and of what decrypts it (the TPM, or /var/lib/systemd/credential.secret).
                """)
        }
    }

    /// 32 random bytes (getrandom(2) through the system generator) as the
    /// hex text cofferd reads: 64 digits and a newline.
    static func newKeyText() -> Data {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        defer { bytes.wipe() }
        // Room for the digits and the newline up front: no growth leaves
        // a copy of the key's text behind.
        var text: [UInt8] = []
        text.reserveCapacity(65)
        Hex.append(bytes, to: &text)
        text.append(UInt8(ascii: "\n"))
        defer { text.wipe() }
        return Data(text)
    }
}
