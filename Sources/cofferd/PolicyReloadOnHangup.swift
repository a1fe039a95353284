import Logging
import Server
import ServiceLifecycle
import UnixSignals

/// SIGHUP reads the policy file again (like the admin `reload`). A broken
/// file is logged with its line and the policy in force stays in force.
struct PolicyReloadOnHangup: Service {
    let services: CofferServices
    let logger: Logger

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        for await _ in hangups.cancelOnGracefulShutdown() {
            switch services.reloadPolicy() {
            case .success(let policy):
                logger.info("policy reloaded", metadata: ["rules": "\(policy.rules.count)", "operators": "\(policy.operators.count)"])
            case .failure(let error):
                logger.error("policy reload refused; the previous policy stays in force", metadata: ["error": "\(error.message)"])
            }
        }
    }
}
