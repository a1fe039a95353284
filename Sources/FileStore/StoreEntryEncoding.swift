import Model

/// A secret in the store file's own encoding, for a medium that must hold
/// exactly what a store file can and be checked the same way (the
/// mirror's PostgreSQL rows): the entry's metadata as JSON, the hash
/// parameters as JSON, and the secret's part of the MAC input.
public enum StoreEntryEncoding {
    /// The secret's store-file entry without its versions, as compact
    /// JSON: stages, access, grace, expiry, operations. Never a value.
    public static func metadataJSON(of secret: Secret) -> String {
        StoreFileFormat.Entry(secret, versions: false).json
    }

    /// A hashed version's parameters as compact JSON.
    public static func hashJSON(_ parameters: HashParameters) -> String {
        StoreFileFormat.HashEntry(parameters).json
    }

    /// Parameters written by `hashJSON`, checked as a store file's are.
    public static func hashParameters(json: String, source: String) throws(StoreError) -> HashParameters {
        let entry = try StoreFileReader.read(Array(json.utf8), source: source) { (reader) throws(StoreError) in try reader.hash() }
        guard let parameters = entry.parameters else { throw StoreError(.corrupt, "\(source) holds invalid hash parameters") }
        return parameters
    }

    /// The secret `name` from its metadata (`metadataJSON`) and versions,
    /// checked as a store file's entry is: the metadata names it and holds
    /// its stages, versions
    /// ascend, stages name versions it has, hash parameters on exactly the
    /// versions of a hashed secret. The caller still checks a MAC and
    /// opens the records.
    public static func secret(
        named name: SecretName, metadataJSON: String, versions: [SecretVersion], source: String
    ) throws(StoreError) -> Secret {
        var entry = try StoreFileReader.read(Array(metadataJSON.utf8), source: source) { (reader) throws(StoreError) in try reader.entry() }
        guard entry.name == name.rawValue else { throw StoreError(.corrupt, "\(source) of \(name) names another secret") }
        // Stages are always written here; only store files from before
        // stages existed may lack them.
        guard entry.stages != nil else { throw StoreError(.corrupt, "\(source) of \(name) holds no stages") }
        entry.versions = versions.sorted { $0.version < $1.version }.map(StoreFileFormat.VersionEntry.init)
        return try entry.secret(named: name)
    }

    /// The secret's part of the store file's MAC input (docs/file-format.md).
    public static func macFields(of secret: Secret, into out: inout LengthPrefixedFields) {
        StoreFileFormat.Entry(secret).canonical(into: &out)
    }
}
