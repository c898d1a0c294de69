/* int8 add and subtract with broadcasting and TFLite's input rescaling. Refer to mcu_nn.h for details. */
#include "mcu_nn.h"

/* One output row; each input steps by its innermost stride (1: contiguous, 0: one broadcast value). */
static void mcu_add_row(const mcu_add_params *params,
                        const int8_t *input1,
                        int32_t step1,
                        const int8_t *input2,
                        int32_t step2,
                        int32_t count,
                        int8_t *output)
{
    const int32_t sign = params->subtract ? -1 : 1;
    for (int32_t i = 0; i < count; i++)
    {
        /* (x + offset) * 2^20 <= 255 * 2^20 < 2^28: no overflow before rescaling. */
        const int32_t a = (input1[i * step1] + params->input1_offset) * (1 << params->left_shift);
        const int32_t b = (input2[i * step2] + params->input2_offset) * (1 << params->left_shift);
        /* SUB subtracts the rescaled input 2 (TFLite Micro's SubElementwise), not a negated multiplier:
         * the two differ on exact rounding ties. */
        const int32_t sum = mcu_requantize(a, params->input1_multiplier, params->input1_shift) +
                            sign * mcu_requantize(b, params->input2_multiplier, params->input2_shift);
        const int32_t out =
            mcu_requantize(sum, params->output_multiplier, params->output_shift) + params->output_offset;
        output[i] = (int8_t)mcu_clamp(out, params->activation.min, params->activation.max);
    }
}

MCU_API mcu_status mcu_add_s8(const mcu_context *ctx,
                              const mcu_add_params *params,
                              const mcu_broadcast_shape *shape,
                              const int8_t *input1,
                              const int8_t *input2,
                              int8_t *output)
{
    (void)ctx;
    if (params == NULL || shape == NULL || input1 == NULL || input2 == NULL || output == NULL)
    {
        return MCU_STATUS_ARG_ERROR;
    }
    const int32_t *dims = shape->out_dims;
    const int32_t *s1 = shape->in1_strides;
    const int32_t *s2 = shape->in2_strides;
    /* Same-shape tensors arrive as one row of the whole size: a single flat loop. */
    for (int32_t n = 0; n < dims[0]; n++)
        for (int32_t h = 0; h < dims[1]; h++)
            for (int32_t w = 0; w < dims[2]; w++)
            {
                const int32_t row = (n * dims[1] + h) * dims[2] + w;
                mcu_add_row(params,
                            input1 + n * s1[0] + h * s1[1] + w * s1[2],
                            s1[3],
                            input2 + n * s2[0] + h * s2[1] + w * s2[2],
                            s2[3],
                            dims[3],
                            output + row * dims[3]);
            }
    return MCU_STATUS_OK;
}
