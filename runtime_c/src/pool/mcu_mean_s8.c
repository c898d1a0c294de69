/* int8 mean over H and W with requantization, as TFLite's reference Mean. Refer to mcu_nn.h for details. */
#include "mcu_nn.h"

MCU_API mcu_status mcu_mean_s8(const mcu_context *ctx,
                               const mcu_mean_params *params,
                               const mcu_dims *input_dims,
                               const int8_t *input,
                               int8_t *output)
{
    (void)ctx;
    const int32_t ch = input_dims->c;
    const int32_t pixels = input_dims->h * input_dims->w;
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *in_batch = input + (int64_t)b * pixels * ch;
        for (int32_t c = 0; c < ch; c++)
        {
            int32_t acc = 0; /* |x + offset| <= 255: 8 M pixels fit */
            for (int32_t p = 0; p < pixels; p++)
            {
                acc += in_batch[(int64_t)p * ch + c] + params->input_offset;
            }
            /* TFLite's Mean: rescale the sum to the output scale, then divide by the count, halves away from 0. */
            const int64_t scaled = mcu_requantize(acc, params->multiplier, params->shift);
            const int64_t mean = (scaled > 0 ? scaled + pixels / 2 : scaled - pixels / 2) / pixels;
            const int32_t out = (int32_t)(mean < -256 ? -256 : (mean > 256 ? 256 : mean)) + params->output_offset;
            output[(int64_t)b * ch + c] = (int8_t)mcu_clamp(out, params->activation.min, params->activation.max);
        }
    }
    return MCU_STATUS_OK;
}
