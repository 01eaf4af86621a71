/*
 * auth — the cluster secret and the handshake's proofs (libsodium).
 *
 * cluster.secret=FILE names a file of 16 to 65536 bytes, the same on every
 * node, readable by its owner only.  Its key is BLAKE2b-256 of a domain
 * label and the file's bytes (crypto_generichash); the proofs are
 * HMAC-SHA-512-256 (crypto_auth_hmacsha512256) of the handshake's
 * transcript under that key: both HELLO bodies, so both nonces, both ids
 * and the cluster id.  A node without a secret uses the all-zero key: the
 * proofs then only bind the transcript, and only the configured ids on
 * their configured addresses are let in.
 */
#ifndef MK_AUTH_H
#define MK_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_KEY_BYTES   32
#define AUTH_NONCE_BYTES 32
#define AUTH_MAC_BYTES   32
#define AUTH_SECRET_MIN  16
#define AUTH_SECRET_MAX  65536

/* Roles in a proof, so that a proof can never be reflected back. */
enum auth_role { AUTH_ACCEPTOR = 'A', AUTH_DIALER = 'D' };

/* Initializes libsodium; 0 or -EIO. */
int auth_init(void);

/* Reads the secret file and derives the key.  0, or a negative errno with
 * *why saying what is wrong (missing, not a regular file, readable by group
 * or others, too short or too long). */
int auth_load(const char *path, uint8_t key[AUTH_KEY_BYTES], const char **why);

/* Fills n with random bytes (randombytes_buf). */
void auth_nonce(uint8_t *n, size_t len);

/* The proof of `role` over the transcript a ++ b. */
void auth_mac(const uint8_t key[AUTH_KEY_BYTES], enum auth_role role, const uint8_t *a,
              size_t alen, const uint8_t *b, size_t blen, uint8_t out[AUTH_MAC_BYTES]);

/* Whether mac is the proof of `role` over a ++ b (compared in constant time). */
bool auth_check(const uint8_t key[AUTH_KEY_BYTES], enum auth_role role, const uint8_t *a,
                size_t alen, const uint8_t *b, size_t blen, const uint8_t mac[AUTH_MAC_BYTES]);

#endif
