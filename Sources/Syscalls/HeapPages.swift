import CCofferShims

/// The C heap's freed pages.
public enum HeapPages {
    /// Hands freed pages back to the kernel (malloc_trim(3)). glibc keeps
    /// them otherwise: after a 100k-secret store is loaded, the parse's
    /// garbage kept RSS at 283 MiB, against about 165 MiB once returned
    /// (docs/performance.md).
    public static func returnFree() {
        _ = coffer_return_free_memory()
    }
}
