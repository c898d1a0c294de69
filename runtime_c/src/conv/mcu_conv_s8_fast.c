/* Per-channel int8 convolution (group = 1) as an int8 GEMM. The windows of MCU_CONV_FAST_PIXELS output pixels are
 * im2col'ed into int16 scratch, then every pair of output channels makes one pass over its packed weights with
 * 2 * MCU_CONV_FAST_PIXELS accumulators. The input offset is folded into the bias at compile time, so a tap outside
 * the image holds the input zero point (a 0 term once folded) and the products are raw int8 x int8: two MACs per
 * SMLAD where MCU_DSP, else portable C. Refer to mcu_nn.h for details.
 *
 * The depths (ky, kx, ic flattened) go in chunks of 4, the last one padded (zero weights, zero values), and in each
 * chunk in the order in which SXTB16 splits a word: depths 0, 2, then 1, 3 ("positions" q0 .. q3). The scratch holds
 * pixel `slot`'s value at position q at halfword mcu_conv_s8_fast_col_index(slot, q):
 *   MCU_DSP:  per chunk the words [q0 q1] of slots 0, 1, 2, then the words [q2 q3] of slots 0, 1, 2;
 *   portable: per position the word [slot 0, slot 1].
 * The weights (mcucompile/ops/conv.py pack_conv_fast) hold, for each pair of output channels, its chunks with the
 * two channels interleaved per position; then, if C_OUT is odd, the last channel's chunks in depth order. */
#include "mcu_nn.h"

/* Output pixels per step. With MCU_DSP a block of 3 pixels x 2 channels takes 13 of the 14 registers of the SMLAD
 * loop (28 cycles for 24 MACs, against 21 for 16 with 2 pixels); Thumb-1's 8 low registers hold a 2 x 2 block. */
#if MCU_DSP
#define MCU_CONV_FAST_PIXELS 3
#else
#define MCU_CONV_FAST_PIXELS 2
#endif
/* Channel pairs per GEMM block of the portable build: their accumulators wait in scratch for the requantization
 * (MCU_DSP requantizes each pair from registers; the scratch keeps the room, im2col stages windows there). */
#define MCU_CONV_FAST_PAIRS 8
#if defined(__GNUC__)
#define MCU_CONV_FAST_NOINLINE __attribute__((noinline))
#define MCU_CONV_FAST_INLINE __attribute__((always_inline)) inline
#else
#define MCU_CONV_FAST_NOINLINE
#define MCU_CONV_FAST_INLINE inline
#endif

MCU_API int32_t mcu_conv_s8_fast_get_buffer_size(const mcu_dims *filter_dims)
{
    const int32_t depth = filter_dims->h * filter_dims->w * filter_dims->c;
    const int32_t pairs = (filter_dims->n + 1) / 2;
    /* The most either build needs: 3 pixels of int16 (the last chunk whole), then the int32 accumulators of a
     * block of channel pairs. */
    return 3 * 2 * ((depth + 3) & ~3) + 3 * 2 * 4 * (pairs < MCU_CONV_FAST_PAIRS ? pairs : MCU_CONV_FAST_PAIRS);
}

/* Position of depth d (see the top of the file). */
static inline int32_t mcu_conv_s8_fast_pos(int32_t d)
{
    return (d & ~3) | ((d & 1) << 1) | ((d >> 1) & 1);
}

static inline int32_t mcu_conv_s8_fast_col_index(int32_t slot, int32_t q)
{
#if MCU_DSP
    return 12 * (q >> 2) + 6 * ((q >> 1) & 1) + 2 * slot + (q & 1);
#else
    return 2 * q + slot;
#endif
}

/* One 32-bit word of the scratch or of the (4-byte aligned) weights (the asm GEMM has no use for it). */
MCU_MAYBE_UNUSED static inline int32_t mcu_conv_s8_fast_word(const void *p)
{
    int32_t v;
#if defined(__GNUC__)
    p = __builtin_assume_aligned(p, 4);
#endif
    memcpy(&v, p, sizeof v);
    return v;
}

/* --- im2col ------------------------------------------------------------------------------------------------ */

/* `count` whole chunks of a pixel's column from 4 bytes each (src stepping by step4: 4, or 0 for the zero point):
 * bytes 0, 2 go to positions q0, q1, bytes 1, 3 to q2, q3. c: the pixel's first halfword of the first chunk. */
static inline void mcu_conv_s8_fast_chunks(int16_t *c, const int8_t *src, int32_t step4, int32_t count)
{
    for (; count > 0; count--, src += step4)
    {
#if MCU_DSP
        const uint32_t bytes = mcu_read_u32(src);
        const int32_t even = mcu_sxtb16(bytes), odd = mcu_sxtb16_ror8(bytes);
        memcpy(c, &even, sizeof even);
        memcpy(c + 6, &odd, sizeof odd);
        c += 12;
#else
        c[0] = src[0];
        c[2] = src[2];
        c[4] = src[1];
        c[6] = src[3];
        c += 8;
#endif
    }
}

/* Depths d .. d + n - 1 of pixel `slot`: n input bytes (step 1), or the zero point (src: 4 copies, step 0). */
static void mcu_conv_s8_fast_put(int16_t *col, int32_t slot, int32_t d, const int8_t *src, int32_t step, int32_t n)
{
    for (; n > 0 && (d & 3) != 0; n--, d++, src += step)
    {
        col[mcu_conv_s8_fast_col_index(slot, mcu_conv_s8_fast_pos(d))] = *src;
    }
    if (n >= 4)
    {
        mcu_conv_s8_fast_chunks(col + mcu_conv_s8_fast_col_index(slot, d), src, 4 * step, n >> 2);
        d += n & ~3;
        src += step * (n & ~3);
        n &= 3;
    }
    for (; n > 0; n--, d++, src += step)
    {
        col[mcu_conv_s8_fast_col_index(slot, mcu_conv_s8_fast_pos(d))] = *src;
    }
}

/* mcu_conv_s8_fast_put, inline where the run is whole chunks (the usual case: C_IN or WK * C_IN a multiple of 4). */
static inline void mcu_conv_s8_fast_run(int16_t *col, int32_t slot, int32_t d, const int8_t *src, int32_t step,
                                        int32_t n)
{
    if (((d | n) & 3) == 0)
    {
        mcu_conv_s8_fast_chunks(col + mcu_conv_s8_fast_col_index(slot, d), src, 4 * step, n >> 2);
    }
    else
    {
        mcu_conv_s8_fast_put(col, slot, d, src, step, n);
    }
}

/* The window of output pixel (oy, ox) of image `image` into scratch slot `slot`. `stage`: room for the window's
 * bytes (the depth rounded up to 4), or NULL. Out of line: inlined into the kernel, it shares the registers of the
 * pixel loop and spills. */
MCU_CONV_FAST_NOINLINE static void mcu_conv_s8_fast_im2col(int16_t *col,
                                                           int32_t slot,
                                                           const mcu_conv_params *params,
                                                           const mcu_dims *input_dims,
                                                           const mcu_dims *filter_dims,
                                                           const int8_t *image,
                                                           int32_t oy,
                                                           int32_t ox,
                                                           const int8_t *zero_point,
                                                       int8_t *stage)
{
    /* Locals: the scratch stores may alias any field, so the compiler would reload them after each. */
    const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
    const int32_t kh = filter_dims->h, kw = filter_dims->w;
    const int32_t dil_h = params->dilation.h, dil_w = params->dilation.w;
    const int32_t row = kw * in_c; /* depths of one filter row */
    const int32_t iy0 = oy * params->stride.h - params->padding.h;
    const int32_t ix0 = ox * params->stride.w - params->padding.w;
    /* Taps kx_lo .. kx_hi - 1 of every row are inside the image. */
    int32_t kx_lo = 0, kx_hi = kw;
    while (kx_lo < kw && ix0 + kx_lo * dil_w < 0)
    {
        kx_lo++;
    }
    while (kx_hi > kx_lo && ix0 + (kx_hi - 1) * dil_w >= in_w)
    {
        kx_hi--;
    }
    const int32_t dense = dil_w == 1 && kx_lo == 0 && kx_hi == kw; /* the row's taps are one run of bytes */
    const int64_t line_bytes = (int64_t)in_w * in_c;
    if (dense && (row & 3) == 0 && iy0 >= 0 && iy0 + (kh - 1) * dil_h < in_h)
    {
        /* The usual case: the whole window inside the image, each row one run of whole chunks. */
        const int8_t *src = image + iy0 * line_bytes + (int64_t)ix0 * in_c;
        int16_t *c = col + mcu_conv_s8_fast_col_index(slot, 0);
        for (int32_t ky = 0; ky < kh; ky++, src += dil_h * line_bytes, c += MCU_CONV_FAST_PIXELS * row)
        {
            mcu_conv_s8_fast_chunks(c, src, 4, row >> 2);
        }
        return;
    }
    if ((row & 3) != 0 && stage != NULL)
    {
        /* Rows not in whole chunks (C_IN = 1 or 3): the window's bytes gathered first (the zero point, then the
         * taps inside over it; the padding to a whole chunk 0, as its weights), then whole chunks at a time. */
        const int32_t depth = kh * row;
        memset(stage, zero_point[0], (size_t)depth);
        memset(stage + depth, 0, (size_t)(-depth & 3));
        for (int32_t ky = 0, iy = iy0; ky < kh; ky++, iy += dil_h)
        {
            if (iy >= 0 && iy < in_h && kx_lo < kx_hi)
            {
                const int8_t *line = image + iy * line_bytes;
                for (int32_t kx = kx_lo; kx < kx_hi; kx += dil_w == 1 ? kx_hi - kx_lo : 1) /* one run if dense */
                {
                    const int32_t taps = dil_w == 1 ? kx_hi - kx_lo : 1;
                    memcpy(stage + ky * row + kx * in_c, line + (int64_t)(ix0 + kx * dil_w) * in_c,
                           (size_t)(taps * in_c));
                }
            }
        }
        mcu_conv_s8_fast_chunks(col + mcu_conv_s8_fast_col_index(slot, 0), stage, 4, (depth + 3) >> 2);
        return;
    }
    int32_t d = 0;
    for (int32_t ky = 0, iy = iy0; ky < kh; ky++, iy += dil_h, d += row)
    {
        if (iy < 0 || iy >= in_h)
        {
            mcu_conv_s8_fast_run(col, slot, d, zero_point, 0, row);
            continue;
        }
        const int8_t *line = image + iy * line_bytes;
        if (dense)
        {
            mcu_conv_s8_fast_run(col, slot, d, line + (int64_t)ix0 * in_c, 1, row);
            continue;
        }
        /* A row partly outside the image: the zero point over the whole row (whole chunks in the usual case), then
         * the taps inside over it. */
        mcu_conv_s8_fast_run(col, slot, d, zero_point, 0, row);
        for (int32_t kx = kx_lo; kx < kx_hi; kx++)
        {
            const int8_t *src = line + (int64_t)(ix0 + kx * dil_w) * in_c;
            if (in_c == 1) /* first layers: one byte, no call */
            {
                col[mcu_conv_s8_fast_col_index(slot, mcu_conv_s8_fast_pos(d + kx))] = *src;
            }
            else
            {
                mcu_conv_s8_fast_run(col, slot, d + kx * in_c, src, 1, in_c);
            }
        }
    }
    for (; (d & 3) != 0; d++) /* the last chunk's padding: 0, as its weights (no stale scratch is read) */
    {
        col[mcu_conv_s8_fast_col_index(slot, mcu_conv_s8_fast_pos(d))] = 0;
    }
}

/* --- GEMM: acc[MCU_CONV_FAST_PIXELS * c + slot] for channel c of a pair, pixel `slot` --------------------------- */

#if MCU_DSP
/* One whole chunk of the GEMM: acc += 4 depths of products for 3 pixels x 2 channels; x and w step past the chunk.
 * x: the words [q0 q1] of pixels 0, 1, 2, then [q2 q3] of pixels 0, 1, 2; w: a word of channels 0, 1 interleaved
 * at q0 q1, then one at q2 q3, whose SXTB16 is channel 0's lanes and SXTB16 with ROR 8 channel 1's. In asm: 28
 * cycles for 24 MACs (four LDRD with post-increment, 4 SXTB16, 12 SMLAD) in 13 registers; GCC's own schedule of
 * the same C needs more registers than there are and spills accumulators. (MCU_KERNEL_ASM says where.) */
#if MCU_KERNEL_ASM
#define MCU_CONV_FAST_CHUNK_ASM                                                                                        \
    "ldrd   %[wa], %[wb], [%[w]], #8\n\t"                                                                             \
    "ldrd   %[xa], %[xb], [%[x]], #8\n\t"                                                                             \
    "sxtb16 %[w0], %[wa]\n\t"                                                                                        \
    "sxtb16 %[wa], %[wa], ror #8\n\t"                                                                                \
    "smlad  %[a00], %[xa], %[w0], %[a00]\n\t"                                                                        \
    "smlad  %[a10], %[xa], %[wa], %[a10]\n\t"                                                                        \
    "smlad  %[a01], %[xb], %[w0], %[a01]\n\t"                                                                        \
    "smlad  %[a11], %[xb], %[wa], %[a11]\n\t"                                                                        \
    "ldrd   %[xa], %[xb], [%[x]], #8\n\t"                                                                             \
    "smlad  %[a02], %[xa], %[w0], %[a02]\n\t"                                                                        \
    "smlad  %[a12], %[xa], %[wa], %[a12]\n\t"                                                                        \
    "sxtb16 %[w0], %[wb]\n\t"                                                                                        \
    "sxtb16 %[wb], %[wb], ror #8\n\t"                                                                                \
    "smlad  %[a00], %[xb], %[w0], %[a00]\n\t"                                                                        \
    "smlad  %[a10], %[xb], %[wb], %[a10]\n\t"                                                                        \
    "ldrd   %[xa], %[xb], [%[x]], #8\n\t"                                                                             \
    "smlad  %[a01], %[xa], %[w0], %[a01]\n\t"                                                                        \
    "smlad  %[a11], %[xa], %[wb], %[a11]\n\t"                                                                        \
    "smlad  %[a02], %[xb], %[w0], %[a02]\n\t"                                                                        \
    "smlad  %[a12], %[xb], %[wb], %[a12]\n\t"
#define MCU_CONV_FAST_CHUNK_OPERANDS                                                                                   \
    [x] "+r"(*x), [w] "+r"(*w), [a00] "+r"(acc[0]), [a01] "+r"(acc[1]), [a02] "+r"(acc[2]), [a10] "+r"(acc[3]),    \
        [a11] "+r"(acc[4]), [a12] "+r"(acc[5]), [wa] "=&r"(wa), [wb] "=&r"(wb), [w0] "=&r"(w0), [xa] "=&r"(xa),      \
        [xb] "=&r"(xb)
#endif
static MCU_CONV_FAST_INLINE void mcu_conv_s8_fast_chunk(const int16_t **x, const int8_t **w, int32_t acc[6])
{
#if MCU_KERNEL_ASM
    int32_t wa, wb, w0, xa, xb;
    __asm__(MCU_CONV_FAST_CHUNK_ASM : MCU_CONV_FAST_CHUNK_OPERANDS : : "memory");
#else
    const uint32_t wa = (uint32_t)mcu_conv_s8_fast_word(*w), wb = (uint32_t)mcu_conv_s8_fast_word(*w + 4);
    const int32_t lanes[2][2] = {{mcu_sxtb16(wa), mcu_sxtb16(wb)}, {mcu_sxtb16_ror8(wa), mcu_sxtb16_ror8(wb)}};
    for (int32_t c = 0; c < 2; c++)
    {
        for (int32_t slot = 0; slot < 3; slot++)
        {
            const int32_t even = mcu_conv_s8_fast_word(*x + 2 * slot), odd = mcu_conv_s8_fast_word(*x + 6 + 2 * slot);
            acc[3 * c + slot] = mcu_smlad(odd, lanes[c][1], mcu_smlad(even, lanes[c][0], acc[3 * c + slot]));
        }
    }
    *x += 12;
    *w += 8;
#endif
}

/* Whole chunks four at a time until *x reaches end (at least four). The asm loop compares with `end` in memory
 * through a dead temporary: every register holds a value of the loop. (Clang cannot allocate that operand too:
 * there, a C loop around the one-chunk asm.) It and mcu_conv_s8_fast_chunk are always inlined: out of line, the
 * accumulators would live in memory. */
static MCU_CONV_FAST_INLINE void mcu_conv_s8_fast_chunks4(const int16_t **x,
                                                          const int8_t **w,
                                                          const int16_t *end,
                                                          int32_t acc[6])
{
#if MCU_KERNEL_ASM && !defined(__clang__)
    int32_t wa, wb, w0, xa, xb;
    __asm__("1:\n\t" MCU_CONV_FAST_CHUNK_ASM MCU_CONV_FAST_CHUNK_ASM MCU_CONV_FAST_CHUNK_ASM MCU_CONV_FAST_CHUNK_ASM
            "ldr    %[xa], %[end]\n\t"
            "cmp    %[x], %[xa]\n\t"
            "bne    1b"
            : MCU_CONV_FAST_CHUNK_OPERANDS
            : [end] "m"(end)
            : "cc", "memory");
#else
    do
    {
        mcu_conv_s8_fast_chunk(x, w, acc);
        mcu_conv_s8_fast_chunk(x, w, acc);
        mcu_conv_s8_fast_chunk(x, w, acc);
        mcu_conv_s8_fast_chunk(x, w, acc);
    } while (*x != end);
#endif
}
#else
/* acc[2 * c + slot] += n positions of products: per position, x the pixel pair's word [pixel 0 | pixel 1 << 16] and
 * w the channel pair's bytes [channel 0, channel 1]. Rolled, in this order and out of line, GCC keeps the
 * accumulators in registers on Thumb-1 (~25 cycles per 4 MACs); unrolled, it sums the products first and spills,
 * and inlined it spills one. */
MCU_CONV_FAST_NOINLINE static void mcu_conv_s8_fast_positions(const int16_t *x, const int8_t *w, int32_t n,
                                                               int32_t acc[4])
{
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    for (const int16_t *end = x + 2 * n; x != end; x += 2, w += 2)
    {
        int32_t x1 = mcu_conv_s8_fast_word(x);
        int32_t x0 = (int16_t)(uint16_t)((uint32_t)x1 & 0xFFFFu);
        x1 >>= 16;
        int32_t w0 = w[0];
        a00 += w0 * x0;
        w0 *= x1;
        a01 += w0;
        const int32_t w1 = w[1];
        x0 *= w1;
        a10 += x0;
        x1 *= w1;
        a11 += x1;
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}
#endif

/* v saturated to int8: one SSAT, into which GCC folds the last shift of mcu_requantize_fast. (The builtin behind
 * ACLE's __ssat: GCC's arm_acle.h macro trips -Wsign-conversion.) */
#if MCU_DSP && !defined(MCU_EMULATE_DSP) && defined(__GNUC__)
#define mcu_conv_s8_fast_sat8(v) ((int32_t)__builtin_arm_ssat((v), 8))
#elif MCU_DSP
static inline int32_t mcu_conv_s8_fast_sat8(int32_t v)
{
    return v < -128 ? -128 : (v > 127 ? 127 : v);
}
#endif

#if MCU_DSP
/* For the out_c / 2 channel pairs: the products of the pixels' column with the pair's weights (from w on) on top
 * of the bias in 6 registers, then straight from them requantized and clamped into out[slot] (|acc| < 2^29 and
 * shift <= 0, lower_conv checks both): channels 2k, 2k + 1 of pixel 0 in the low halfword of one word, of pixel 1
 * in its high one, of pixel 2 in the low one of another. */
static MCU_CONV_FAST_INLINE void mcu_conv_s8_fast_pairs_of(const int16_t *col,
                                                             const int8_t *w,
                                                             int32_t chunks,
                                                             const int32_t *bias,
                                                             int32_t out_c,
                                                             const mcu_per_channel_quant *quant,
                                                             const mcu_conv_params *params,
                                                             int8_t *const *out,
                                                             int32_t whole4)
{
    /* Locals: the int8 stores may alias any field, so the compiler would reload them after each. */
    const int32_t offset = params->output_offset;
    const uint32_t lo4 = 0x01010101u * (uint8_t)params->activation.min;
    const uint32_t hi4 = 0x01010101u * (uint8_t)params->activation.max;
    const int32_t *mult = quant->multiplier, *shift = quant->shift;
    /* Pixel 1 and 2 as offsets from pixel 0 (register-offset stores). The loop steps one index k for the bias, the
     * quantization and the outputs: the bases wait on the stack, and each is one load there. */
    int8_t *out0 = out[0];
    const ptrdiff_t to1 = out[1] - out[0], to2 = out[2] - out[0];
    const int16_t *end = col + 12 * (chunks & ~3);
    for (int32_t k = 0; k < (out_c & ~1); k += 2)
    {
        /* Held in registers through the chunks: element by element, never passed on (else GCC keeps it in memory
         * and stores it around every asm statement). */
        int32_t a[6];
        a[0] = a[1] = a[2] = bias[k];
        a[3] = a[4] = a[5] = bias[k + 1];
        const int16_t *x = col;
        if (whole4 || x != end)
        {
            mcu_conv_s8_fast_chunks4(&x, &w, end, a);
        }
        if (!whole4 && (chunks & 2))
        {
            mcu_conv_s8_fast_chunk(&x, &w, a);
            mcu_conv_s8_fast_chunk(&x, &w, a);
        }
        if (!whole4 && (chunks & 1))
        {
            mcu_conv_s8_fast_chunk(&x, &w, a);
        }
        const int32_t m0 = mult[k], s0 = shift[k], m1 = mult[k + 1], s1 = shift[k + 1];
        const int32_t v00 = mcu_conv_s8_fast_sat8(mcu_requantize_fast(a[0], m0, s0, offset));
        const int32_t v01 = mcu_conv_s8_fast_sat8(mcu_requantize_fast(a[1], m0, s0, offset));
        const int32_t v02 = mcu_conv_s8_fast_sat8(mcu_requantize_fast(a[2], m0, s0, offset));
        const int32_t v10 = mcu_conv_s8_fast_sat8(mcu_requantize_fast(a[3], m1, s1, offset));
        const int32_t v11 = mcu_conv_s8_fast_sat8(mcu_requantize_fast(a[4], m1, s1, offset));
        const int32_t v12 = mcu_conv_s8_fast_sat8(mcu_requantize_fast(a[5], m1, s1, offset));
        const uint32_t pixels01 = mcu_clamp_s8x4(
            mcu_pkhbt((uint8_t)v00 | ((uint32_t)v10 << 8), (uint8_t)v01 | ((uint32_t)v11 << 8)), lo4, hi4);
        const uint32_t pixel2 = mcu_clamp_s8x4((uint8_t)v02 | ((uint32_t)(uint8_t)v12 << 8), lo4, hi4);
        const uint16_t half0 = (uint16_t)pixels01, half1 = (uint16_t)(pixels01 >> 16), half2 = (uint16_t)pixel2;
        memcpy(out0 + k, &half0, sizeof half0);
        memcpy(out0 + k + to1, &half1, sizeof half1);
        memcpy(out0 + k + to2, &half2, sizeof half2);
    }
}

/* mcu_conv_s8_fast_pairs_of, with a copy for the usual depth, a multiple of 4 chunks (no tests of the rest). Out
 * of line, GCC spills less in that copy (pointwise layers). */
MCU_CONV_FAST_NOINLINE static void mcu_conv_s8_fast_pairs(const int16_t *col,
                                                          const int8_t *w,
                                                          int32_t chunks,
                                                          const int32_t *bias,
                                                          int32_t out_c,
                                                          const mcu_per_channel_quant *quant,
                                                          const mcu_conv_params *params,
                                                          int8_t *const *out)
{
    if ((chunks & 3) == 0 && chunks >= 4)
    {
        mcu_conv_s8_fast_pairs_of(col, w, chunks, bias, out_c, quant, params, out, 1);
    }
    else
    {
        mcu_conv_s8_fast_pairs_of(col, w, chunks, bias, out_c, quant, params, out, 0);
    }
}
#else
/* For `pairs` channel pairs from the one whose weights are at *w: acc = bias + the products with the pixels'
 * column, 2 * MCU_CONV_FAST_PIXELS per pair; *w steps past the pairs. */
static void mcu_conv_s8_fast_gemm(const int16_t *col,
                                  const int8_t **w,
                                  int32_t chunks,
                                  const int32_t *bias,
                                  int32_t pairs,
                                  int32_t *acc)
{
    const int32_t *stop = acc + 2 * MCU_CONV_FAST_PIXELS * pairs;
    for (; acc != stop; acc += 2 * MCU_CONV_FAST_PIXELS, bias += 2)
    {
        acc[0] = acc[1] = bias[0];
        acc[2] = acc[3] = bias[1];
        mcu_conv_s8_fast_positions(col, *w, 4 * chunks, acc);
        *w += 8 * chunks;
    }
}
#endif

/* acc[slot] = bias + the products of the pixels' column with the last (odd) channel, whose chunks are at w in depth
 * order. Rare: plain loops. */
static void mcu_conv_s8_fast_gemm_odd(const int16_t *col, const int8_t *w, int32_t chunks, int32_t bias, int32_t *acc)
{
    for (int32_t slot = 0; slot < MCU_CONV_FAST_PIXELS; slot++)
    {
        acc[slot] = bias;
        for (int32_t d = 0; d < 4 * chunks; d++)
        {
            acc[slot] += col[mcu_conv_s8_fast_col_index(slot, mcu_conv_s8_fast_pos(d))] * w[d];
        }
    }
}

/* --- requantization ------------------------------------------------------------------------------------------ */

/* Output channels oc .. oc + n - 1 of the pixels from their accumulators (acc[P * k + slot]: channel oc + k, pixel
 * `slot`) into out[slot]; |acc| < 2^29 and shift <= 0 (lower_conv checks both). */
static void mcu_conv_s8_fast_requantize(const int32_t *acc,
                                        int32_t oc,
                                        int32_t n,
                                        const mcu_per_channel_quant *quant,
                                        const mcu_conv_params *params,
                                        int8_t *const *out)
{
    /* Locals: the int8 stores may alias any field, so the compiler would reload them after each. */
    const int32_t offset = params->output_offset, lo = params->activation.min, hi = params->activation.max;
    const int32_t *mult = quant->multiplier + oc, *shift = quant->shift + oc;
    const int32_t *end = acc + MCU_CONV_FAST_PIXELS * n;
    /* Pixel 1 and 2 as offsets from pixel 0 (register-offset stores; one pointer to step). */
    int8_t *out0 = out[0] + oc;
    const ptrdiff_t to1 = out[1] - out[0];
#if MCU_DSP
    const ptrdiff_t to2 = out[2] - out[0];
#endif
    for (; acc != end; acc += MCU_CONV_FAST_PIXELS, mult++, shift++, out0++)
    {
        int32_t v = mcu_requantize_fast(acc[0], *mult, *shift, offset);
        out0[0] = (int8_t)(v < lo ? lo : (v > hi ? hi : v));
        v = mcu_requantize_fast(acc[1], *mult, *shift, offset);
        out0[to1] = (int8_t)(v < lo ? lo : (v > hi ? hi : v));
#if MCU_DSP
        v = mcu_requantize_fast(acc[2], *mult, *shift, offset);
        out0[to2] = (int8_t)(v < lo ? lo : (v > hi ? hi : v));
#endif
    }
}

/* Every output channel of the pixels whose column is in col, into out[slot]. MCU_DSP: pair by pair, the GEMM and
 * the requantization from registers, then any last (odd) channel through its accumulators in acc. Portable: for
 * each block of up to 2 * MCU_CONV_FAST_PAIRS channels, the GEMM into int32 accumulators in acc, then their
 * requantization (apart, each loop keeps its values in registers instead of the stack). */
static void mcu_conv_s8_fast_channels(const int16_t *col,
                                      int32_t *acc,
                                      const mcu_conv_params *params,
                                      const mcu_per_channel_quant *quant,
                                      const int8_t *w,
                                      int32_t depth,
                                      const int32_t *bias,
                                      int32_t out_c,
                                      int8_t *const *out)
{
    const int32_t chunks = (depth + 3) >> 2;
#if MCU_DSP
    mcu_conv_s8_fast_pairs(col, w, chunks, bias, out_c, quant, params, out);
    if (out_c & 1)
    {
        mcu_conv_s8_fast_gemm_odd(col, w + 4 * chunks * (out_c - 1), chunks, bias[out_c - 1], acc);
        mcu_conv_s8_fast_requantize(acc, out_c - 1, 1, quant, params, out);
    }
#else
    for (int32_t oc = 0; oc < out_c; oc += 2 * MCU_CONV_FAST_PAIRS)
    {
        const int32_t n = out_c - oc < 2 * MCU_CONV_FAST_PAIRS ? out_c - oc : 2 * MCU_CONV_FAST_PAIRS;
        mcu_conv_s8_fast_gemm(col, &w, chunks, bias + oc, n >> 1, acc);
        if (n & 1)
        {
            mcu_conv_s8_fast_gemm_odd(col, w, chunks, bias[oc + n - 1], acc + MCU_CONV_FAST_PIXELS * (n - 1));
        }
        mcu_conv_s8_fast_requantize(acc, oc, n, quant, params, out);
    }
#endif
}

/* at = (image, row, column) of the next output pixel in NHWC order. */
static inline void mcu_conv_s8_fast_advance(int32_t at[3], const mcu_dims *output_dims)
{
    if (++at[2] == output_dims->w)
    {
        at[2] = 0;
        if (++at[1] == output_dims->h)
        {
            at[1] = 0;
            at[0]++;
        }
    }
}

MCU_API mcu_status mcu_conv_s8_fast(const mcu_context *ctx,
                                    const mcu_conv_params *params,
                                    const mcu_per_channel_quant *quant,
                                    const mcu_dims *input_dims,
                                    const int8_t *input,
                                    const mcu_dims *filter_dims,
                                    const int8_t *filter,
                                    const int32_t *bias,
                                    const mcu_dims *output_dims,
                                    int8_t *output)
{
    const int32_t out_c = output_dims->c;
    const int32_t pixel = mcu_pixel_stride(params->output_stride, out_c);
    if (filter_dims->c != input_dims->c || filter_dims->n != out_c || pixel == 0 || bias == NULL ||
        input_dims->n != output_dims->n || ((uintptr_t)filter & 3u) != 0 || ctx == NULL || ctx->buf == NULL ||
        ((uintptr_t)ctx->buf & 3u) != 0 || ctx->size < mcu_conv_s8_fast_get_buffer_size(filter_dims))
    {
        return MCU_STATUS_ARG_ERROR;
    }
    const int32_t depth = filter_dims->h * filter_dims->w * filter_dims->c;
    int16_t *col = (int16_t *)ctx->buf;
    int32_t *acc = (int32_t *)ctx->buf + 6 * ((depth + 3) >> 2); /* after the column: 3 pixels, 4 * 2 bytes a chunk */
    /* im2col may gather a window's bytes in the accumulators' room, free until the GEMM. */
    const int32_t room = 3 * 2 * 4 * (out_c < 2 * MCU_CONV_FAST_PAIRS ? (out_c + 1) / 2 : MCU_CONV_FAST_PAIRS);
    int8_t *stage = ((depth + 3) & ~3) <= room ? (int8_t *)acc : NULL;
    int8_t zero_point[4]; /* 4 copies: a whole chunk of padding is read as one word */
    memset(zero_point, (int8_t)-params->input_offset, sizeof zero_point);
    const int64_t image = (int64_t)input_dims->h * input_dims->w * input_dims->c;
    const int32_t pixels = output_dims->n * output_dims->h * output_dims->w;
    int32_t at[3] = {0, 0, 0}; /* image, row and column of the pixel to im2col next */
    int8_t *next = output;     /* its output */
    int32_t index = 0;         /* its index in NHW order */
    /* Pointwise (1x1, stride 1, no padding, the same height and width, C_IN whole chunks): pixel p's window is the
     * C_IN bytes at input + p * C_IN, read straight, without im2col's bounds. */
    const int32_t in_c = input_dims->c;
    const int plain = filter_dims->h == 1 && filter_dims->w == 1 && params->stride.h == 1 && params->stride.w == 1 &&
                      params->padding.h == 0 && params->padding.w == 0 && (in_c & 3) == 0 && in_c > 0 &&
                      input_dims->h == output_dims->h && input_dims->w == output_dims->w;
    for (int32_t left = pixels; left > 0; left -= MCU_CONV_FAST_PIXELS)
    {
        /* Every window of the step is read before any of its outputs is written (the overlap gap relies on it).
         * Past the last pixel, the slots repeat it: same values, written to the same place. */
        int8_t *out[MCU_CONV_FAST_PIXELS];
        for (int32_t slot = 0; slot < MCU_CONV_FAST_PIXELS; slot++)
        {
            if (slot > 0 && slot < left)
            {
                mcu_conv_s8_fast_advance(at, output_dims);
                next += pixel;
                index++;
            }
            if (plain)
            {
                mcu_conv_s8_fast_chunks(col + mcu_conv_s8_fast_col_index(slot, 0), input + (int64_t)index * in_c, 4,
                                        in_c >> 2);
            }
            else
            {
                mcu_conv_s8_fast_im2col(col, slot, params, input_dims, filter_dims, input + at[0] * image, at[1],
                                        at[2], zero_point, stage);
            }
            out[slot] = next;
        }
        mcu_conv_s8_fast_advance(at, output_dims); /* on to the next step's first pixel */
        next += pixel;
        index++;
        mcu_conv_s8_fast_channels(col, acc, params, quant, filter, depth, bias, out_c, out);
    }
    return MCU_STATUS_OK;
}
