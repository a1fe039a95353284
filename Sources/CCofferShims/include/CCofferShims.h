// Prefixed C wrappers for what Swift cannot import directly: `struct ucred`
// (only visible with _GNU_SOURCE), function-like macros (OPENSSL_free,
// CRYPTO_secure_malloc) and variadic functions (prctl). Nothing else lives here.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

// Mirror of `struct ucred` (socket(7), SO_PEERCRED). Layout checked by
// _Static_assert in shims.c, built with _GNU_SOURCE.
typedef struct coffer_ucred {
    int32_t pid;
    uint32_t uid;
    uint32_t gid;
} coffer_ucred;

int coffer_so_peercred(void);

// SO_PEERPIDFD (Linux 6.5+; Debian 12's headers predate it): a pidfd for
// the process that connected.
int coffer_so_peerpidfd(void);

// 1 when the process behind `pidfd` is still running, 0 when it has
// exited, -1 with errno on error. A pidfd polls readable once its process
// exits (pidfd_open(2)); unlike pidfd_send_signal(pidfd, 0) this needs no
// permission to signal the process, which an unprivileged cofferd lacks.
int coffer_pidfd_is_alive(int pidfd);

// prctl(2) is variadic.
int coffer_set_dumpable(int dumpable);
int coffer_get_dumpable(void);

// OpenSSL's secure heap: CRYPTO_secure_malloc/clear_free are macros that add
// __FILE__/__LINE__.
void *coffer_secure_malloc(size_t size);
void coffer_secure_clear_free(void *ptr, size_t size);
void coffer_openssl_free(void *ptr);

// HKDF-SHA256 (RFC 5869) through a reused EVP_KDF_CTX. The OSSL_PARAM array is
// built from OSSL_KDF_PARAM_* macros, hence C. The context is reset afterwards
// so it does not keep a copy of `key` (EVP_KDF_CTX_reset clears it).
typedef struct evp_kdf_ctx_st coffer_kdf_ctx;
int coffer_hkdf_sha256(coffer_kdf_ctx *ctx,
                       const uint8_t *key, size_t key_len,
                       const uint8_t *salt, size_t salt_len,
                       const uint8_t *info, size_t info_len,
                       uint8_t *out, size_t out_len);

// An HMAC context whose digest is SHA-256 (set through an OSSL_PARAM, built
// from the OSSL_MAC_PARAM_DIGEST macro, hence C). It holds no key: each use
// keys it with EVP_MAC_init. NULL if OpenSSL could not make it.
typedef struct evp_mac_st coffer_mac;
typedef struct evp_mac_ctx_st coffer_mac_ctx;
coffer_mac_ctx *coffer_hmac_sha256_ctx_new(coffer_mac *mac);

// pipe2(2) with O_CLOEXEC (glibc declares pipe2 only under _GNU_SOURCE): both
// ends close on exec, atomically, so a child spawned by another thread at the
// same moment never inherits them. 0, or -1 with errno.
int coffer_pipe_cloexec(int fds[2]);

// signalfd(2) for the signals in `mask` (blocked by the caller), close-on-
// exec; and one read of it: the signal's number, or -1 with errno. The
// header Swift's Glibc module leaves out, and signalfd_siginfo with it.
#include <signal.h>
int coffer_signalfd(const sigset_t *mask);
int coffer_signalfd_take(int fd);

// Hands freed heap pages back to the kernel (malloc_trim(3)): after a large
// store is loaded or replaced, glibc keeps the freed pages of the old one
// and of the parse in its arenas otherwise. 1 if memory was released.
int coffer_return_free_memory(void);

// A heap whose memory is zeroed (OPENSSL_cleanse) before glibc gets it back:
// the allocation hooks of the byte buffers that carry requests and answers
// (NIO's ByteBufferAllocator). free wipes the whole usable size
// (malloc_usable_size(3), a GNU extension, hence C); realloc moves to a new
// block and wipes the old one instead of letting realloc(3) free it as is.
void *coffer_wiping_malloc(size_t size);
void *coffer_wiping_realloc(void *ptr, size_t old_size, size_t new_size);
void coffer_wiping_free(void *ptr);
void coffer_wiping_copy(void *dst, const void *src, size_t count);

// pthread_mutex_clocklock(3) on CLOCK_MONOTONIC until `deadline` (glibc
// declares it only under _GNU_SOURCE). 0 once the mutex is held, ETIMEDOUT
// or another error number otherwise.
#include <pthread.h>
#include <time.h>
int coffer_mutex_clocklock(pthread_mutex_t *mutex, const struct timespec *deadline);

// renameat2(2) with RENAME_EXCHANGE: `from` and `to` swap names atomically
// (glibc declares renameat2 only under _GNU_SOURCE). 0, or -1 with errno
// (EINVAL where the file system cannot exchange).
int coffer_rename_exchange(const char *from, const char *to);

// renameat2(2) with RENAME_NOREPLACE: `from` takes the name `to` only if no
// file has it (EEXIST otherwise).
int coffer_rename_noreplace(const char *from, const char *to);
