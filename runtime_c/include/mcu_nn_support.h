/*
 * mcu_nn support: TFLite's fixed-point requantization (double rounding, as in TFLite Micro's reference
 * kernels and CMSIS-NN's default build) and small helpers. Its numpy twin is mcucompile/quant.py.
 */
#ifndef MCU_NN_SUPPORT_H
#define MCU_NN_SUPPORT_H

#include <stdint.h>
#include <string.h>

#include "mcu_nn_types.h"

#ifndef MCU_API
#define MCU_API
#endif

#define MCU_CHECK(expr)                                                                                               \
    do                                                                                                                 \
    {                                                                                                                  \
        const mcu_status mcu_check_status_ = (expr);                                                                   \
        if (mcu_check_status_ != MCU_STATUS_OK)                                                                        \
        {                                                                                                              \
            return (int)mcu_check_status_;                                                                             \
        }                                                                                                              \
    } while (0)

#if defined(__GNUC__)
#define MCU_MAYBE_UNUSED __attribute__((unused)) /* a model without a *_fast kernel leaves these unused */
#else
#define MCU_MAYBE_UNUSED
#endif

static inline int32_t mcu_clamp(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* Elements from one output pixel to the next for a params->output_stride field (0: dense, `channels`);
 * 0 if the stride is invalid (below `channels`), which the kernel reports as an argument error. */
static inline int32_t mcu_pixel_stride(int32_t output_stride, int32_t channels)
{
    if (output_stride == 0)
    {
        return channels;
    }
    return output_stride >= channels ? output_stride : 0;
}

/* floor((a * b + 2^30) / 2^31) for any (a, b) but (INT32_MIN, INT32_MIN): gemmlowp's rounding doubling high
 * product, written as one rounding shift. gemmlowp nudges negative products by 1 - 2^30 and truncates toward zero,
 * which is the same floor. Thumb-1 cores (Cortex-M0/M0+/M23) have no 32x32->64 multiply, so there the product is
 * built from four 16x16 ones (a libgcc 64-bit multiply costs ~5x more); -DMCU_NO_LONG_MUL selects that path
 * anywhere, for the host tests. */
#if !defined(MCU_NO_LONG_MUL) && defined(__ARM_ARCH_ISA_THUMB) && __ARM_ARCH_ISA_THUMB == 1 && \
    !defined(__ARM_ARCH_ISA_ARM)
#define MCU_NO_LONG_MUL 1
#endif
static inline int32_t mcu_mul_high_rounded(int32_t a, int32_t b)
{
#if defined(MCU_NO_LONG_MUL) && MCU_NO_LONG_MUL
    /* a = ah 2^16 + al, b = bh 2^16 + bl (al, bl unsigned). Every partial sum below fits in 32 bits: */
    /* the signed high halves, sign-extended without shifting a negative value */
    const int32_t ah = (int32_t)(((uint32_t)a >> 16) ^ 0x8000u) - 0x8000;
    const int32_t bh = (int32_t)(((uint32_t)b >> 16) ^ 0x8000u) - 0x8000;
    const int32_t al = (int32_t)((uint32_t)a & 0xFFFFu), bl = (int32_t)((uint32_t)b & 0xFFFFu);
    const uint32_t low = (uint32_t)al * (uint32_t)bl;                   /* < 2^32 */
    const int32_t cross_a = ah * bl;                                      /* |.| < 2^31 */
    const int32_t cross_b = al * bh + (int32_t)(low >> 16) + (1 << 14); /* the 2^30 nudge, in units of 2^16 */
    /* floor((cross_a + cross_b) / 2^15) without forming the 33-bit sum */
    const int32_t carry = ((cross_a & 0x7FFF) + (cross_b & 0x7FFF)) >> 15;
    /* the sum is in range, a partial sum may not be: add modulo 2^32 */
    return (int32_t)((uint32_t)(ah * bh) * 2u + (uint32_t)(cross_a >> 15) + (uint32_t)(cross_b >> 15) +
                     (uint32_t)carry);
#else
    return (int32_t)(((int64_t)a * b + (INT64_C(1) << 30)) >> 31);
#endif
}

/* gemmlowp SaturatingRoundingDoublingHighMul: (a * b * 2 + 2^31) / 2^32 rounded, the one overflow case saturated. */
MCU_MAYBE_UNUSED static inline int32_t mcu_doubling_high_mul(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN)
    {
        return INT32_MAX;
    }
    return mcu_mul_high_rounded(a, b);
}

/* x / 2^exponent rounded to nearest, halves away from zero; 0 <= exponent <= 31. */
static inline int32_t mcu_divide_by_pot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)((1u << exponent) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* TFLite MultiplyByQuantizedMultiplier. The left shift is done in 64 bits and saturated, where TFLite
 * would overflow; the compiler keeps shifts in range, so results agree wherever TFLite's are defined. Multipliers
 * come from quantize_multiplier (0 or in [2^30, 2^31)), never INT32_MIN, so the high product needs no saturation. */
static inline int32_t mcu_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    if (shift > 0)
    {
        int64_t shifted = (int64_t)x * ((int64_t)1 << shift);
        shifted = shifted > INT32_MAX ? INT32_MAX : (shifted < INT32_MIN ? INT32_MIN : shifted);
        return mcu_mul_high_rounded((int32_t)shifted, multiplier);
    }
    return mcu_divide_by_pot(mcu_mul_high_rounded(x, multiplier), -shift);
}

/* ADD's rescaling of one int8 input: (x + offset) * 2^left_shift (< 2^28 for int8 with left_shift 20, so no
 * overflow) to the common scale of both inputs. Shared by add/sub and the comparisons. */
MCU_MAYBE_UNUSED static inline int32_t mcu_rescale_input(int32_t x, int32_t offset, int32_t left_shift,
                                                         int32_t multiplier, int32_t shift)
{
    return mcu_requantize((x + offset) * (1 << left_shift), multiplier, shift);
}

/* An int8 value x requantized by q, saturated to int8 (REQUANTIZE, and Where's chosen values). */
MCU_MAYBE_UNUSED static inline int8_t mcu_requantize_s8_value(const mcu_requantize_params *q, int32_t x)
{
    const int32_t v = mcu_requantize(x + q->input_offset, q->multiplier, q->shift);
    /* Bound first: a saturated value plus the offset would overflow, and the clamp gives the same result. */
    return (int8_t)mcu_clamp(mcu_clamp(v, -256, 256) + q->output_offset, -128, 127);
}

/* Two-MACs-per-instruction helpers for the *_fast kernels. MCU_DSP is 1 where they are available: on
 * Armv7E-M / Armv8-M with the DSP extension (ACLE intrinsics), or anywhere with -DMCU_EMULATE_DSP (portable C
 * twins of the same instructions, so the host tests run the DSP code path bit for bit). Otherwise the kernels
 * take their portable C path (Cortex-M0+, RISC-V, host). */

/* One output row of a broadcasting elementwise kernel: `count` outputs, each input stepping by its innermost stride
 * (1: contiguous, 0: one broadcast value). `params` is the kernel's own params struct. */
typedef void (*mcu_broadcast_row_fn)(const void *params,
                                     const int8_t *input1,
                                     int32_t step1,
                                     const int8_t *input2,
                                     int32_t step2,
                                     int32_t count,
                                     int8_t *output);

/* Walk the 4-D output box row by row, each input at its own strides (mcu_broadcast_shape); same-shape tensors
 * arrive as one row of the whole size, a single flat loop. Shared by add/sub, mul and prelu. */
MCU_MAYBE_UNUSED static void mcu_broadcast_rows(const mcu_broadcast_shape *shape,
                                                const void *params,
                                                const int8_t *input1,
                                                const int8_t *input2,
                                                int8_t *output,
                                                mcu_broadcast_row_fn row_fn)
{
    const int32_t *dims = shape->out_dims;
    const int32_t *s1 = shape->in1_strides;
    const int32_t *s2 = shape->in2_strides;
    for (int32_t n = 0; n < dims[0]; n++)
        for (int32_t h = 0; h < dims[1]; h++)
            for (int32_t w = 0; w < dims[2]; w++)
            {
                const int32_t row = (n * dims[1] + h) * dims[2] + w;
                row_fn(params,
                       input1 + n * s1[0] + h * s1[1] + w * s1[2],
                       s1[3],
                       input2 + n * s2[0] + h * s2[1] + w * s2[2],
                       s2[3],
                       dims[3],
                       output + row * dims[3]);
            }
}

/* output[i] = first[sum over k of i_k * strides[k]] for every index i of dims (MCU_MAX_RANK axes, row-major):
   the loop nest of every int8 copy that moves values without changing them (transpose, slice, broadcast). */
MCU_MAYBE_UNUSED static void mcu_copy_strided(const int8_t *first, const int32_t *dims, const int32_t *strides,
                                              int8_t *output)
{
    for (int32_t i0 = 0; i0 < dims[0]; i0++)
    {
        const int8_t *p0 = first + i0 * strides[0];
        for (int32_t i1 = 0; i1 < dims[1]; i1++)
        {
            const int8_t *p1 = p0 + i1 * strides[1];
            for (int32_t i2 = 0; i2 < dims[2]; i2++)
            {
                const int8_t *p2 = p1 + i2 * strides[2];
                for (int32_t i3 = 0; i3 < dims[3]; i3++)
                {
                    const int8_t *p3 = p2 + i3 * strides[3];
                    for (int32_t i4 = 0; i4 < dims[4]; i4++)
                    {
                        const int8_t *p4 = p3 + i4 * strides[4];
                        for (int32_t i5 = 0; i5 < dims[5]; i5++)
                        {
                            *output++ = p4[i5 * strides[5]];
                        }
                    }
                }
            }
        }
    }
}

#if defined(MCU_EMULATE_DSP)
#define MCU_DSP 1
/* SXTB16: bytes 0 and 2 of x, sign-extended into the low and high halfword. */
MCU_MAYBE_UNUSED static inline int32_t mcu_sxtb16(uint32_t x)
{
    const uint32_t lo = (uint32_t)(uint16_t)(int16_t)(int8_t)(uint8_t)(x & 0xFFu);
    const uint32_t hi = (uint32_t)(uint16_t)(int16_t)(int8_t)(uint8_t)((x >> 16) & 0xFFu);
    return (int32_t)(lo | (hi << 16));
}
/* SMLAD: acc + lo(a) * lo(b) + hi(a) * hi(b), halfwords signed, the sum wrapping modulo 2^32 as the
 * instruction does. */
MCU_MAYBE_UNUSED static inline int32_t mcu_smlad(int32_t a, int32_t b, int32_t acc)
{
    const int32_t alo = (int16_t)(uint16_t)((uint32_t)a & 0xFFFFu), ahi = (int16_t)(uint16_t)((uint32_t)a >> 16);
    const int32_t blo = (int16_t)(uint16_t)((uint32_t)b & 0xFFFFu), bhi = (int16_t)(uint16_t)((uint32_t)b >> 16);
    return (int32_t)((uint32_t)acc + (uint32_t)(alo * blo) + (uint32_t)(ahi * bhi));
}
#elif defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define MCU_DSP 1
#define mcu_sxtb16(x) __sxtb16((int32_t)(x))
#define mcu_smlad(a, b, acc) __smlad((a), (b), (acc))
#else
#define MCU_DSP 0
#endif

/* The *_fast kernels' register-hungry inline-assembly blocks (up to 13 registers): where a GCC-compatible compiler
 * optimizes for the DSP extension; not under MCU_EMULATE_DSP, not at -O0, and not with -DMCU_NO_INLINE_ASM (for
 * builds that reserve registers, e.g. -ffixed-r9 with a frame pointer). Elsewhere the kernels' C twins run. */
#if MCU_DSP && !defined(MCU_EMULATE_DSP) && defined(__GNUC__) && defined(__OPTIMIZE__) && !defined(MCU_NO_INLINE_ASM)
#define MCU_KERNEL_ASM 1
#else
#define MCU_KERNEL_ASM 0
#endif

/* x rotated right by 8 bits. */
MCU_MAYBE_UNUSED static inline uint32_t mcu_ror8(uint32_t x)
{
    return (x >> 8) | (x << 24);
}

/* SXTB16 of x rotated right by 8: bytes 1 and 3. One instruction on Arm, where GCC does not fold the rotation
 * into the intrinsic by itself. */
#if MCU_DSP && !defined(MCU_EMULATE_DSP) && defined(__GNUC__)
MCU_MAYBE_UNUSED static inline int32_t mcu_sxtb16_ror8(uint32_t x)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
#elif MCU_DSP
#define mcu_sxtb16_ror8(x) mcu_sxtb16(mcu_ror8(x))
#endif

/* Four bytes from any address as one word (one LDR on Cortex-M3/M4/M7/M33, which allow unaligned LDR). */
MCU_MAYBE_UNUSED static inline uint32_t mcu_read_u32(const int8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* More DSP helpers for the *_fast kernels, as above: ACLE or inline asm on Arm, bit-exact C twins under
 * MCU_EMULATE_DSP. PKHBT: the low halfword of a under the low halfword of b; PKHTB: the high halfword of a over
 * the high halfword of b. SMLABB / SMLATT: acc + the product of the low (high) signed halfwords. SMMULR: the
 * high word of a * b, rounded. */
#if defined(MCU_EMULATE_DSP)
MCU_MAYBE_UNUSED static inline uint32_t mcu_pkhbt(uint32_t a, uint32_t b)
{
    return (a & 0xFFFFu) | (b << 16);
}
MCU_MAYBE_UNUSED static inline uint32_t mcu_pkhtb(uint32_t a, uint32_t b)
{
    return (a & 0xFFFF0000u) | (b >> 16);
}
MCU_MAYBE_UNUSED static inline int32_t mcu_smlabb(int32_t a, int32_t b, int32_t acc)
{
    const int32_t alo = (int16_t)(uint16_t)((uint32_t)a & 0xFFFFu), blo = (int16_t)(uint16_t)((uint32_t)b & 0xFFFFu);
    return (int32_t)((uint32_t)acc + (uint32_t)(alo * blo));
}
MCU_MAYBE_UNUSED static inline int32_t mcu_smlatt(int32_t a, int32_t b, int32_t acc)
{
    const int32_t ahi = (int16_t)(uint16_t)((uint32_t)a >> 16), bhi = (int16_t)(uint16_t)((uint32_t)b >> 16);
    return (int32_t)((uint32_t)acc + (uint32_t)(ahi * bhi));
}
MCU_MAYBE_UNUSED static inline int32_t mcu_smmulr(int32_t a, int32_t b)
{
    return (int32_t)(((int64_t)a * b + (INT64_C(1) << 31)) >> 32);
}
#elif MCU_DSP
#define mcu_smlabb(a, b, acc) __smlabb((a), (b), (acc))
#define mcu_smlatt(a, b, acc) __smlatt((a), (b), (acc))
#if defined(__GNUC__)
MCU_MAYBE_UNUSED static inline uint32_t mcu_pkhbt(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
MCU_MAYBE_UNUSED static inline uint32_t mcu_pkhtb(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
MCU_MAYBE_UNUSED static inline int32_t mcu_smmulr(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
#else
#define mcu_pkhbt(a, b) (((uint32_t)(a) & 0xFFFFu) | ((uint32_t)(b) << 16))
#define mcu_pkhtb(a, b) (((uint32_t)(a) & 0xFFFF0000u) | ((uint32_t)(b) >> 16))
#define mcu_smmulr(a, b) ((int32_t)(((int64_t)(a) * (b) + (INT64_C(1) << 31)) >> 32))
#endif
#endif

/* Each signed byte of v clamped to [the same byte of lo4, that of hi4]: four int8 outputs at once for the *_fast
 * kernels (SSUB8 sets the GE flags that SEL reads: a max, then a min), bit-exact C twin under MCU_EMULATE_DSP. */
#if MCU_DSP && !defined(MCU_EMULATE_DSP) && defined(__GNUC__)
MCU_MAYBE_UNUSED static inline uint32_t mcu_clamp_s8x4(uint32_t v, uint32_t lo4, uint32_t hi4)
{
    uint32_t t;
    __asm__("ssub8 %[t], %[v], %[lo]\n\t"
            "sel   %[v], %[v], %[lo]\n\t"
            "ssub8 %[t], %[hi], %[v]\n\t"
            "sel   %[v], %[v], %[hi]"
            : [v] "+r"(v), [t] "=&r"(t)
            : [lo] "r"(lo4), [hi] "r"(hi4)
            : "cc");
    return v;
}
#elif MCU_DSP
MCU_MAYBE_UNUSED static inline uint32_t mcu_clamp_s8x4(uint32_t v, uint32_t lo4, uint32_t hi4)
{
    uint32_t r = 0;
    for (uint32_t i = 0; i < 32; i += 8)
    {
        const int32_t x = (int8_t)(uint8_t)(v >> i), lo = (int8_t)(uint8_t)(lo4 >> i), hi = (int8_t)(uint8_t)(hi4 >> i);
        r |= (uint32_t)(uint8_t)(x < lo ? lo : (x > hi ? hi : x)) << i;
    }
    return r;
}
#endif

/* A branch hint: the condition is almost always true. */
#if defined(__GNUC__)
#define MCU_LIKELY(cond) __builtin_expect(!!(cond), 1)
#else
#define MCU_LIKELY(cond) (cond)
#endif

/* mcu_requantize(x, multiplier, shift) + offset where |x| < 2^29, -31 <= shift <= 0 and |offset| < 2^8 (the
 * *_fast kernels check this range at compile time), in fewer instructions. With r the rounded doubling high
 * product, the halves-away-from-zero division by 2^e is (((2r - [r < 0]) >> e) + 1) >> 1 (floor identities), and
 * that last shift takes the offset too. r is one SMMULR of 2x where MCU_DSP. Thumb-1 has no long multiply:
 * for |x| < 2^19, three products with 11-bit pieces of the multiplier (each within 2^30), rounded down piece
 * by piece, give the same floor; larger x take mcu_mul_high_rounded. */
MCU_MAYBE_UNUSED static inline int32_t mcu_requantize_fast(int32_t x, int32_t multiplier, int32_t shift,
                                                           int32_t offset)
{
#if MCU_DSP
    const int32_t r = mcu_smmulr(2 * x, multiplier);
#elif defined(MCU_NO_LONG_MUL) && MCU_NO_LONG_MUL
    int32_t r;
    if (MCU_LIKELY((x >> 19) == -(x < 0 ? 1 : 0))) /* -2^19 <= x < 2^19 */
    {
        const int32_t low = (x * (multiplier & 0x7FF)) >> 11;
        const int32_t mid = (x * ((multiplier >> 11) & 0x7FF) + low) >> 11;
        r = (x * (multiplier >> 22) + mid + (1 << 8)) >> 9;
    }
    else
    {
        r = mcu_mul_high_rounded(x, multiplier);
    }
#else
    const int32_t r = mcu_mul_high_rounded(x, multiplier);
#endif
    const int32_t t = (2 * r - (int32_t)((uint32_t)r >> 31)) >> -shift;
    return (t + (2 * offset + 1)) >> 1;
}

#endif /* MCU_NN_SUPPORT_H */
