import CLibPQ
import LockedMemory
import Model
#if canImport(Glibc)
import Glibc
#endif

/// One libpq connection, owned: PQfinish runs exactly once, in deinit,
/// also when PQconnectdb returned a connection that failed (libpq(3): "the
/// application should call PQfinish to free the memory used by the PGconn
/// object" even after a failed connect).
///
/// Not thread-safe (a PGconn is not): the mirror uses each connection from
/// one thread at a time.
public final class PostgresConnection {
    private let connection: OpaquePointer

    /// Connects with `conninfo` (a keyword/value string or a URI) and, when
    /// given, `password` as a separate parameter (PQconnectdbParams with
    /// expand_dbname), so it is never spliced into a string. The error
    /// never holds either.
    public init(conninfo: String, password: LockedBytes? = nil) throws(MirrorError) {
        let given = try Self.parse(conninfo)
        var keywords = ["dbname", "options", "client_encoding"]
        // Rows are read as text: hex bytea and UTF-8, whatever the server's
        // or the role's defaults say.
        var values = [conninfo, "-c bytea_output=hex", "UTF8"]
        if given["connect_timeout"] == nil {
            keywords.append("connect_timeout")
            values.append("10")
        }
        // Over TCP, the server is authenticated unless the operator says
        // otherwise: libpq's own default (`prefer`) would take a plaintext
        // or unverified connection from whoever answers on the address.
        if given["sslmode"] == nil, Self.mayUseTCP(given) {
            keywords.append("sslmode")
            values.append("verify-full")
        }
        if password != nil { keywords.append("password") }
        // The password goes to libpq straight from locked memory (it is
        // NUL-terminated there): no String or array copy of it is made.
        let made = withCStrings(keywords) { k in
            withCStrings(values, then: password) { v in PQconnectdbParams(k, v, 1) }
        }
        guard let connection = made else {
            throw MirrorError(.connection, "libpq could not allocate a connection")
        }
        self.connection = connection
        // libpq prints server NOTICEs on stderr by default; cofferd's
        // stderr is its log, and notices (e.g. "already exists, skipping")
        // are not news to an operator.
        _ = PQsetNoticeProcessor(connection, { _, _ in }, nil)
        guard PQstatus(connection) == CONNECTION_OK else {
            // self is fully initialised: deinit runs PQfinish.
            throw MirrorError(.connection, "cannot connect to PostgreSQL", detail: lastError)
        }
    }

    deinit {
        PQfinish(connection)
    }

    /// Whether a server answers at `conninfo` and accepts connections
    /// (PQpingParams: no login, no password needed, nothing is read). How
    /// the mirror knows, while it backs off, that the server is back.
    public static func serverAnswers(conninfo: String) -> Bool {
        let keywords = ["dbname", "connect_timeout"]
        let values = [conninfo, "2"]
        let status = withCStrings(keywords) { k in withCStrings(values) { v in PQpingParams(k, v, 1) } }
        return status == PQPING_OK
    }

    /// The conninfo's keywords, checked before connecting: libpq's own
    /// parse errors quote the text, which could hold a password, so they
    /// are not passed on; and a password in it is refused outright (it
    /// belongs in postgres.password_file, never in a string that is
    /// configured, shown and copied about).
    public static func parse(_ conninfo: String) throws(MirrorError) -> [String: String] {
        var message: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(conninfo, &message) else {
            if let message { PQfreemem(message) }
            throw MirrorError(.connection, "the PostgreSQL conninfo does not parse (its text is not repeated here: it may hold a password)")
        }
        defer { PQconninfoFree(options) }
        var found: [String: String] = [:]
        var option = options
        while let keyword = option.pointee.keyword {
            defer { option += 1 }
            guard let value = option.pointee.val else { continue }
            // libpq marks the options that are secrets with dispchar "*"
            // (password, sslpassword, and any it adds later): none may be
            // in a string that is configured, shown and copied about. The
            // value is neither copied nor repeated.
            if option.pointee.dispchar.map({ $0.pointee == CChar(UInt8(ascii: "*")) }) == true {
                guard value.pointee == 0 else {
                    throw MirrorError(.connection, "the PostgreSQL conninfo holds a \(String(cString: keyword)): put the password in postgres.password_file or the postgres-password credential; a client key's passphrase has no place in cofferd's configuration")
                }
                continue
            }
            found[String(cString: keyword)] = String(cString: value)
        }
        return found
    }

    /// Whether libpq may connect over TCP with these options: a `hostaddr`,
    /// a `host` that is not a socket directory (`/…`) or abstract socket
    /// (`@…`), or no host at all (PGHOST or a service file may name one).
    static func mayUseTCP(_ given: [String: String]) -> Bool {
        if let address = given["hostaddr"], !address.isEmpty { return true }
        guard let hosts = given["host"], !hosts.isEmpty else { return true }
        return hosts.split(separator: ",", omittingEmptySubsequences: false).contains { host in
            !(host.hasPrefix("/") || host.hasPrefix("@"))
        }
    }

    var lastError: String {
        PQerrorMessage(connection).map { String(cString: $0) }?.trimmingSuffixNewlines ?? ""
    }

    public var isHealthy: Bool { PQstatus(connection) == CONNECTION_OK }

    /// The socket, to wait for LISTEN notifications with poll(2).
    public var socket: Int32 { PQsocket(connection) }

    /// Runs one statement with parameters (PQexecParams: the values travel
    /// apart from the SQL text, never interpolated into it). Text values go
    /// as text, bytes as binary bytea; results come back as text.
    @discardableResult
    public func execute(_ sql: String, _ parameters: [PostgresValue] = []) throws(MirrorError) -> PostgresResult {
        var formats: [Int32] = []
        var lengths: [Int32] = []
        var buffers: [[CChar]?] = []
        formats.reserveCapacity(parameters.count)
        for parameter in parameters {
            switch parameter {
            case .null:
                buffers.append(nil); lengths.append(0); formats.append(0)
            case .text(let text):
                buffers.append(Array(text.utf8CString)); lengths.append(0); formats.append(0)
            case .encodedText(let bytes):
                var buffer = [CChar](repeating: 0, count: bytes.count + 1)
                bytes.withUnsafeBytes { source in buffer.withUnsafeMutableBytes { $0.copyMemory(from: source) } }
                buffers.append(buffer); lengths.append(0); formats.append(0)
            case .integer(let value):
                buffers.append(Array(String(value).utf8CString)); lengths.append(0); formats.append(0)
            case .bytes(let bytes):
                buffers.append(bytes.map { CChar(bitPattern: $0) }); lengths.append(Int32(bytes.count)); formats.append(1)
            }
        }
        let result = withPointers(to: buffers) { pointers in
            PQexecParams(connection, sql, Int32(parameters.count), nil, pointers, lengths, formats, 0)
        }
        guard let result else { throw MirrorError(.query, "PostgreSQL did not answer", detail: lastError) }
        let owned = PostgresResult(result)
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK:
            return owned
        default:
            let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) } ?? ""
            throw MirrorError(state == "23505" ? .uniqueViolation : .query, "a PostgreSQL statement failed (SQLSTATE \(state))",
                              detail: lastError)
        }
    }

    /// Runs `body` in a transaction: COMMIT when it returns, ROLLBACK when
    /// it throws.
    public func transaction<R>(_ body: () throws(MirrorError) -> R) throws(MirrorError) -> R {
        try transaction(beginning: "BEGIN", body)
    }

    private func transaction<R>(beginning begin: String, _ body: () throws(MirrorError) -> R) throws(MirrorError) -> R {
        try execute(begin)
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            _ = try? execute("ROLLBACK")
            throw error
        }
    }

    /// Runs `body` in one read-only REPEATABLE READ transaction: its
    /// statements see one snapshot of the database, so what one of them
    /// measured (a secret's size) is what the next one reads.
    public func snapshot<R>(_ body: () throws(MirrorError) -> R) throws(MirrorError) -> R {
        try transaction(beginning: "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", body)
    }

    /// Reads what arrived on the socket and returns the pending NOTIFY
    /// channel names (LISTEN).
    public func notifications() throws(MirrorError) -> [String] {
        guard PQconsumeInput(connection) == 1 else { throw MirrorError(.connection, "the PostgreSQL connection broke", detail: lastError) }
        var channels: [String] = []
        // Drained whatever the count (each is freed at once); only the
        // first few names are kept, so a flood of NOTIFY costs no memory.
        while let notify = PQnotifies(connection) {
            if channels.count < 64 { channels.append(String(cString: notify.pointee.relname)) }
            PQfreemem(notify)
        }
        return channels
    }
}

/// A statement's parameter.
public enum PostgresValue: Sendable, Equatable {
    case null
    case text(String)
    /// Text that is already UTF-8 bytes (no NUL inside): array literals.
    case encodedText([UInt8])
    case integer(Int64)
    case bytes([UInt8])
}

/// A PGresult, owned: PQclear runs exactly once.
public final class PostgresResult {
    private let result: OpaquePointer

    init(_ result: OpaquePointer) {
        self.result = result
    }

    deinit {
        PQclear(result)
    }

    public var rowCount: Int { Int(PQntuples(result)) }

    public func isNull(_ row: Int, _ column: Int) -> Bool {
        PQgetisnull(result, Int32(row), Int32(column)) == 1
    }

    public func text(_ row: Int, _ column: Int) -> String? {
        guard !isNull(row, column), let value = PQgetvalue(result, Int32(row), Int32(column)) else { return nil }
        return String(cString: value)
    }

    public func integer(_ row: Int, _ column: Int) -> Int64? {
        text(row, column).flatMap { Int64($0) }
    }

    /// A bytea column in text form (`\x` then hex, PostgreSQL's default
    /// bytea_output).
    public func bytes(_ row: Int, _ column: Int) -> [UInt8]? {
        guard !isNull(row, column), let value = PQgetvalue(result, Int32(row), Int32(column)) else { return nil }
        let count = Int(PQgetlength(result, Int32(row), Int32(column)))
        let raw = UnsafeRawBufferPointer(start: value, count: count)
        guard count >= 2, raw[0] == UInt8(ascii: "\\"), raw[1] == UInt8(ascii: "x") else { return nil }
        return Hex.decode(String(decoding: raw[2...], as: UTF8.self))
    }
}

/// A NULL-terminated array of C strings that live for the call, then
/// `last` (a NUL-terminated string in locked memory) when given.
private func withCStrings<R>(
    _ strings: [String], then last: LockedBytes? = nil, _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R
) -> R {
    let buffers: [[CChar]?] = strings.map { Array($0.utf8CString) }
    return withPointers(to: buffers) { pointers in
        (last?.withUnsafeBytes { $0.baseAddress?.assumingMemoryBound(to: CChar.self) }).map { tail in
            (pointers + [tail, nil]).withUnsafeBufferPointer { body($0.baseAddress!) }
        } ?? (pointers + [nil]).withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}

/// Hands libpq an array of C string pointers that live for the call.
private func withPointers<R>(to buffers: [[CChar]?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    var pointers: [UnsafePointer<CChar>?] = []
    pointers.reserveCapacity(buffers.count)
    func next(_ index: Int) -> R {
        guard index < buffers.count else { return body(pointers) }
        guard let buffer = buffers[index] else {
            pointers.append(nil)
            return next(index + 1)
        }
        return buffer.withUnsafeBufferPointer { p in
            pointers.append(p.baseAddress)
            return next(index + 1)
        }
    }
    return next(0)
}

extension String {
    var trimmingSuffixNewlines: String {
        var s = self
        while s.last == "\n" || s.last == "\r" { s.removeLast() }
        return s
    }
}
