/* vm/kernel/wire.c: the Jupyter wire format's framing and HMAC-SHA256 signatures (libcrypto). */
#include "kernel.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

static const char DELIM[] = "<IDS|MSG>";

/* HMAC() is OpenSSL's one-shot form (the HMAC_CTX calls are deprecated in 3.0): it wants the
 * four parts in one buffer */
int tdK_sign(const char *key, size_t keylen, const tdK_frame parts[4], char out[65]) {
    size_t n = 0;
    for (int i = 0; i < 4; i++) n += parts[i].n;
    unsigned char *all = malloc(n ? n : 1), md[EVP_MAX_MD_SIZE];
    if (!all) return -1;
    n = 0;
    for (int i = 0; i < 4; i++) {
        if (parts[i].n) memcpy(all + n, parts[i].p, parts[i].n);
        n += parts[i].n;
    }
    unsigned len = 0;
    int ok = HMAC(EVP_sha256(), key, (int)keylen, all, n, md, &len) != NULL && len == 32;
    free(all);
    if (!ok) return -1;
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < 32; i++) out[2 * i] = hex[md[i] >> 4], out[2 * i + 1] = hex[md[i] & 15];
    out[64] = 0;
    return 0;
}

int tdK_parse(const tdK_frame *f, int n, const char *key, size_t keylen, const char **why) {
    int d = 0;
    while (d < n && !(f[d].n == sizeof DELIM - 1 && !memcmp(f[d].p, DELIM, f[d].n))) d++;
    if (d == n) {
        *why = "no <IDS|MSG> delimiter";
        return -1;
    }
    if (n - d < 6) {
        *why = "fewer than the 5 frames after the delimiter";
        return -1;
    }
    if (keylen == 0) return d;
    char sig[65];
    if (tdK_sign(key, keylen, f + d + 2, sig) < 0) {
        *why = "libcrypto could not compute the signature";
        return -1;
    }
    if (f[d + 1].n != 64 || CRYPTO_memcmp(sig, f[d + 1].p, 64) != 0) {
        *why = "bad signature";
        return -1;
    }
    return d;
}
