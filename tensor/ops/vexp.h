/* tensor/ops/vexp.h: e^x for float in a form the compiler vectorises, for the kernels that
 * exponentiate whole rows (softmax, log_softmax, cross_entropy). Cephes'
 * expf: x = n ln2 + r, a polynomial for e^r, 2^n through exponent bits; within 1 ulp of expf
 * down to 1e-37, 0 below -104, infinity above 88.7, NaN stays NaN. */
#ifndef TIDE_VEXP_H
#define TIDE_VEXP_H

#include <stdint.h>
#include <string.h>

static inline float td_vexpf(float x) {
    float z = x < -104.0f ? -104.0f : x; /* plain selects: fminf/fmaxf do not vectorise */
    z = z > 89.0f ? 89.0f : z;
    float n = (z * 1.44269504f + 12582912.0f) - 12582912.0f; /* round: floorf is a call */
    float r = z - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t k = (int32_t)n, h = k >> 1; /* 2^k as 2^h 2^(k-h): both halves stay finite */
    int32_t b1 = (h + 127) << 23, b2 = (k - h + 127) << 23;
    float s1, s2;
    memcpy(&s1, &b1, sizeof s1);
    memcpy(&s2, &b2, sizeof s2);
    float y = p * s1 * s2;
    y = x < -104.0f ? 0.0f : y;
    return x != x ? x : y;
}

#endif
