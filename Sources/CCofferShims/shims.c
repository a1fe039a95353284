// Built with _GNU_SOURCE (see Package.swift) so that <sys/socket.h> declares
// struct ucred; the assertions keep the Swift-visible mirror in step with it.
#include "CCofferShims.h"

#include <stddef.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <errno.h>
#include <poll.h>
#include <openssl/crypto.h>

_Static_assert(sizeof(struct ucred) == sizeof(coffer_ucred), "coffer_ucred size");
_Static_assert(offsetof(struct ucred, pid) == offsetof(coffer_ucred, pid), "coffer_ucred.pid");
_Static_assert(offsetof(struct ucred, uid) == offsetof(coffer_ucred, uid), "coffer_ucred.uid");
_Static_assert(offsetof(struct ucred, gid) == offsetof(coffer_ucred, gid), "coffer_ucred.gid");
_Static_assert(sizeof(((struct ucred *)0)->pid) == sizeof(int32_t), "pid_t width");
_Static_assert(sizeof(((struct ucred *)0)->uid) == sizeof(uint32_t), "uid_t width");
_Static_assert(sizeof(((struct ucred *)0)->gid) == sizeof(uint32_t), "gid_t width");

int coffer_so_peercred(void) { return SO_PEERCRED; }

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 // include/uapi/asm-generic/socket.h
#endif
int coffer_so_peerpidfd(void) { return SO_PEERPIDFD; }

int coffer_pidfd_is_alive(int pidfd) {
    struct pollfd p = {.fd = pidfd, .events = POLLIN};
    int ready;
    do {
        ready = poll(&p, 1, 0);
    } while (ready == -1 && errno == EINTR);
    if (ready == -1) return -1;
    return ready == 0 ? 1 : 0;
}

int coffer_set_dumpable(int dumpable) { return prctl(PR_SET_DUMPABLE, (unsigned long)dumpable, 0UL, 0UL, 0UL); }
int coffer_get_dumpable(void) { return prctl(PR_GET_DUMPABLE, 0UL, 0UL, 0UL, 0UL); }

void *coffer_secure_malloc(size_t size) { return OPENSSL_secure_malloc(size); }
void coffer_secure_clear_free(void *ptr, size_t size) { OPENSSL_secure_clear_free(ptr, size); }
void coffer_openssl_free(void *ptr) { OPENSSL_free(ptr); }

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/evp.h>

int coffer_hkdf_sha256(coffer_kdf_ctx *ctx,
                       const uint8_t *key, size_t key_len,
                       const uint8_t *salt, size_t salt_len,
                       const uint8_t *info, size_t info_len,
                       uint8_t *out, size_t out_len) {
    char digest[] = "SHA256";
    OSSL_PARAM params[5];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, key_len);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
    params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
    params[4] = OSSL_PARAM_construct_end();
    int rc = EVP_KDF_derive(ctx, out, out_len, params);
    EVP_KDF_CTX_reset(ctx);
    return rc;
}

coffer_mac_ctx *coffer_hmac_sha256_ctx_new(coffer_mac *mac) {
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    if (ctx == NULL) return NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_MAC_CTX_set_params(ctx, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

#include <fcntl.h>
#include <unistd.h>

int coffer_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}

#include <sys/signalfd.h>
#include <unistd.h>

int coffer_signalfd(const sigset_t *mask) {
    return signalfd(-1, mask, SFD_CLOEXEC);
}

int coffer_signalfd_take(int fd) {
    struct signalfd_siginfo info;
    ssize_t n;
    do {
        n = read(fd, &info, sizeof info);
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof info) return -1;
    return (int)info.ssi_signo;
}

#include <malloc.h>

int coffer_return_free_memory(void) {
    return malloc_trim(0);
}

#include <stdlib.h>
#include <string.h>

void *coffer_wiping_malloc(size_t size) { return malloc(size); }

void coffer_wiping_free(void *ptr) {
    if (ptr == NULL) return;
    OPENSSL_cleanse(ptr, malloc_usable_size(ptr));
    free(ptr);
}

void *coffer_wiping_realloc(void *ptr, size_t old_size, size_t new_size) {
    void *moved = malloc(new_size);
    if (moved == NULL || ptr == NULL) return moved;
    memcpy(moved, ptr, old_size < new_size ? old_size : new_size);
    coffer_wiping_free(ptr);
    return moved;
}

void coffer_wiping_copy(void *dst, const void *src, size_t count) { memcpy(dst, src, count); }

#include <pthread.h>
#include <time.h>

int coffer_mutex_clocklock(pthread_mutex_t *mutex, const struct timespec *deadline) {
    return pthread_mutex_clocklock(mutex, CLOCK_MONOTONIC, deadline);
}

#include <stdio.h>

int coffer_rename_exchange(const char *from, const char *to) {
    return renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_EXCHANGE);
}

int coffer_rename_noreplace(const char *from, const char *to) {
    return renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
}
