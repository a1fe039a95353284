/// A store file written by the code of 9c6c83d (before the store file's
/// MAC was fed in pieces and numbers went into it without Strings), under
/// the test master key (bytes 0 to 31), with every optional member: stages
/// with previous, pending and previous_until, grace, access with a sockets
/// scope, expiry (one negative), operations, HMAC and scrypt hashes, hex and
/// text version ids, a binary version, negative times and an outbox. The
/// code that wrote it was a throwaway subcommand of that commit's
/// coffer-bench; the file is kept as it came out.
enum StoreFileFixture {
    static let written9c6c83d = #"""
{
  "format" : "coffer-store",
  "format_version" : 2,
  "generation" : 1,
  "key_ids" : [
    "dd1873095c6b7a7d"
  ],
  "mac" : "e0b8bb1b4711558b4983c5d5b67cdfe12a44e0797bb5e072d73691c28f04b7e7",
  "mac_key_id" : "dd1873095c6b7a7d",
  "outbox" : [
    {
      "generation" : 1,
      "name" : "app/db-password",
      "queued_at" : 1700000200
    },
    {
      "generation" : 1,
      "name" : "gone/secret",
      "queued_at" : -5
    }
  ],
  "secrets" : [
    {
      "expires_at" : 1900000000,
      "kind" : "token",
      "name" : "api/token",
      "operations" : [
        "verify",
        "get"
      ],
      "protection" : "hashed",
      "stages" : {
        "changed_at" : 1700000000,
        "changed_by" : "uid:0",
        "current" : 1
      },
      "versions" : [
        {
          "created_at" : 1700000000,
          "created_by" : "uid:0",
          "encoding" : "text",
          "hash" : {
            "algorithm" : "hmac-sha256"
          },
          "id" : "fedcba9876543210",
          "sealed" : {
            "ciphertext" : "+yZJOzMHNSF8t02C5hD85phRzhLDC++j/8ni/8vPJszeTH8nQd3W6YcMmIYzw0zwgeQ9zdtG31l1nrc+aPi/J6Vni/51Ao0TFNATOeW/lh8=",
            "key_id" : "dd1873095c6b7a7d",
            "nonce" : "S9SHZpWMAw/KvhHR",
            "salt" : "2+LzZUGUnQHgFeh+3CWFtZbh3e8y+fTaiB6MJ2Lb6gU="
          },
          "version" : 1
        }
      ]
    },
    {
      "access" : {
        "principals" : [
          "uid:1000",
          "gid:50"
        ],
        "scope" : {
          "sockets" : [
            "service"
          ]
        }
      },
      "grace_seconds" : 3600,
      "kind" : "generic",
      "name" : "app/db-password",
      "protection" : "sealed",
      "stages" : {
        "changed_at" : 1700000050,
        "changed_by" : "uid:0",
        "current" : 2,
        "pending" : 3,
        "previous" : 1,
        "previous_until" : 1700003650
      },
      "versions" : [
        {
          "created_at" : -86400,
          "created_by" : "uid:0",
          "encoding" : "text",
          "sealed" : {
            "ciphertext" : "WGGk7nZaowCgEhxmJ2o/qOJQPQ==",
            "key_id" : "dd1873095c6b7a7d",
            "nonce" : "NziLlBAvcrw/D7Kv",
            "salt" : "eaZV//ERVMlLGVlJHJK5S8trha13simG3mc8IA1I7HQ="
          },
          "version" : 1
        },
        {
          "created_at" : 1700000000,
          "created_by" : "unit:deploy.service",
          "encoding" : "text",
          "id" : "0123456789abcdef",
          "sealed" : {
            "ciphertext" : "Z6Lqzg48uGVU2JBzdP80vHQ1qA==",
            "key_id" : "dd1873095c6b7a7d",
            "nonce" : "WeRGf5uGq9vyVF8A",
            "salt" : "2O+Xta9Au4pfuK8ATnva/RC3PWBfjovJasKZwNacnRs="
          },
          "version" : 2
        },
        {
          "created_at" : 1700000100,
          "created_by" : "uid:1000",
          "encoding" : "binary",
          "id" : "host-b/7",
          "sealed" : {
            "ciphertext" : "DMUDVFE1/+gbMgLhz1dcbM53vDM=",
            "key_id" : "dd1873095c6b7a7d",
            "nonce" : "6O5HErAyX0msTSXv",
            "salt" : "F0zCOiWTYViCUDPWoiKYQcDtpebbH6FEC2Q6CuzPoyU="
          },
          "version" : 3
        }
      ]
    },
    {
      "expires_at" : -1,
      "kind" : "password",
      "name" : "web/login",
      "protection" : "hashed",
      "stages" : {
        "changed_at" : 0,
        "changed_by" : "uid:0",
        "current" : 4
      },
      "versions" : [
        {
          "created_at" : 0,
          "created_by" : "uid:0",
          "encoding" : "text",
          "hash" : {
            "algorithm" : "scrypt",
            "n" : 16384,
            "p" : 1,
            "r" : 8,
            "salt" : "AAECAwQFBgcICQoLDA0ODw=="
          },
          "sealed" : {
            "ciphertext" : "f1/J9jhtP05/UmCLWz8p+UMkoEIES4eH9dwIccsaXnrqZoWs3U6Bvy97Y9D9WyrI",
            "key_id" : "dd1873095c6b7a7d",
            "nonce" : "jpMpvbjiXga3G9+D",
            "salt" : "YrxB9cOdVNQPxqRCsayRbIH8CX2hI0FyoaAZgFIPTX4="
          },
          "version" : 4
        }
      ]
    }
  ],
  "store_id" : "d2b40bf3b9ed93ded3ccd96e131c8cb7"
}
"""#
}
