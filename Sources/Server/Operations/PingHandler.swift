import CofferCore
import Model

/// `ping`: answers `pong` to anyone; no secret, no audit.
struct PingHandler: ImmediateOperationHandler {
    let operation = Operation.ping
    let members: Set<String> = []

    func answer(_ request: Request, context: RequestContext) throws -> HandlerOutcome {
        HandlerOutcome([("pong", .bool(true))])
    }
}
