/* int8 concatenation along one axis, requantizing inputs whose quantization differs. Refer to mcu_nn.h. */
#include "mcu_nn.h"

MCU_API mcu_status mcu_concat_s8(const mcu_context *ctx,
                                 const mcu_concat_params *params,
                                 const mcu_concat_part *parts,
                                 const int8_t *const *inputs,
                                 int8_t *output)
{
    (void)ctx;
    for (int32_t i = 0; i < params->count; i++)
    {
        const mcu_concat_part *part = &parts[i];
        for (int32_t o = 0; o < params->outer; o++)
        {
            const int8_t *src = inputs[i] + o * part->inner;
            int8_t *dst = output + o * params->out_inner + part->offset;
            for (int32_t k = 0; k < part->inner; k++)
            {
                if (part->copy)
                {
                    dst[k] = src[k];
                    continue;
                }
                const int32_t v =
                    mcu_requantize(src[k] + part->requantize.input_offset, part->requantize.multiplier,
                                   part->requantize.shift);
                /* Bound first: a saturated value plus the offset would overflow; the clamp gives the same result. */
                dst[k] = (int8_t)mcu_clamp(mcu_clamp(v, -256, 256) + part->requantize.output_offset, -128, 127);
            }
        }
    }
    return MCU_STATUS_OK;
}
