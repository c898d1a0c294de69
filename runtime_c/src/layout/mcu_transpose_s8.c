/* int8 axis permutation of a rank <= 4 tensor. Refer to mcu_nn.h for details. */
#include "mcu_nn.h"

MCU_API mcu_status mcu_transpose_s8(const mcu_context *ctx,
                                    const mcu_transpose_params *params,
                                    const int8_t *input,
                                    int8_t *output)
{
    (void)ctx;
    int64_t in_stride[4];
    in_stride[3] = 1;
    for (int32_t a = 2; a >= 0; a--)
    {
        in_stride[a] = in_stride[a + 1] * params->in_dims[a + 1];
    }
    const int32_t *p = params->perm;
    const int32_t *d = params->in_dims;
    int64_t o = 0;
    for (int32_t i0 = 0; i0 < d[p[0]]; i0++)
    {
        for (int32_t i1 = 0; i1 < d[p[1]]; i1++)
        {
            for (int32_t i2 = 0; i2 < d[p[2]]; i2++)
            {
                const int64_t base = i0 * in_stride[p[0]] + i1 * in_stride[p[1]] + i2 * in_stride[p[2]];
                for (int32_t i3 = 0; i3 < d[p[3]]; i3++)
                {
                    output[o++] = input[base + i3 * in_stride[p[3]]];
                }
            }
        }
    }
    return MCU_STATUS_OK;
}
