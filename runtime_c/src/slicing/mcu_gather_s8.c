/* int8 gather of constant indices along one axis. Refer to mcu_nn.h for details. */
#include "mcu_nn.h"

MCU_API mcu_status mcu_gather_s8(const mcu_context *ctx,
                                 const mcu_gather_params *params,
                                 const int32_t *indices,
                                 const int8_t *input,
                                 int8_t *output)
{
    (void)ctx;
    const int32_t inner = params->inner;
    for (int32_t o = 0; o < params->outer; o++)
    {
        const int8_t *src = input + o * params->axis_dim * inner;
        for (int32_t i = 0; i < params->count; i++)
        {
            const int8_t *from = src + indices[i] * inner;
            for (int32_t k = 0; k < inner; k++)
            {
                *output++ = from[k];
            }
        }
    }
    return MCU_STATUS_OK;
}
