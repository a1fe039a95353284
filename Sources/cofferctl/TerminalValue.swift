import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A value typed at a terminal: read with echo off, so it never shows on
/// the screen (or in a screen recording, or a terminal's scrollback), and,
/// for a value that is being stored, typed twice and compared, as passwd(1)
/// asks for a new password. The prompts go to the terminal itself.
enum TerminalValue {
    /// The terminal's settings while echo is off, to put back on the way out,
    /// also when ^C ends cofferctl in the middle (the handler below).
    nonisolated(unsafe) private static var saved = termios()
    nonisolated(unsafe) private static var echoIsOff: sig_atomic_t = 0

    /// Whether standard input is a terminal (a value piped in is read as it
    /// comes, without prompts).
    static var isTerminal: Bool { isatty(0) == 1 }

    static func read(prompt: String, confirm: Bool) throws(ClientFailure) -> Data {
        var first = try readOnce(prompt: prompt)
        guard confirm else { return first }
        var second = try readOnce(prompt: "Retype it: ")
        defer { second.resetBytes(in: 0..<second.count) }
        guard first == second else {
            first.resetBytes(in: 0..<first.count)
            throw ClientFailure(.usage, "the two values do not match; nothing was sent")
        }
        return first
    }

    private static func readOnce(prompt: String) throws(ClientFailure) -> Data {
        guard tcgetattr(0, &saved) == 0 else { throw ClientFailure(.usage, "cannot read the terminal's settings") }
        var quiet = saved
        quiet.c_lflag &= ~tcflag_t(ECHO)
        signal(SIGINT, restoreAndExit)
        signal(SIGTERM, restoreAndExit)
        signal(SIGHUP, restoreAndExit)
        echoIsOff = 1
        // Echo off first (dropping anything typed ahead), then the prompt:
        // nothing typed after the prompt appears can be echoed or lost.
        guard tcsetattr(0, TCSAFLUSH, &quiet) == 0 else { throw ClientFailure(.usage, "cannot turn the terminal's echo off") }
        say(prompt)
        defer {
            _ = tcsetattr(0, TCSAFLUSH, &saved)
            echoIsOff = 0
            say("\n")
        }
        // One byte at a time up to the newline: nothing after it is taken
        // from the terminal, and no buffer grows past the line.
        var line = Data(capacity: 256)
        var byte: UInt8 = 0
        while true {
            let n = Glibc.read(0, &byte, 1)
            if n < 0, errno == EINTR { continue }
            if n <= 0 || byte == UInt8(ascii: "\n") { break }
            line.append(byte)
        }
        byte = 0
        // One line is all a terminal gives: a pasted PEM key would arrive
        // as its first line, the rest thrown away. Refuse rather than store
        // a piece of it; and a line the terminal cut at its limit.
        var more = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
        if poll(&more, 1, 0) > 0 || line.count >= Self.terminalLineLimit {
            line.resetBytes(in: 0..<line.count)
            throw ClientFailure(.usage, "a value typed at a terminal is one line, shorter than \(Self.terminalLineLimit) bytes; for more, use --from-file or pipe it in")
        }
        return line
    }

    /// The longest line a terminal in canonical mode hands over (N_TTY's
    /// 4096-byte buffer, the newline included).
    static let terminalLineLimit = 4095

    private static func say(_ text: String) {
        let bytes = Array(text.utf8)
        let tty = open("/dev/tty", O_WRONLY | O_CLOEXEC)
        let fd = tty >= 0 ? tty : 2
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if tty >= 0 { close(tty) }
    }

    /// ^C, or the terminal going away, while echo is off: echo back on,
    /// then end as the signal would have.
    private static let restoreAndExit: @convention(c) (Int32) -> Void = { signal in
        if TerminalValue.echoIsOff != 0 { _ = tcsetattr(0, TCSAFLUSH, &TerminalValue.saved) }
        _exit(128 + signal)
    }
}
