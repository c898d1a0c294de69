/* Per-channel int8 1x1 convolution (stride 1, no padding) as an int8 GEMM, blocked 2 pixels x 2 output
 * channels. The input offset is folded into the bias at compile time, so the inner loop multiplies raw int8
 * values: with MCU_DSP two MACs per SMLAD, else portable C. Refer to mcu_nn.h for details. */
#include "mcu_nn.h"

MCU_API int32_t mcu_conv_1x1_s8_fast_get_buffer_size(const mcu_dims *input_dims)
{
    return 2 * input_dims->c;
}

/* acc[2 * i + j] += dot(x_i, w_j) over n int8 values, i, j in {0, 1}. */
static inline void mcu_conv_1x1_s8_fast_dot(const int8_t *x0, const int8_t *x1, const int8_t *w0,
                                             const int8_t *w1, int32_t n, int32_t acc[4])
{
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    int32_t i = 0;
#if MCU_DSP
    for (; i + 4 <= n; i += 4)
    {
        const uint32_t wa = mcu_read_u32(w0 + i);
        const uint32_t wb = mcu_read_u32(w1 + i);
        const int32_t wa_even = mcu_sxtb16(wa), wa_odd = mcu_sxtb16_ror8(wa);
        const int32_t wb_even = mcu_sxtb16(wb), wb_odd = mcu_sxtb16_ror8(wb);
        const uint32_t xa = mcu_read_u32(x0 + i);
        const int32_t xa_even = mcu_sxtb16(xa), xa_odd = mcu_sxtb16_ror8(xa);
        a00 = mcu_smlad(xa_even, wa_even, a00);
        a00 = mcu_smlad(xa_odd, wa_odd, a00);
        a01 = mcu_smlad(xa_even, wb_even, a01);
        a01 = mcu_smlad(xa_odd, wb_odd, a01);
        const uint32_t xb = mcu_read_u32(x1 + i);
        const int32_t xb_even = mcu_sxtb16(xb), xb_odd = mcu_sxtb16_ror8(xb);
        a10 = mcu_smlad(xb_even, wa_even, a10);
        a10 = mcu_smlad(xb_odd, wa_odd, a10);
        a11 = mcu_smlad(xb_even, wb_even, a11);
        a11 = mcu_smlad(xb_odd, wb_odd, a11);
    }
#endif
    for (; i < n; i++)
    {
        const int32_t xa = x0[i], xb = x1[i], wa = w0[i], wb = w1[i];
        a00 += xa * wa;
        a01 += xa * wb;
        a10 += xb * wa;
        a11 += xb * wb;
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

static inline int8_t mcu_conv_1x1_s8_fast_out(int32_t acc, const mcu_conv_params *params,
                                              const mcu_per_channel_quant *quant, int32_t oc)
{
    acc = mcu_requantize(acc, quant->multiplier[oc], quant->shift[oc]) + params->output_offset;
    return (int8_t)mcu_clamp(acc, params->activation.min, params->activation.max);
}

MCU_API mcu_status mcu_conv_1x1_s8_fast(const mcu_context *ctx,
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
    const int32_t in_c = input_dims->c;
    const int32_t out_c = output_dims->c;
    const int32_t pixel = mcu_pixel_stride(params->output_stride, out_c);
    if (filter_dims->h != 1 || filter_dims->w != 1 || filter_dims->c != in_c || filter_dims->n != out_c ||
        pixel == 0 || bias == NULL || params->stride.h != 1 || params->stride.w != 1 || params->padding.h != 0 ||
        params->padding.w != 0 || input_dims->n != output_dims->n || input_dims->h != output_dims->h ||
        input_dims->w != output_dims->w || ctx == NULL || ctx->buf == NULL ||
        ctx->size < mcu_conv_1x1_s8_fast_get_buffer_size(input_dims))
    {
        return MCU_STATUS_ARG_ERROR;
    }
    int8_t *stage = (int8_t *)ctx->buf;
    const int32_t pixels = input_dims->n * input_dims->h * input_dims->w;
    for (int32_t p = 0; p < pixels; p += 2)
    {
        const int32_t two = pixels - p >= 2;
        /* The pair's input is copied before any of its outputs is written (the overlap gap relies on it). */
        memcpy(stage, input + (int64_t)p * in_c, (size_t)((1 + two) * in_c));
        const int8_t *x0 = stage;
        const int8_t *x1 = two ? stage + in_c : stage;
        int8_t *out0 = output + (int64_t)p * pixel;
        int8_t *out1 = two ? out0 + pixel : out0;
        for (int32_t oc = 0; oc < out_c; oc += 2)
        {
            const int32_t both = out_c - oc >= 2;
            const int8_t *w0 = filter + (int64_t)oc * in_c;
            const int8_t *w1 = both ? w0 + in_c : w0;
            int32_t acc[4];
            acc[0] = acc[2] = bias[oc];
            acc[1] = acc[3] = bias[oc + both];
            mcu_conv_1x1_s8_fast_dot(x0, x1, w0, w1, in_c, acc);
            out0[oc] = mcu_conv_1x1_s8_fast_out(acc[0], params, quant, oc);
            if (both)
            {
                out0[oc + 1] = mcu_conv_1x1_s8_fast_out(acc[1], params, quant, oc + 1);
            }
            if (two)
            {
                out1[oc] = mcu_conv_1x1_s8_fast_out(acc[2], params, quant, oc);
                if (both)
                {
                    out1[oc + 1] = mcu_conv_1x1_s8_fast_out(acc[3], params, quant, oc + 1);
                }
            }
        }
    }
    return MCU_STATUS_OK;
}
