/* int8 axis permutation of a rank <= MCU_MAX_RANK tensor. Refer to mcu_nn.h for details. */
#include "mcu_nn.h"

MCU_API mcu_status mcu_transpose_s8(const mcu_context *ctx,
                                    const mcu_transpose_params *params,
                                    const int8_t *input,
                                    int8_t *output)
{
    (void)ctx;
    int32_t in_stride[MCU_MAX_RANK];
    int32_t dims[MCU_MAX_RANK];    /* of the output */
    int32_t strides[MCU_MAX_RANK]; /* input elements between consecutive indices of each output axis */
    int32_t stride = 1;
    for (int32_t a = MCU_MAX_RANK - 1; a >= 0; a--)
    {
        in_stride[a] = stride;
        stride *= params->in_dims[a];
    }
    for (int32_t k = 0; k < MCU_MAX_RANK; k++)
    {
        dims[k] = params->in_dims[params->perm[k]];
        strides[k] = in_stride[params->perm[k]];
    }
    mcu_copy_strided(input, dims, strides, output);
    return MCU_STATUS_OK;
}
