/*
 * auth — see auth.h.
 */
#include "broker/net/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char key_label[] = "minikafka cluster.secret v1";
static const char mac_label[] = "minikafka handshake v1";

int auth_init(void)
{
    return sodium_init() < 0 ? -EIO : 0;
}

int auth_load(const char *path, uint8_t key[AUTH_KEY_BYTES], const char **why)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        *why = "cannot be opened";
        return rc;
    }
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        *why = "cannot be read";
    } else if (!S_ISREG(st.st_mode)) {
        rc = -EINVAL;
        *why = "is not a regular file";
    } else if (st.st_mode & 077) {
        rc = -EPERM;
        *why = "is readable or writable by group or others (chmod 600 it)";
    } else if (st.st_size < AUTH_SECRET_MIN || st.st_size > AUTH_SECRET_MAX) {
        rc = -EINVAL;
        *why = "must hold 16 to 65536 bytes (e.g. head -c 32 /dev/urandom)";
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    if (rc == 0) {
        len = (size_t)st.st_size;
        buf = sodium_malloc(len);
        if (!buf) {
            rc = -ENOMEM;
            *why = "out of memory";
        }
    }
    for (size_t got = 0; rc == 0 && got < len;) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            *why = "cannot be read (or changed while being read)";
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    if (rc == 0) {
        crypto_generichash_state st2;
        crypto_generichash_init(&st2, NULL, 0, AUTH_KEY_BYTES);
        crypto_generichash_update(&st2, (const uint8_t *)key_label, sizeof(key_label));
        crypto_generichash_update(&st2, buf, len);
        crypto_generichash_final(&st2, key, AUTH_KEY_BYTES);
        sodium_memzero(&st2, sizeof(st2));
    }
    if (buf)
        sodium_free(buf); /* zeroes it */
    return rc;
}

void auth_nonce(uint8_t *n, size_t len)
{
    randombytes_buf(n, len);
}

void auth_mac(const uint8_t key[AUTH_KEY_BYTES], enum auth_role role, const uint8_t *a,
              size_t alen, const uint8_t *b, size_t blen, uint8_t out[AUTH_MAC_BYTES])
{
    crypto_auth_hmacsha512256_state st;
    uint8_t r = (uint8_t)role;
    crypto_auth_hmacsha512256_init(&st, key, AUTH_KEY_BYTES);
    crypto_auth_hmacsha512256_update(&st, (const uint8_t *)mac_label, sizeof(mac_label));
    crypto_auth_hmacsha512256_update(&st, &r, 1);
    uint8_t lens[8];
    for (int i = 0; i < 4; i++) {
        lens[i] = (uint8_t)(alen >> (8 * i));
        lens[4 + i] = (uint8_t)(blen >> (8 * i));
    }
    crypto_auth_hmacsha512256_update(&st, lens, sizeof(lens));
    crypto_auth_hmacsha512256_update(&st, a, alen);
    crypto_auth_hmacsha512256_update(&st, b, blen);
    crypto_auth_hmacsha512256_final(&st, out);
    sodium_memzero(&st, sizeof(st));
}

bool auth_check(const uint8_t key[AUTH_KEY_BYTES], enum auth_role role, const uint8_t *a,
                size_t alen, const uint8_t *b, size_t blen, const uint8_t mac[AUTH_MAC_BYTES])
{
    uint8_t want[AUTH_MAC_BYTES];
    auth_mac(key, role, a, alen, b, blen, want);
    bool ok = sodium_memcmp(want, mac, AUTH_MAC_BYTES) == 0;
    sodium_memzero(want, sizeof(want));
    return ok;
}
