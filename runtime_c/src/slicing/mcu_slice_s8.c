/* int8 strided copy (Slice, Split, Expand, Tile, DepthToSpace). Refer to mcu_nn.h for details. */
#include "mcu_nn.h"

MCU_API mcu_status mcu_slice_s8(const mcu_context *ctx, const mcu_slice_params *params, const int8_t *input,
                                int8_t *output)
{
    (void)ctx;
    mcu_copy_strided(input + params->first, params->out_dims, params->strides, output);
    return MCU_STATUS_OK;
}
