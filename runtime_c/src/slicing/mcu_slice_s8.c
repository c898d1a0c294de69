/* int8 strided box copy (Slice, Split). Refer to mcu_nn.h for details. */
#include "mcu_nn.h"

MCU_API mcu_status mcu_slice_s8(const mcu_context *ctx, const mcu_slice_params *params, const int8_t *input,
                                int8_t *output)
{
    (void)ctx;
    const int32_t *in = params->in_dims;
    const int32_t *out = params->out_dims;
    const int32_t stride2 = in[3];
    const int32_t stride1 = in[2] * stride2;
    const int32_t stride0 = in[1] * stride1;
    int32_t at = 0;
    for (int32_t a = 0; a < out[0]; a++)
    {
        const int32_t ia = (params->begin[0] + a * params->step[0]) * stride0;
        for (int32_t b = 0; b < out[1]; b++)
        {
            const int32_t ib = ia + (params->begin[1] + b * params->step[1]) * stride1;
            for (int32_t c = 0; c < out[2]; c++)
            {
                const int32_t ic = ib + (params->begin[2] + c * params->step[2]) * stride2;
                for (int32_t d = 0; d < out[3]; d++)
                {
                    output[at++] = input[ic + params->begin[3] + d * params->step[3]];
                }
            }
        }
    }
    return MCU_STATUS_OK;
}
