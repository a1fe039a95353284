import CCofferShims
import Foundation
import LockedMemory
import Syscalls

/// Runs one program for `cofferctl exec` and stays beside it: signals go
/// to it, its end is cofferctl's end, and with an on-change action a watch
/// on the secrets restarts or signals it (Vault Agent's supervisor mode).
///
/// One thread, one poll(2) over a signalfd(2) (the signals are blocked and
/// read as data, so none is lost between two waits) and the watch's
/// socket.
final class ProgramSupervisor {
    static let forwarded: [Int32] = [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH]
    /// How long a program stopped for a restart may take before SIGKILL.
    static let stopGrace: Duration = .seconds(10)

    private let command: [String]
    private let mappings: [SecretMapping]
    private let socket: String
    private let onChange: ChangeAction?
    private var values: SecretValues
    private let files: SecretFiles?
    private var watch: SecretWatch?
    private let signals: OwnedFileDescriptor
    private var child: pid_t = 0
    private var restartPending = false
    private var killAt: ContinuousClock.Instant?

    init(command: [String], mappings: [SecretMapping], socket: String, onChange: ChangeAction?) throws(ClientFailure) {
        self.command = command
        self.mappings = mappings
        self.socket = socket
        self.onChange = onChange
        // The watch first: a change between reading the values and
        // watching would otherwise go unnoticed.
        if onChange != nil { watch = try SecretWatch(socket: socket, names: Set(mappings.map(\.name)).sorted()) }
        values = try SecretValues.fetch(mappings, socket: socket)
        files = mappings.contains(where: \.asFile) ? try SecretFiles() : nil
        do throws(ClientFailure) {
            try files?.write(mappings, from: values)
            // A cofferd that goes away mid-request must not kill cofferctl
            // (and orphan the program): EPIPE instead of SIGPIPE. The
            // program gets SIGPIPE back at its default (spawn).
            Glibc.signal(SIGPIPE, SIG_IGN)
            var mask = sigset_t()
            sigemptyset(&mask)
            for signal in Self.forwarded + [SIGCHLD] { sigaddset(&mask, signal) }
            pthread_sigmask(SIG_BLOCK, &mask, nil)
            let fd = coffer_signalfd(&mask)
            guard fd >= 0 else { throw ClientFailure(.failed, "signalfd: \(String(cString: strerror(errno)))") }
            signals = OwnedFileDescriptor(takingOwnershipOf: fd)
            try spawn()
        } catch {
            files?.remove()
            throw error
        }
    }

    /// Waits on the program, the signals and the watch until the program
    /// ends; then ends cofferctl the same way.
    func runToEnd() -> Never {
        while true {
            if let pending = watch, pending.hasBufferedEvent {
                takeEvent()
                continue
            }
            var fds = [pollfd(fd: signals.rawValue, events: Int16(POLLIN), revents: 0)]
            if let watch { fds.append(pollfd(fd: watch.descriptor, events: Int16(POLLIN), revents: 0)) }
            let waitsForSomething = (onChange != nil && watch == nil) || killAt != nil
            let ready = poll(&fds, nfds_t(fds.count), waitsForSomething ? 250 : -1)
            if ready < 0 {
                if errno == EINTR { continue }
                say("poll failed: \(String(cString: strerror(errno)))")
                finish(status: stopProgram())
            }
            if fds[0].revents & Int16(POLLIN) != 0 { takeSignal() }
            if fds.count > 1, fds[1].revents != 0 { takeEvent() }
            if onChange != nil, watch == nil { reconnect() }
            if let killAt, ContinuousClock.now >= killAt {
                say("\(command[0]) did not stop within \(Self.stopGrace); killing it")
                kill(child, SIGKILL)
                self.killAt = nil
            }
        }
    }

    // MARK: the program

    private func spawn() throws(ClientFailure) {
        var environment = ProcessEnvironment(excluding: Set(mappings.map(\.variable)))
        for mapping in mappings {
            if mapping.asFile, let files {
                environment.add(mapping.variable, Array(files.path(for: mapping).utf8))
            } else {
                environment.add(mapping.variable, values.values[mapping.name]!.bytes)
            }
        }
        defer { environment.wipe() }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in Self.forwarded + [SIGCHLD, SIGPIPE] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let arguments = command.map { strdup($0) }
        defer { for argument in arguments { free(argument) } }
        var pid: pid_t = 0
        let rc = environment.withPointers { envp in
            (arguments + [nil]).withUnsafeBufferPointer { argv in
                posix_spawnp(&pid, command[0], nil, &attributes, argv.baseAddress!, envp)
            }
        }
        guard rc == 0 else { throw ClientFailure(.failed, "cannot run \(command[0]): \(String(cString: strerror(rc)))") }
        child = pid
    }

    /// Stops the program (SIGTERM) and waits for it; its wait status.
    private func stopProgram() -> Int32 {
        kill(child, SIGTERM)
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
        return status
    }

    private func takeSignal() {
        let signal = coffer_signalfd_take(signals.rawValue)
        guard signal > 0 else { return }
        guard signal == SIGCHLD else {
            kill(child, signal)
            return
        }
        var status: Int32 = 0
        guard waitpid(child, &status, WNOHANG) == child else { return }
        guard restartPending else { finish(status: status) }
        restartPending = false
        killAt = nil
        do {
            try spawn()
            say("restarted \(command[0]) with the new values")
        } catch {
            say(error.message)
            finish(status: 1 << 8)
        }
    }

    /// Ends as the program ended: its exit status, or its signal.
    private func finish(status: Int32) -> Never {
        files?.remove()
        values.wipe()
        let signal = status & 0x7f
        guard signal != 0 else { exit((status >> 8) & 0xff) }
        Glibc.signal(signal, SIG_DFL)
        var mask = sigset_t()
        sigemptyset(&mask)
        sigaddset(&mask, signal)
        pthread_sigmask(SIG_UNBLOCK, &mask, nil)
        raise(signal)
        exit(128 + signal)
    }

    // MARK: changes

    private func takeEvent() {
        guard let current = watch else { return }
        do {
            _ = try current.next()
        } catch {
            say("the watch on coffer.sock ended (\(error.message)); trying again")
            watch = nil
            return
        }
        changed()
    }

    private func reconnect() {
        guard let renewed = try? SecretWatch(socket: socket, names: Set(mappings.map(\.name)).sorted()) else { return }
        watch = renewed
        // A change while nothing watched is found by its version.
        changed()
    }

    /// Reads the values again; acts only when a version moved.
    private func changed() {
        guard let onChange, !restartPending else { return }
        let fresh: SecretValues
        do {
            fresh = try SecretValues.fetch(mappings, socket: socket)
        } catch {
            say("cannot read the secrets after a change (\(error.message)); \(command[0]) keeps the values it has")
            return
        }
        guard fresh.versions != values.versions else { return }
        values.wipe()
        values = fresh
        do {
            try files?.write(mappings, from: values)
        } catch {
            say(error.message)
        }
        switch onChange {
        case .restart:
            say("a secret changed; restarting \(command[0])")
            restartPending = true
            killAt = ContinuousClock.now + Self.stopGrace
            kill(child, SIGTERM)
        case .signal(let signal):
            kill(child, signal)
        case .exit:
            say("a secret changed; stopping \(command[0])")
            finish(status: stopProgram())
        }
    }

    private func say(_ message: String) {
        FileHandle.standardError.write(Data("cofferctl: \(message)\n".utf8))
    }
}

/// The program's environment: cofferctl's own, less the variables the
/// secrets take, plus those; every entry in one buffer, wiped after the
/// spawn.
struct ProcessEnvironment {
    private var bytes: [UInt8] = []
    private var starts: [Int] = []

    init(excluding taken: Set<String>) {
        for (key, value) in ProcessInfo.processInfo.environment where !taken.contains(key) {
            add(key, Array(value.utf8))
        }
    }

    mutating func add(_ key: String, _ value: [UInt8]) {
        bytes.reserveWiping(key.utf8.count + value.count + 2)
        starts.append(bytes.count)
        bytes.append(contentsOf: key.utf8)
        bytes.append(UInt8(ascii: "="))
        bytes.append(contentsOf: value)
        bytes.append(0)
    }

    mutating func withPointers<R>(_ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        let starts = self.starts
        return bytes.withUnsafeMutableBytes { raw in
            let base = raw.baseAddress!.assumingMemoryBound(to: CChar.self)
            let pointers: [UnsafeMutablePointer<CChar>?] = starts.map { base + $0 } + [nil]
            return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
        }
    }

    mutating func wipe() { bytes.wipe() }
}
