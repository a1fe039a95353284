import Model

/// `ping`: answers `pong` to anyone; no secret, no audit.
struct PingHandler: OperationHandler {
    let operation = Operation.ping
    let members: Set<String> = []

    func handle(_ request: Request, context: RequestContext, services: CofferServices) async throws -> HandlerOutcome {
        HandlerOutcome([("pong", .bool(true))])
    }
}
