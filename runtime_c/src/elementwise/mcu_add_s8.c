/* int8 elementwise add with TFLite's input rescaling. Refer to mcu_nn.h for details. */
#include "mcu_nn.h"

MCU_API mcu_status mcu_add_s8(const mcu_context *ctx,
                              const mcu_add_params *params,
                              const int8_t *input1,
                              const int8_t *input2,
                              int32_t size,
                              int8_t *output)
{
    (void)ctx;
    for (int32_t i = 0; i < size; i++)
    {
        /* (x + offset) * 2^20 <= 255 * 2^20 < 2^28: no overflow before rescaling. */
        const int32_t a = (input1[i] + params->input1_offset) * (1 << params->left_shift);
        const int32_t b = (input2[i] + params->input2_offset) * (1 << params->left_shift);
        const int32_t sum = mcu_requantize(a, params->input1_multiplier, params->input1_shift) +
                            mcu_requantize(b, params->input2_multiplier, params->input2_shift);
        const int32_t out = mcu_requantize(sum, params->output_multiplier, params->output_shift) + params->output_offset;
        output[i] = (int8_t)mcu_clamp(out, params->activation.min, params->activation.max);
    }
    return MCU_STATUS_OK;
}
