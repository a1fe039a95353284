import CofferCore
import Model

/// `put`: stores a new version of a secret (the first, or the next) and
/// answers once it is durable on disk. `principals` and `scope` set the
/// secret's own access (docs/policy.md, "Per-secret principals").
struct PutHandler: LoopBoundOperationHandler {
    let writes: any SecretWrites
    /// Where user and group names are resolved (`SecretAccessRequest`,
    /// `AccountLookups`).
    let lookups: any BlockingWork
    let operation = Operation.put
    let members = NewVersion.members.union(["principals", "scope"])

    func setsAccess(_ request: Request) -> Bool {
        request.has("principals") || request.has("scope")
    }

    func handle(_ request: Request, context: RequestContext) async throws -> HandlerOutcome {
        // user:NAME and group:NAME resolve through NSS (getpwnam_r(3)),
        // which may ask a directory over the network (LDAP, sssd): never
        // on the event loop this handler runs on, nor on the blocking pool.
        let access = try SecretAccessRequest.namesAccounts(request)
            ? try await lookups.run { try SecretAccessRequest.parse(request) }
            : try SecretAccessRequest.parse(request)
        return try await NewVersion(existing: .optional, event: .put)
            .commit(request, access: access, context: context, writes: writes)
    }
}

/// `rotate`: a new version of an existing secret becomes current and the
/// old current previous; with `pending: true` it is staged instead, for
/// `promote`.
struct RotateHandler: LoopBoundOperationHandler {
    let writes: any SecretWrites
    let operation = Operation.rotate
    let members = NewVersion.members.union(["pending"])

    func handle(_ request: Request, context: RequestContext) async throws -> HandlerOutcome {
        try await NewVersion(existing: .required, event: .rotate, pending: try request.bool("pending") ?? false)
            .commit(request, access: nil, context: context, writes: writes)
    }
}

/// put's `principals` (`["unit:web.service", "user:alice"]`) and `scope`
/// (`{"all": true}` or `{"sockets": ["credentials"]}`). nil when neither is
/// given (a put keeps what the secret had).
enum SecretAccessRequest {
    static let maxPrincipals = 32

    /// Whether `principals` names a user or a group (not a number, a unit
    /// or anyone): parsing it then looks the name up.
    static func namesAccounts(_ request: Request) throws(CofferError) -> Bool {
        try request.strings("principals", max: maxPrincipals)?.contains { $0.hasPrefix("user:") || $0.hasPrefix("group:") } ?? false
    }

    static func parse(_ request: Request) throws(CofferError) -> SecretAccess? {
        let texts = try request.strings("principals", max: maxPrincipals)
        let scopeMembers = try request.object("scope")
        guard texts != nil || scopeMembers != nil else { return nil }
        var principals: [Principal] = []
        for text in texts ?? [] {
            // Principal.parse quotes what it was given (right for the policy
            // file); a client's request text is never echoed back.
            do throws(CofferError) {
                principals.append(try Principal.parse(text, directory: SystemAccounts()))
            } catch {
                throw CofferError(.badRequest, "'principals' holds one that is not user:NAME, uid:N, group:NAME, gid:N, unit:GLOB or anyone, or names an unknown account")
            }
        }
        var scope = SecretScope.all
        if let scopeMembers {
            switch (scopeMembers["all"], scopeMembers["sockets"]) {
            case (.bool(true)?, nil) where scopeMembers.count == 1:
                scope = .all
            case (nil, .array(let items)?) where scopeMembers.count == 1 && !items.isEmpty:
                var sockets: Set<Listener> = []
                for item in items {
                    guard case .string(let s) = item, let listener = Listener(rawValue: request.text(s)), listener != .admin else {
                        throw CofferError(.badRequest, "'scope.sockets' may hold \"service\" and \"credentials\"")
                    }
                    sockets.insert(listener)
                }
                scope = .sockets(sockets)
            default:
                throw CofferError(.badRequest, "'scope' must be {\"all\": true} or {\"sockets\": [\"service\", \"credentials\"]}")
            }
        }
        return SecretAccess(principals: principals, scope: scope)
    }
}
