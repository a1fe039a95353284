import CofferCore
import JSON
import Model

/// `watch`: subscribes the connection to changes of the names (or globs)
/// in `names`. The answer comes first; after it, one event line per change
/// the caller may read: `{"id":…,"event":"put","name":…,"version":…,
/// "stage":"current"}`, never a value.
struct WatchHandler: OperationHandler {
    let changes: ChangeFeed
    let operation = Operation.watch
    let members: Set<String> = ["names"]
    static let maxPatterns = 32

    static func patterns(of request: Request) throws(CofferError) -> [NamePattern] {
        guard let texts = try request.strings("names", max: Self.maxPatterns), !texts.isEmpty else {
            throw CofferError(.badRequest, "missing 'names': the names or globs to watch")
        }
        var patterns: [NamePattern] = []
        for text in texts {
            patterns.append(try NamePattern.validated(text))
        }
        return patterns
    }

    /// A name given in full must be one the caller may watch (the
    /// dispatcher asks the policy); a glob only ever yields the names the
    /// policy lets it see (ChangeFeed asks per change).
    func targets(of request: Request) throws(CofferError) -> [SecretName] {
        try Self.patterns(of: request).filter(\.isLiteral).map { pattern throws(CofferError) in try SecretName(pattern.pattern) }
    }

    func handle(_ request: Request, context: RequestContext) async throws -> HandlerOutcome {
        guard let outlet = context.watchOutlet else {
            throw CofferError(.badRequest, "watch needs a connection of its own")
        }
        let patterns = try Self.patterns(of: request)
        guard outlet.claim() else {
            throw CofferError(.conflict, "this connection is already watching; open another connection for another watch")
        }
        let id = context.requestID
        let token = changes.subscribe(ChangeFeed.Subscription(
            patterns: patterns, peer: context.peer, listener: context.listener,
            deliver: { change in outlet.deliver(WatchEventLine.encode(change, requestID: id)) }
        ))
        outlet.adopt(token, from: changes)
        return HandlerOutcome([("watching", .array(patterns.map { .string($0.pattern) }))])
    }
}

/// The line a watcher receives for a change.
enum WatchEventLine {
    static func encode(_ change: SecretChange, requestID: RequestID) -> [UInt8] {
        var w = JSONWriter()
        w.raw("{\"id\":")
        w.raw(requestID.json)
        w.raw(",\"event\":")
        w.string(change.event.rawValue)
        if let name = change.name {
            w.raw(",\"name\":")
            w.string(name.rawValue)
        }
        if let version = change.version {
            w.raw(",\"version\":")
            w.integer(version)
        }
        if let stage = change.stage {
            w.raw(",\"stage\":")
            w.string(stage)
        }
        w.raw("}\n")
        return w.bytes
    }
}
