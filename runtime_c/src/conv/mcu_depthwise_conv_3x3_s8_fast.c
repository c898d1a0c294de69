/* Per-channel int8 depthwise 3x3 convolution (depth multiplier 1, dilation 1, any stride and padding), 4 channels
 * at a time with the 9 taps unrolled. The input offset is folded into the bias at compile time, so the inner loop
 * multiplies raw int8 values; a tap outside the image reads the input zero point (-input_offset), which adds
 * w * (zp + input_offset) = 0 as the generic kernel's skipped tap does. Refer to mcu_nn.h for details.
 *
 * A block (4 channels of one output pixel) reads one word of 4 input bytes per tap. Pixels take their taps from a
 * table of 9 pointers (tap t at tap[MCU_DW3X3_SLOT(t)] + j: where MCU_DSP the two taps of a pair side by side,
 * one LDRD), a tap outside the image pointing at a buffer of zero points, one chunk of up to 64 channels at a
 * time. Where MCU_DSP, the pixels whose window lies inside the image address their taps from the top-left one
 * instead (p + ky * row + kx * col): no table loads. The weights come packed in the order the DSP path reads
 * them: taps in pairs (two taps of a channel per SMLAD), see mcu_nn.h.
 *
 * Requantization is mcu_requantize_fast (lower_conv guarantees its range and the kernel checks it), saturated to
 * int8; a narrower activation range is applied to the pixel afterwards. */
#include "mcu_nn.h"

/* Channels per chunk of a pixel read through a tap table: the size of the zero-point buffer. */
#define MCU_DW3X3_CHUNK 64

/* The slot of tap t = 3 * ky + kx in a tap table. Where MCU_DSP, the taps in the order the blocks read them:
 * pairs (0, 3), (1, 4), (2, 5), then 8, then (6, 7); elsewhere in order. */
#if MCU_DSP
static const uint8_t mcu_dw3x3_slot[9] = {0, 2, 4, 1, 3, 5, 7, 8, 6};
#define MCU_DW3X3_SLOT(t) mcu_dw3x3_slot[t]
#else
#define MCU_DW3X3_SLOT(t) (t)
#endif

/* What every pixel needs, copied out of the arguments once. */
typedef struct
{
    const int8_t *filter;
    const int32_t *bias;
    const int32_t *multiplier;
    const int32_t *shift;
    const int8_t *zp; /* MCU_DW3X3_CHUNK copies of the input zero point, 4-byte aligned */
    int32_t channels;
    int32_t offset; /* output offset */
    int32_t lo;     /* activation clamp */
    int32_t hi;
#if !MCU_DSP
    int32_t words; /* taps 4-byte aligned: the portable path reads them as words */
#endif
} mcu_dw3x3_args;

/* The per-block steps are inlined into the pixel loops (GCC would otherwise call them). */
#if defined(__GNUC__)
#define MCU_DW3X3_INLINE static inline __attribute__((always_inline))
#else
#define MCU_DW3X3_INLINE static inline
#endif

/* v clamped to the int8 range: on Armv7E-M GCC makes one SSAT of mcu_clamp with these constants; on Thumb-1 one
 * unsigned compare in the common case (out of range, 127 with all bits flipped if v < 0: -128). */
#if MCU_DSP
#define MCU_DW3X3_SAT8(v) mcu_clamp((v), -128, 127)
#else
MCU_DW3X3_INLINE int32_t mcu_dw3x3_sat8(int32_t v)
{
    return (uint32_t)(v + 128) > 255u ? (int32_t)(0x7Fu ^ (0u - ((uint32_t)v >> 31))) : v;
}
#define MCU_DW3X3_SAT8(v) mcu_dw3x3_sat8(v)
#endif

/* The activation clamp of out[0..n) where it is narrower than int8 (after the pixel's blocks: rewriting its own
 * output reads no input). */
static void mcu_dw3x3_clamp(int8_t *out, int32_t n, const mcu_dw3x3_args *a)
{
    for (int32_t c = 0; c < n; c++)
    {
        out[c] = (int8_t)mcu_clamp(out[c], a->lo, a->hi);
    }
}

#if MCU_KERNEL_ASM
/* Cortex-M4/M7/M33: one block of 36 MACs as inline assembly, so that the 4 accumulators, the addresses and 5
 * temporaries stay in registers (GCC spills when it schedules the C below). Same arithmetic as the C twin. A pair
 * of taps (words x, y, 4 channels each): PKHBT / PKHTB give the halfwords (x0 x1 y0 y1) and (x2 x3 y2 y3), whose
 * SXTB16 (ror 0 or 8) are (x_k, y_k) for k = 0..3, one SMLAD each against the weights of both taps. */
#define MCU_DW3X3_ASM_PAIR                                                                                             \
    "pkhbt  %[u], %[x], %[y], lsl #16\n\t"                                                                             \
    "pkhtb  %[v], %[y], %[x], asr #16\n\t"                                                                             \
    "ldr    %[x], [%[w]], #4\n\t"                                                                                      \
    "sxtb16 %[y], %[x]\n\t"                                                                                            \
    "sxtb16 %[x], %[x], ror #8\n\t"                                                                                    \
    "sxtb16 %[t], %[u]\n\t"                                                                                            \
    "smlad  %[a0], %[t], %[y], %[a0]\n\t"                                                                              \
    "sxtb16 %[t], %[u], ror #8\n\t"                                                                                    \
    "smlad  %[a1], %[t], %[x], %[a1]\n\t"                                                                              \
    "ldr    %[x], [%[w]], #4\n\t"                                                                                      \
    "sxtb16 %[y], %[x]\n\t"                                                                                            \
    "sxtb16 %[x], %[x], ror #8\n\t"                                                                                    \
    "sxtb16 %[t], %[v]\n\t"                                                                                            \
    "smlad  %[a2], %[t], %[y], %[a2]\n\t"                                                                              \
    "sxtb16 %[t], %[v], ror #8\n\t"                                                                                    \
    "smlad  %[a3], %[t], %[x], %[a3]\n\t"
/* The ninth tap (word x) alone: channels (0, 2) and (1, 3) as halfword pairs, one SMLABB / SMLATT per channel. */
#define MCU_DW3X3_ASM_SINGLE                                                                                           \
    "ldr    %[y], [%[w]], #4\n\t"                                                                                      \
    "sxtb16 %[u], %[x]\n\t"                                                                                            \
    "sxtb16 %[x], %[x], ror #8\n\t"                                                                                    \
    "sxtb16 %[v], %[y]\n\t"                                                                                            \
    "sxtb16 %[y], %[y], ror #8\n\t"                                                                                    \
    "smlabb %[a0], %[u], %[v], %[a0]\n\t"                                                                              \
    "smlatt %[a2], %[u], %[v], %[a2]\n\t"                                                                              \
    "smlabb %[a1], %[x], %[y], %[a1]\n\t"                                                                              \
    "smlatt %[a3], %[x], %[y], %[a3]\n\t"
/* The accumulators start from the block's 4 biases, *bias then moves on. GCC: loaded in the assembly through a
 * memory operand (no register; GCC's own loads around the assembly cost twice as much). Clang needs one more
 * register for that operand, which the block does not have: there the C code loads them. */
#if defined(__clang__)
#define MCU_DW3X3_ASM_BIAS ""
#define MCU_DW3X3_ASM_OPERANDS                                                                                         \
    [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w] "+r"(w), [x] "=&r"(x), [y] "=&r"(y),             \
        [u] "=&r"(u), [v] "=&r"(v), [t] "=&r"(t)
#define MCU_DW3X3_ASM_ACC                                                                                              \
    const int32_t *b_ = *bias;                                                                                         \
    int32_t a0 = b_[0], a1 = b_[1], a2 = b_[2], a3 = b_[3];                                                            \
    *bias = b_ + 4
#else
#define MCU_DW3X3_ASM_BIAS                                                                                             \
    "ldr    %[t], %[bias]\n\t"                                                                                         \
    "ldrd   %[a0], %[a1], [%[t]], #8\n\t"                                                                              \
    "ldrd   %[a2], %[a3], [%[t]], #8\n\t"                                                                              \
    "str    %[t], %[bias]\n\t"
#define MCU_DW3X3_ASM_OPERANDS                                                                                         \
    [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [w] "+r"(w), [x] "=&r"(x), [y] "=&r"(y),         \
        [u] "=&r"(u), [v] "=&r"(v), [t] "=&r"(t), [bias] "+m"(*bias)
#define MCU_DW3X3_ASM_ACC int32_t a0, a1, a2, a3
#endif

/* mcu_requantize_fast + saturation of one accumulator a (multiplier m, shift s; both clobbered) into out[k]. */
#define MCU_DW3X3_ASM_OUT(a, m, s, k)                                                                                 \
    "lsl    %[" a "], %[" a "], #1\n\t"                                                                                \
    "smmulr %[" a "], %[" a "], %[" m "]\n\t"                                                                          \
    "asr    %[" m "], %[" a "], #31\n\t"                                                                               \
    "add    %[" a "], %[" m "], %[" a "], lsl #1\n\t"                                                                  \
    "rsb    %[" s "], %[" s "], #0\n\t"                                                                                \
    "asr    %[" a "], %[" a "], %[" s "]\n\t"                                                                          \
    "add    %[" a "], %[" a "], %[off2]\n\t"                                                                           \
    "ssat   %[" a "], #8, %[" a "], asr #1\n\t"                                                                        \
    "strb   %[" a "], [%[out], #" k "]\n\t"

/* mcu_dw3x3_store4 (the C version below) as assembly, in 12 registers (room for GCC's frame pointer): multipliers
 * and shifts loaded two channels at a time (LDRD, word-aligned arrays). Volatile: it stores. */
MCU_DW3X3_INLINE void mcu_dw3x3_store4(const int32_t acc[4], const int32_t *mult, const int32_t *shift, int32_t offset,
                                       int8_t *out)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3], m0, m1, s0, s1;
    __asm__ volatile("ldrd   %[m0], %[m1], [%[mult]]\n\t"
                     "ldrd   %[s0], %[s1], [%[shift]]\n\t" MCU_DW3X3_ASM_OUT("a0", "m0", "s0", "0")
                         MCU_DW3X3_ASM_OUT("a1", "m1", "s1", "1") "ldrd   %[m0], %[m1], [%[mult], #8]\n\t"
                                                                  "ldrd   %[s0], %[s1], [%[shift], #8]\n\t"
                         MCU_DW3X3_ASM_OUT("a2", "m0", "s0", "2") MCU_DW3X3_ASM_OUT("a3", "m1", "s1", "3")
                     : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [m0] "=&r"(m0), [m1] "=&r"(m1),
                       [s0] "=&r"(s0), [s1] "=&r"(s1)
                     : [mult] "r"(mult), [shift] "r"(shift), [out] "r"(out), [off2] "r"(2 * offset + 1)
                     : "memory");
}

/* A block whose taps are p + ky * row + kx * col, accumulators from the next 4 biases (*bias moves on); returns
 * w past the block's 36 weights. */
MCU_DW3X3_INLINE const int8_t *mcu_dw3x3_block_rows(const int8_t *p, int32_t col, int32_t row, const int8_t *w,
                                                    const int32_t **bias, int32_t acc[4])
{
    MCU_DW3X3_ASM_ACC;
    uint32_t x, y, u, v, t;
    __asm__(MCU_DW3X3_ASM_BIAS
            "ldr    %[x], [%[p]]\n\t"
            "ldr    %[y], [%[p], %[row]]\n\t" MCU_DW3X3_ASM_PAIR /* column 0, rows 0 and 1 */
            "add    %[t], %[p], %[col]\n\t"
            "ldr    %[x], [%[t]]\n\t"
            "ldr    %[y], [%[t], %[row]]\n\t" MCU_DW3X3_ASM_PAIR /* column 1 */
            "add    %[t], %[p], %[col], lsl #1\n\t"
            "ldr    %[x], [%[t]]\n\t"
            "ldr    %[y], [%[t], %[row]]\n\t" MCU_DW3X3_ASM_PAIR /* column 2 */
            "add    %[t], %[p], %[row], lsl #1\n\t"
            "ldr    %[x], [%[t], %[col], lsl #1]\n\t" MCU_DW3X3_ASM_SINGLE /* tap 8 */
            "ldr    %[x], [%[t]]\n\t"
            "ldr    %[y], [%[t], %[col]]\n\t" MCU_DW3X3_ASM_PAIR /* row 2, columns 0 and 1 */
            : MCU_DW3X3_ASM_OPERANDS
            : [p] "r"(p), [col] "r"(col), [row] "r"(row)
            : "memory");
    acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
    return w;
}

/* A block whose tap t is tap[MCU_DW3X3_SLOT(t)] + j, as mcu_dw3x3_block_rows: each pair's two pointers in one
 * LDRD. It has a register to spare: under GCC the biases come through a register rather than memory. */
MCU_DW3X3_INLINE const int8_t *mcu_dw3x3_block_table(const int8_t *const tap[9], int32_t j, const int8_t *w,
                                                     const int32_t **bias, int32_t acc[4])
{
#if defined(__clang__)
    MCU_DW3X3_ASM_ACC;
#else
    const int32_t *b_ = *bias;
    int32_t a0, a1, a2, a3;
#endif
    uint32_t x, y, u, v, t;
    __asm__(
#if !defined(__clang__)
            "ldrd   %[a0], %[a1], [%[b]], #8\n\t"
            "ldrd   %[a2], %[a3], [%[b]], #8\n\t"
#endif
            "ldrd   %[x], %[y], [%[tap]]\n\t"
            "ldr    %[x], [%[x], %[j]]\n\t"
            "ldr    %[y], [%[y], %[j]]\n\t" MCU_DW3X3_ASM_PAIR /* taps 0 and 3 */
            "ldrd   %[x], %[y], [%[tap], #8]\n\t"
            "ldr    %[x], [%[x], %[j]]\n\t"
            "ldr    %[y], [%[y], %[j]]\n\t" MCU_DW3X3_ASM_PAIR /* taps 1 and 4 */
            "ldrd   %[x], %[y], [%[tap], #16]\n\t"
            "ldr    %[x], [%[x], %[j]]\n\t"
            "ldr    %[y], [%[y], %[j]]\n\t" MCU_DW3X3_ASM_PAIR /* taps 2 and 5 */
            "ldr    %[t], [%[tap], #24]\n\t"
            "ldr    %[x], [%[t], %[j]]\n\t" MCU_DW3X3_ASM_SINGLE /* tap 8 */
            "ldrd   %[x], %[y], [%[tap], #28]\n\t"
            "ldr    %[x], [%[x], %[j]]\n\t"
            "ldr    %[y], [%[y], %[j]]\n\t" MCU_DW3X3_ASM_PAIR /* taps 6 and 7 */
#if defined(__clang__)
            : MCU_DW3X3_ASM_OPERANDS
#else
            : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [w] "+r"(w), [x] "=&r"(x), [y] "=&r"(y),
              [u] "=&r"(u), [v] "=&r"(v), [t] "=&r"(t), [b] "+r"(b_)
#endif
            : [tap] "r"(tap), [j] "r"(j)
            : "memory");
#if !defined(__clang__)
    *bias = b_;
#endif
    acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
    return w;
}
#else
/* Requantize the 4 accumulators of channels c..c+3 (the arrays point at channel c) into out[0..3], saturated to
 * int8. Most models clamp to the whole int8 range; mcu_dw3x3_clamp narrows the others afterwards. */
MCU_DW3X3_INLINE void mcu_dw3x3_store4(const int32_t acc[4], const int32_t *mult, const int32_t *shift, int32_t offset,
                                       int8_t *out)
{
    out[0] = (int8_t)MCU_DW3X3_SAT8(mcu_requantize_fast(acc[0], mult[0], shift[0], offset));
    out[1] = (int8_t)MCU_DW3X3_SAT8(mcu_requantize_fast(acc[1], mult[1], shift[1], offset));
    out[2] = (int8_t)MCU_DW3X3_SAT8(mcu_requantize_fast(acc[2], mult[2], shift[2], offset));
    out[3] = (int8_t)MCU_DW3X3_SAT8(mcu_requantize_fast(acc[3], mult[3], shift[3], offset));
}

#if MCU_DSP
/* The C twin of the assembly (its spec on the host, with -DMCU_EMULATE_DSP). The accumulators of a block start
 * from its 4 biases; *bias moves on. */
MCU_DW3X3_INLINE void mcu_dw3x3_bias(const int32_t **bias, int32_t acc[4])
{
    const int32_t *b = *bias;
    acc[0] = b[0], acc[1] = b[1], acc[2] = b[2], acc[3] = b[3];
    *bias = b + 4;
}

MCU_DW3X3_INLINE void mcu_dw3x3_pair(uint32_t x, uint32_t y, const int8_t *w, int32_t acc[4])
{
    const uint32_t lo = mcu_pkhbt(x, y), hi = mcu_pkhtb(y, x);
    const uint32_t w01 = mcu_read_u32(w), w23 = mcu_read_u32(w + 4);
    acc[0] = mcu_smlad(mcu_sxtb16(lo), mcu_sxtb16(w01), acc[0]);
    acc[1] = mcu_smlad(mcu_sxtb16_ror8(lo), mcu_sxtb16_ror8(w01), acc[1]);
    acc[2] = mcu_smlad(mcu_sxtb16(hi), mcu_sxtb16(w23), acc[2]);
    acc[3] = mcu_smlad(mcu_sxtb16_ror8(hi), mcu_sxtb16_ror8(w23), acc[3]);
}

/* A block given the input words of its 9 taps. */
MCU_DW3X3_INLINE const int8_t *mcu_dw3x3_block(const uint32_t x[9], const int8_t *w, int32_t acc[4])
{
    mcu_dw3x3_pair(x[0], x[3], w, acc);
    mcu_dw3x3_pair(x[1], x[4], w + 8, acc);
    mcu_dw3x3_pair(x[2], x[5], w + 16, acc);
    const uint32_t w8 = mcu_read_u32(w + 24);
    const int32_t x02 = mcu_sxtb16(x[8]), x13 = mcu_sxtb16_ror8(x[8]), w02 = mcu_sxtb16(w8), w13 = mcu_sxtb16_ror8(w8);
    acc[0] = mcu_smlabb(x02, w02, acc[0]);
    acc[1] = mcu_smlabb(x13, w13, acc[1]);
    acc[2] = mcu_smlatt(x02, w02, acc[2]);
    acc[3] = mcu_smlatt(x13, w13, acc[3]);
    mcu_dw3x3_pair(x[6], x[7], w + 28, acc);
    return w + 36;
}

MCU_DW3X3_INLINE const int8_t *mcu_dw3x3_block_rows(const int8_t *p, int32_t col, int32_t row, const int8_t *w,
                                                    const int32_t **bias, int32_t acc[4])
{
    mcu_dw3x3_bias(bias, acc);
    const int8_t *r1 = p + row, *r2 = p + 2 * row;
    const uint32_t x[9] = {mcu_read_u32(p),  mcu_read_u32(p + col),  mcu_read_u32(p + 2 * col),
                           mcu_read_u32(r1), mcu_read_u32(r1 + col), mcu_read_u32(r1 + 2 * col),
                           mcu_read_u32(r2), mcu_read_u32(r2 + col), mcu_read_u32(r2 + 2 * col)};
    return mcu_dw3x3_block(x, w, acc);
}

MCU_DW3X3_INLINE const int8_t *mcu_dw3x3_block_table(const int8_t *const tap[9], int32_t j, const int8_t *w,
                                                     const int32_t **bias, int32_t acc[4])
{
    mcu_dw3x3_bias(bias, acc);
    const uint32_t x[9] = {mcu_read_u32(tap[0] + j), mcu_read_u32(tap[2] + j), mcu_read_u32(tap[4] + j),
                           mcu_read_u32(tap[1] + j), mcu_read_u32(tap[3] + j), mcu_read_u32(tap[5] + j),
                           mcu_read_u32(tap[7] + j), mcu_read_u32(tap[8] + j), mcu_read_u32(tap[6] + j)};
    return mcu_dw3x3_block(x, w, acc);
}
#else
/* Portable (Cortex-M0+, RISC-V, host). Weights as aligned words, each byte sign-extended with shifts; taps as
 * words too where aligned (one load per 4 bytes), else byte by byte. */
MCU_DW3X3_INLINE uint32_t mcu_dw3x3_word(const int8_t *p)
{
    uint32_t v;
#if defined(__GNUC__)
    memcpy(&v, __builtin_assume_aligned(p, 4), sizeof v);
#else
    memcpy(&v, p, sizeof v);
#endif
    return v;
}
#define MCU_DW3X3_B0(v) ((int32_t)(int8_t)(v))
#define MCU_DW3X3_B1(v) ((int32_t)((v) << 16) >> 24)
#define MCU_DW3X3_B2(v) ((int32_t)((v) << 8) >> 24)
#define MCU_DW3X3_B3(v) ((int32_t)(v) >> 24)
/* A tap's 4 input bytes: one word (WORD) or its address (BYTES), and byte k of it. */
#define MCU_DW3X3_TAP_WORD(p) mcu_dw3x3_word(p)
#define MCU_DW3X3_GET_WORD(v, k) MCU_DW3X3_B##k(v)
typedef const int8_t *mcu_dw3x3_bytes;
#define MCU_DW3X3_TAP_BYTES(p) (p)
#define MCU_DW3X3_GET_BYTES(v, k) ((int32_t)(v)[k])

/* Two taps at xp, yp against their weight words (x0, x1, y0, y1) at w and (x2, x3, y2, y3) at w + 4. Macros on
 * the accumulators a0..a3: GCC keeps them in registers and loads each word where it is used (through an inline
 * function taking them by pointer it loads all 18 words first and spills). */
#define MCU_DW3X3_PAIR(TYPE, TAP, GET, xp, yp, w)                                                                     \
    do                                                                                                                 \
    {                                                                                                                  \
        const TYPE x_ = TAP(xp), y_ = TAP(yp);                                                                         \
        uint32_t w_ = mcu_dw3x3_word(w);                                                                               \
        a0 += GET(x_, 0) * MCU_DW3X3_B0(w_) + GET(y_, 0) * MCU_DW3X3_B2(w_);                                           \
        a1 += GET(x_, 1) * MCU_DW3X3_B1(w_) + GET(y_, 1) * MCU_DW3X3_B3(w_);                                           \
        w_ = mcu_dw3x3_word((w) + 4);                                                                                  \
        a2 += GET(x_, 2) * MCU_DW3X3_B0(w_) + GET(y_, 2) * MCU_DW3X3_B2(w_);                                           \
        a3 += GET(x_, 3) * MCU_DW3X3_B1(w_) + GET(y_, 3) * MCU_DW3X3_B3(w_);                                           \
    } while (0)

/* A block, tap t at tap[t] + j (MCU_DW3X3_SLOT), in the packed order (mcu_nn.h). */
#define MCU_DW3X3_BLOCK(TYPE, TAP, GET)                                                                               \
    do                                                                                                                 \
    {                                                                                                                  \
        MCU_DW3X3_PAIR(TYPE, TAP, GET, tap[0] + j, tap[3] + j, w);                                                    \
        MCU_DW3X3_PAIR(TYPE, TAP, GET, tap[1] + j, tap[4] + j, w + 8);                                                \
        MCU_DW3X3_PAIR(TYPE, TAP, GET, tap[2] + j, tap[5] + j, w + 16);                                               \
        const TYPE x8_ = TAP(tap[8] + j);                                                                              \
        const uint32_t w8_ = mcu_dw3x3_word(w + 24);                                                                   \
        a0 += GET(x8_, 0) * MCU_DW3X3_B0(w8_);                                                                         \
        a1 += GET(x8_, 1) * MCU_DW3X3_B1(w8_);                                                                         \
        a2 += GET(x8_, 2) * MCU_DW3X3_B2(w8_);                                                                         \
        a3 += GET(x8_, 3) * MCU_DW3X3_B3(w8_);                                                                         \
        MCU_DW3X3_PAIR(TYPE, TAP, GET, tap[6] + j, tap[7] + j, w + 28);                                               \
    } while (0)

MCU_DW3X3_INLINE const int8_t *mcu_dw3x3_block_table(const int8_t *const tap[9], int32_t j, const int8_t *w,
                                                     const int32_t **bias, int32_t acc[4], int32_t words)
{
    const int32_t *b = *bias;
    int32_t a0 = b[0], a1 = b[1], a2 = b[2], a3 = b[3];
    if (words)
    {
        MCU_DW3X3_BLOCK(uint32_t, MCU_DW3X3_TAP_WORD, MCU_DW3X3_GET_WORD);
    }
    else
    {
        MCU_DW3X3_BLOCK(mcu_dw3x3_bytes, MCU_DW3X3_TAP_BYTES, MCU_DW3X3_GET_BYTES);
    }
    acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
    *bias = b + 4;
    return w + 36;
}
#endif /* MCU_DSP */
#endif /* MCU_KERNEL_ASM */

/* The last C % 4 channels from c on, one by one (weights [9 taps] each); tap[MCU_DW3X3_SLOT(t)] is a->zp outside
 * the image. */
static void mcu_dw3x3_tail(const int8_t *const tap[9], int32_t c, const mcu_dw3x3_args *a, int8_t *out)
{
    const int8_t *w = a->filter + 9 * c;
    for (; c < a->channels; c++, w += 9)
    {
        int32_t acc = a->bias[c];
        for (int32_t t = 0; t < 9; t++)
        {
            const int8_t *const p = tap[MCU_DW3X3_SLOT(t)];
            acc += w[t] * (p != a->zp ? p[c] : a->zp[0]);
        }
        acc = mcu_requantize_fast(acc, a->multiplier[c], a->shift[c], a->offset);
        out[c] = (int8_t)mcu_clamp(acc, a->lo, a->hi);
    }
}

/* One output pixel: tap[MCU_DW3X3_SLOT(3 * ky + kx)] = the input pixel under the tap, a->zp outside the image.
 * Channels 4 at a time, all 36 reads of a block before its 4 writes, block after block; then the last C % 4 one
 * by one. */
static void mcu_dw3x3_pixel(const int8_t *const tap[9], const mcu_dw3x3_args *a, int8_t *out)
{
    const int32_t blocks_end = a->channels & ~3, offset = a->offset;
    const int32_t *bias = a->bias, *mult = a->multiplier, *shift = a->shift;
    const int8_t *w = a->filter;
    const int8_t *const *chunk = tap; /* the taps of channels c0.. (the zero points stay put) */
    const int8_t *moved[9];
    for (int32_t c0 = 0; c0 < blocks_end; c0 += MCU_DW3X3_CHUNK)
    {
        const int32_t n = blocks_end - c0 < MCU_DW3X3_CHUNK ? blocks_end - c0 : MCU_DW3X3_CHUNK;
        if (c0 > 0)
        {
            for (int32_t t = 0; t < 9; t++)
            {
                moved[t] = tap[t] != a->zp ? tap[t] + c0 : a->zp;
            }
            chunk = moved;
        }
        for (int32_t j = 0; j < n; j += 4)
        {
            const int32_t c = c0 + j;
            int32_t acc[4];
#if MCU_DSP
            w = mcu_dw3x3_block_table(chunk, j, w, &bias, acc);
#else
            w = mcu_dw3x3_block_table(chunk, j, w, &bias, acc, a->words);
#endif
            mcu_dw3x3_store4(acc, mult + c, shift + c, offset, out + c);
        }
    }
    if (a->lo != -128 || a->hi != 127)
    {
        mcu_dw3x3_clamp(out, blocks_end, a);
    }
    if (blocks_end < a->channels)
    {
        mcu_dw3x3_tail(tap, blocks_end, a, out);
    }
}

#if MCU_DSP
/* A run of `count` pixels of one output row whose windows lie inside the image: `in` is the top-left tap of the
 * first, the next one `step` bytes on; outputs `pixel` bytes apart. Same order of reads and writes as
 * mcu_dw3x3_pixel. */
static void mcu_dw3x3_interior(const int8_t *in, int32_t step, int32_t count, int32_t row, const mcu_dw3x3_args *a,
                               int8_t *out, int32_t pixel)
{
    const int32_t blocks_end = a->channels & ~3, col = a->channels, offset = a->offset;
    const int32_t clamp = a->lo != -128 || a->hi != 127;
    const int32_t *mult = a->multiplier, *shift = a->shift;
    for (; count > 0; count--, in += step, out += pixel)
    {
        const int8_t *w = a->filter;
        const int32_t *bias = a->bias;
        for (int32_t c = 0; c < blocks_end; c += 4)
        {
            int32_t acc[4];
            w = mcu_dw3x3_block_rows(in + c, col, row, w, &bias, acc);
            mcu_dw3x3_store4(acc, mult + c, shift + c, offset, out + c);
        }
        if (clamp)
        {
            mcu_dw3x3_clamp(out, blocks_end, a);
        }
        if (blocks_end < col)
        {
            const int8_t *const tap[9] = {in,           in + row,           in + col,
                                          in + row + col,         in + 2 * col,       in + row + 2 * col,
                                          in + 2 * row + 2 * col, in + 2 * row,       in + 2 * row + col};
            mcu_dw3x3_tail(tap, blocks_end, a, out);
        }
    }
}
#endif

MCU_API mcu_status mcu_depthwise_conv_3x3_s8_fast(const mcu_context *ctx,
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
    (void)ctx;
    const int32_t channels = input_dims->c;
    const int32_t pixel = mcu_pixel_stride(params->output_stride, channels);
    if (filter_dims->h != 3 || filter_dims->w != 3 || filter_dims->c != channels || output_dims->c != channels ||
        pixel == 0 || bias == NULL || params->stride.h < 1 || params->stride.w < 1 || params->dilation.h != 1 ||
        params->dilation.w != 1 || input_dims->n != output_dims->n || params->input_offset < -127 ||
        params->input_offset > 128 || ((uintptr_t)filter & 3u) != 0)
    {
        return MCU_STATUS_ARG_ERROR;
    }
    for (int32_t c = 0; c < channels; c++)
    {
        /* mcu_requantize_fast's range: the bias leaves room for 9 taps; a right shift */
        if (bias[c] <= -(1 << 29) + (1 << 18) || bias[c] >= (1 << 29) - (1 << 18) || quant->shift[c] > 0 ||
            quant->shift[c] < -31)
        {
            return MCU_STATUS_ARG_ERROR;
        }
    }
    int32_t zp[MCU_DW3X3_CHUNK / 4]; /* words: 4-byte aligned */
    memset(zp, -params->input_offset, sizeof zp);
    const int32_t h = input_dims->h, w = input_dims->w;
    const int32_t sh = params->stride.h, sw = params->stride.w, ph = params->padding.h, pw = params->padding.w;
    const mcu_dw3x3_args a = {
        .filter = filter,
        .bias = bias,
        .multiplier = quant->multiplier,
        .shift = quant->shift,
        .zp = (const int8_t *)zp,
        .channels = channels,
        .offset = params->output_offset,
        .lo = params->activation.min,
        .hi = params->activation.max,
#if !MCU_DSP
        .words = (((uintptr_t)input | (uintptr_t)channels) & 3u) == 0,
#endif
    };
    const int64_t row = (int64_t)w * channels;
#if MCU_DSP
    /* Output columns whose windows lie inside the image horizontally: [ox_lo, ox_hi). */
    const int32_t last = w - 3 + pw >= 0 ? (w - 3 + pw) / sw + 1 : 0;
    const int32_t ox_hi = last < output_dims->w ? last : output_dims->w;
    const int32_t ox_lo = (pw + sw - 1) / sw < ox_hi ? (pw + sw - 1) / sw : ox_hi;
#endif
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *in_batch = input + (int64_t)b * h * row;
        for (int32_t oy = 0; oy < output_dims->h; oy++)
        {
            const int32_t iy0 = oy * sh - ph;
            int8_t *out = output + ((int64_t)b * output_dims->h + oy) * output_dims->w * pixel;
            for (int32_t ox = 0; ox < output_dims->w; ox++, out += pixel)
            {
                const int32_t ix0 = ox * sw - pw;
#if MCU_DSP
                if (iy0 >= 0 && iy0 + 3 <= h && ox == ox_lo && ox_lo < ox_hi)
                {
                    mcu_dw3x3_interior(in_batch + iy0 * row + (int64_t)ix0 * channels, sw * channels, ox_hi - ox_lo,
                                       w * channels, &a, out, pixel);
                    out += (int64_t)(ox_hi - 1 - ox) * pixel;
                    ox = ox_hi - 1;
                    continue;
                }
#endif
                /* the columns' offsets in a row (below w * channels, as the row stride), -1 outside the image */
                const int32_t x0 = ix0 >= 0 && ix0 < w ? ix0 * channels : -1;
                const int32_t x1 = ix0 + 1 >= 0 && ix0 + 1 < w ? (ix0 + 1) * channels : -1;
                const int32_t x2 = ix0 + 2 >= 0 && ix0 + 2 < w ? (ix0 + 2) * channels : -1;
#if MCU_DSP
                const int8_t *const r0 = iy0 >= 0 && iy0 < h ? in_batch + iy0 * row : NULL;
                const int8_t *const r1 = iy0 + 1 >= 0 && iy0 + 1 < h ? in_batch + (iy0 + 1) * row : NULL;
                const int8_t *const r2 = iy0 + 2 >= 0 && iy0 + 2 < h ? in_batch + (iy0 + 2) * row : NULL;
#define MCU_DW3X3_TAP(r, x) ((r) != NULL && (x) >= 0 ? (r) + (x) : a.zp)
                /* in the slot order (MCU_DW3X3_SLOT) */
                const int8_t *const tap[9] = {MCU_DW3X3_TAP(r0, x0), MCU_DW3X3_TAP(r1, x0), MCU_DW3X3_TAP(r0, x1),
                                              MCU_DW3X3_TAP(r1, x1), MCU_DW3X3_TAP(r0, x2), MCU_DW3X3_TAP(r1, x2),
                                              MCU_DW3X3_TAP(r2, x2), MCU_DW3X3_TAP(r2, x0), MCU_DW3X3_TAP(r2, x1)};
#undef MCU_DW3X3_TAP
#else
                const int8_t *tap[9];
                for (int32_t ky = 0; ky < 3; ky++)
                {
                    const int32_t iy = iy0 + ky;
                    const int8_t *in_row = iy >= 0 && iy < h ? in_batch + iy * row : NULL;
                    tap[3 * ky] = in_row != NULL && x0 >= 0 ? in_row + x0 : a.zp;
                    tap[3 * ky + 1] = in_row != NULL && x1 >= 0 ? in_row + x1 : a.zp;
                    tap[3 * ky + 2] = in_row != NULL && x2 >= 0 ? in_row + x2 : a.zp;
                }
#endif
                mcu_dw3x3_pixel(tap, &a, out);
            }
        }
    }
    return MCU_STATUS_OK;
}
