/* int8 softmax from a table of Q16 exponentials. Refer to mcu_nn.h for details. */
#include "mcu_nn.h"

MCU_API mcu_status mcu_softmax_s8(const mcu_context *ctx,
                                  const mcu_softmax_params *params,
                                  const int8_t *input,
                                  int32_t rows,
                                  int32_t depth,
                                  int8_t *output)
{
    (void)ctx;
    if (depth <= 0 || depth > 16383)
    {
        return MCU_STATUS_ARG_ERROR;
    }
    for (int32_t r = 0; r < rows; r++)
    {
        const int8_t *x = input + (int64_t)r * depth;
        int8_t *y = output + (int64_t)r * depth;
        int32_t max = x[0];
        for (int32_t i = 1; i < depth; i++)
        {
            max = x[i] > max ? x[i] : max;
        }
        int32_t sum = 0; /* <= 16,383 * 2^16 < 2^31 */
        for (int32_t i = 0; i < depth; i++)
        {
            sum += params->exp_table[max - x[i]];
        }
        for (int32_t i = 0; i < depth; i++)
        {
            /* round(256 * e / sum) - 128; e * 256 <= 2^24 and sum / 2 < 2^30, so int32 holds it. */
            const int32_t q = (params->exp_table[max - x[i]] * 256 + sum / 2) / sum - 128;
            y[i] = (int8_t)mcu_clamp(q, -128, 127);
        }
    }
    return MCU_STATUS_OK;
}
