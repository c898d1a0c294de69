/* Per-channel int8 depthwise 3x3 convolution (depth multiplier 1, dilation 1, any stride and padding), 4 channels
 * at a time with the 9 taps unrolled. The input offset is folded into the bias at compile time, so the inner loop
 * multiplies raw int8 values; a tap outside the image reads the input zero point (-input_offset), which adds
 * w * (zp + input_offset) = 0 as the generic kernel's skipped tap does. Portable C. Refer to mcu_nn.h for details. */
#include "mcu_nn.h"

static inline int8_t mcu_depthwise_conv_3x3_s8_fast_out(int32_t acc, const mcu_conv_params *params,
                                                        const mcu_per_channel_quant *quant, int32_t c)
{
    acc = mcu_requantize(acc, quant->multiplier[c], quant->shift[c]) + params->output_offset;
    return (int8_t)mcu_clamp(acc, params->activation.min, params->activation.max);
}

/* Tap t of a block of 4 channels: x = the 4 input values (zp where the tap is outside the image), w the block's
 * 36 packed weights. */
#define MCU_DW3X3_TAP(t, border)                                                                                       \
    do                                                                                                                 \
    {                                                                                                                  \
        int32_t x0 = zp, x1 = zp, x2 = zp, x3 = zp;                                                                    \
        const int8_t *p_ = tap[t];                                                                                     \
        if (!(border) || p_ != NULL)                                                                                   \
        {                                                                                                              \
            p_ += c;                                                                                                   \
            x0 = p_[0];                                                                                                \
            x1 = p_[1];                                                                                                \
            x2 = p_[2];                                                                                                \
            x3 = p_[3];                                                                                                \
        }                                                                                                              \
        a0 += w[4 * (t)] * x0;                                                                                         \
        a1 += w[4 * (t) + 1] * x1;                                                                                     \
        a2 += w[4 * (t) + 2] * x2;                                                                                     \
        a3 += w[4 * (t) + 3] * x3;                                                                                     \
    } while (0)

/* One output pixel: tap[3 * ky + kx] = the input pixel under the tap, NULL outside the image (only if border).
 * Channels 4 at a time (all 36 reads of a block before its 4 writes), then the last C % 4 one by one. Defined
 * twice, border a constant in each, so the interior version has no tap checks. */
#define MCU_DW3X3_PIXEL(name, border)                                                                                  \
    static void name(const int8_t *const tap[9], int32_t zp, int32_t channels, const int8_t *filter,                   \
                     const int32_t *bias, const mcu_conv_params *params, const mcu_per_channel_quant *quant,           \
                     int8_t *out)                                                                                      \
    {                                                                                                                  \
        const int8_t *w = filter;                                                                                      \
        int32_t c = 0;                                                                                                 \
        for (; c + 4 <= channels; c += 4, w += 36)                                                                     \
        {                                                                                                              \
            int32_t a0 = bias[c], a1 = bias[c + 1], a2 = bias[c + 2], a3 = bias[c + 3];                                \
            MCU_DW3X3_TAP(0, border);                                                                                  \
            MCU_DW3X3_TAP(1, border);                                                                                  \
            MCU_DW3X3_TAP(2, border);                                                                                  \
            MCU_DW3X3_TAP(3, border);                                                                                  \
            MCU_DW3X3_TAP(4, border);                                                                                  \
            MCU_DW3X3_TAP(5, border);                                                                                  \
            MCU_DW3X3_TAP(6, border);                                                                                  \
            MCU_DW3X3_TAP(7, border);                                                                                  \
            MCU_DW3X3_TAP(8, border);                                                                                  \
            out[c] = mcu_depthwise_conv_3x3_s8_fast_out(a0, params, quant, c);                                         \
            out[c + 1] = mcu_depthwise_conv_3x3_s8_fast_out(a1, params, quant, c + 1);                                 \
            out[c + 2] = mcu_depthwise_conv_3x3_s8_fast_out(a2, params, quant, c + 2);                                 \
            out[c + 3] = mcu_depthwise_conv_3x3_s8_fast_out(a3, params, quant, c + 3);                                 \
        }                                                                                                              \
        for (; c < channels; c++, w += 9)                                                                              \
        {                                                                                                              \
            int32_t acc = bias[c];                                                                                     \
            for (int32_t t = 0; t < 9; t++)                                                                            \
            {                                                                                                          \
                const int32_t x = ((border) && tap[t] == NULL) ? zp : tap[t][c];                                       \
                acc += w[t] * x;                                                                                       \
            }                                                                                                          \
            out[c] = mcu_depthwise_conv_3x3_s8_fast_out(acc, params, quant, c);                                        \
        }                                                                                                              \
    }

MCU_DW3X3_PIXEL(mcu_depthwise_conv_3x3_s8_fast_interior, 0)
MCU_DW3X3_PIXEL(mcu_depthwise_conv_3x3_s8_fast_border, 1)

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
        params->input_offset > 128)
    {
        return MCU_STATUS_ARG_ERROR;
    }
    const int32_t zp = -params->input_offset;
    const int32_t h = input_dims->h, w = input_dims->w;
    const int64_t row = (int64_t)w * channels;
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *in_batch = input + (int64_t)b * h * row;
        for (int32_t oy = 0; oy < output_dims->h; oy++)
        {
            const int32_t iy0 = oy * params->stride.h - params->padding.h;
            int8_t *out = output + ((int64_t)b * output_dims->h + oy) * output_dims->w * pixel;
            for (int32_t ox = 0; ox < output_dims->w; ox++, out += pixel)
            {
                const int32_t ix0 = ox * params->stride.w - params->padding.w;
                const int8_t *tap[9];
                const int32_t border = iy0 < 0 || iy0 + 3 > h || ix0 < 0 || ix0 + 3 > w;
                for (int32_t ky = 0; ky < 3; ky++)
                {
                    const int32_t iy = iy0 + ky;
                    for (int32_t kx = 0; kx < 3; kx++)
                    {
                        const int32_t ix = ix0 + kx;
                        const int32_t inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
                        tap[3 * ky + kx] = inside ? in_batch + iy * row + (int64_t)ix * channels : NULL;
                    }
                }
                if (border)
                {
                    mcu_depthwise_conv_3x3_s8_fast_border(tap, zp, channels, filter, bias, params, quant, out);
                }
                else
                {
                    mcu_depthwise_conv_3x3_s8_fast_interior(tap, zp, channels, filter, bias, params, quant, out);
                }
            }
        }
    }
    return MCU_STATUS_OK;
}
