/* int8 constant / reflect / edge / wrap padding (or cropping) in the physical layout. Refer to mcu_nn.h. */
#include "mcu_nn.h"

/* The input position copied to output position `o` of an axis, or -1 for the constant. */
static int32_t mcu_pad_source(int32_t o, int32_t before, int32_t size, int32_t out_size, int32_t mode)
{
    int32_t src = o - before;
    if (mode == MCU_PAD_EDGE)
    {
        return mcu_clamp(src, 0, size - 1);
    }
    if (mode == MCU_PAD_WRAP)
    {
        /* as onnxruntime: negative pads crop first, positive ones then wrap around what is kept */
        const int32_t after = out_size - size - before;
        const int32_t start = before < 0 ? -before : 0;
        const int32_t kept = size - start - (after < 0 ? -after : 0);
        int32_t k = (o - (before > 0 ? before : 0)) % kept;
        return start + (k < 0 ? k + kept : k);
    }
    if (mode == MCU_PAD_REFLECT)
    {
        if (size == 1)
        {
            return 0;
        }
        const int32_t period = 2 * (size - 1);
        src %= period;
        src = src < 0 ? src + period : src;
        return src >= size ? period - src : src;
    }
    return (src >= 0 && src < size) ? src : -1;
}

static int8_t mcu_pad_convert(const mcu_pad_params *params, int8_t v)
{
    if (params->copy)
    {
        return v;
    }
    const mcu_requantize_params *r = &params->requantize;
    const int32_t scaled = mcu_requantize(v + r->input_offset, r->multiplier, r->shift);
    /* Bound first so adding the offset cannot overflow; the final clamp gives the same result. */
    return (int8_t)mcu_clamp(mcu_clamp(scaled, -256, 256) + r->output_offset, -128, 127);
}

MCU_API mcu_status mcu_pad_s8(const mcu_context *ctx, const mcu_pad_params *params, const int8_t *input,
                              int8_t *output)
{
    (void)ctx;
    const int32_t *in = params->in_dims;
    const int32_t *out = params->out_dims;
    if (params->mode != MCU_PAD_CONSTANT && params->mode != MCU_PAD_REFLECT && params->mode != MCU_PAD_EDGE &&
        params->mode != MCU_PAD_WRAP)
    {
        return MCU_STATUS_ARG_ERROR;
    }
    for (int32_t k = 0; k < 4; k++)
    {
        if (in[k] < 1 || out[k] < 0)
        {
            return MCU_STATUS_ARG_ERROR;
        }
    }
    const int8_t fill = (int8_t)mcu_clamp(params->pad_value, -128, 127);
    int8_t *dst = output;
    for (int32_t a = 0; a < out[0]; a++)
    {
        const int32_t sa = mcu_pad_source(a, params->before[0], in[0], out[0], params->mode);
        for (int32_t b = 0; b < out[1]; b++)
        {
            const int32_t sb = mcu_pad_source(b, params->before[1], in[1], out[1], params->mode);
            for (int32_t c = 0; c < out[2]; c++)
            {
                const int32_t sc = mcu_pad_source(c, params->before[2], in[2], out[2], params->mode);
                if (sa < 0 || sb < 0 || sc < 0)
                {
                    for (int32_t d = 0; d < out[3]; d++)
                    {
                        *dst++ = fill;
                    }
                    continue;
                }
                const int8_t *row = input + (((int64_t)sa * in[1] + sb) * in[2] + sc) * in[3];
                for (int32_t d = 0; d < out[3]; d++)
                {
                    const int32_t sd = mcu_pad_source(d, params->before[3], in[3], out[3], params->mode);
                    *dst++ = sd < 0 ? fill : mcu_pad_convert(params, row[sd]);
                }
            }
        }
    }
    return MCU_STATUS_OK;
}
